"""Named domain errors: each is a rule of the domain that a command broke.

The API maps these to HTTP statuses in one place; the CLI to one readable line.
Messages never contain personal data: only ids, statuses and section names.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused by a rule of the domain. Nothing was recorded."""


class InvalidInput(DomainError):
    """A value is not one the domain accepts (an unknown section, an empty name)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class IllegalTransition(DomainError):
    """The aggregate's current status does not allow this command."""

    def __init__(self, what: str, status: str, action: str) -> None:
        super().__init__(f"{what} is {status}: cannot {action}")
        self.status = status
        self.action = action


class NotPermitted(DomainError):
    """The acting agency or worker may not do this to an aggregate it can see."""


class ConsentNotActive(IllegalTransition):
    """The consent was withdrawn or has expired; it grants nothing."""


class TokenLost(IllegalTransition):
    """A retried worker creation whose first answer (the token) was lost: the token
    exists only as a hash, so the worker must be revoked and added again."""


class ClientAlreadyErased(IllegalTransition):
    """The client's personal data was crypto-shredded; that cannot be undone."""


class NotFound(DomainError):
    """No such aggregate, or none the caller may know exists."""


class VersionConflict(DomainError):
    """Another write to the same aggregate won; re-read and try again."""


class StaleVersion(DomainError):
    """The caller's expected version (``If-Match``) is not the current one."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, the current version is {actual}")
        self.expected = expected
        self.actual = actual


def check_expected_version(expected: int | None, actual: int) -> None:
    """Optimistic concurrency on the caller's side: ``None`` means "any version"."""
    if expected is not None and expected != actual:
        raise StaleVersion(expected, actual)
