"""Every ``CASENET_*`` setting, read once from the environment, documented here.

- ``CASENET_DATABASE_URL``: ``sqlite:///path/file.sqlite3`` or
  ``postgresql://user[:pass]@host:port/db``; default ``sqlite:///./var/casenet.sqlite3``.
- ``CASENET_DATA_DIR``: where dev keys and local files live; default ``./var``.
- ``CASENET_MASTER_KEYS``: comma-separated ``key_id:base64(32 bytes)``, newest last.
  Development: generated once into the data dir (mode 0600). Production: required.
- ``CASENET_SIGNING_KEY``: base64 Ed25519 private key (32-byte seed) for audit bundles.
  Development: generated into the data dir.
- ``CASENET_OPERATOR_TOKEN``: the operator's bearer token. Development: generated into
  the data dir and printed at start.
- ``CASENET_ENV``: ``development`` (default) or ``production``.

Production refuses to start unless the keys and the operator token come from the
environment: a dev key on disk next to the database protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEVELOPMENT = "development"
PRODUCTION = "production"

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_MIN_OPERATOR_TOKEN_LENGTH = 32


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line an operator can act on."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the event store lives: one SQLite file, or a PostgreSQL database."""

    url: str = field(repr=False)  # may hold the password: shown as ``display``
    kind: str  # "sqlite" or "postgresql"
    path: Path | None = None
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = field(default="", repr=False)
    dbname: str = ""

    def __repr__(self) -> str:
        return f"DatabaseSettings({self.display!r})"

    @property
    def display(self) -> str:
        """The URL without its password, safe to print and log."""
        if self.kind == "sqlite":
            return self.url
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Settings:
    """The settings of one casenet process; build with :func:`load_settings`."""

    database: DatabaseSettings
    data_dir: Path
    master_keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    signing_key: bytes = field(repr=False)
    operator_token: str = field(repr=False)
    env: str = DEVELOPMENT
    #: Which of the secrets were generated into the data dir (development only).
    generated: frozenset[str] = frozenset()

    @property
    def is_production(self) -> bool:
        return self.env == PRODUCTION


def parse_database_url(url: str) -> DatabaseSettings:
    """Parse ``CASENET_DATABASE_URL``; raise :class:`SettingsError` naming the problem."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise SettingsError("CASENET_DATABASE_URL: sqlite URL needs a file path")
        return DatabaseSettings(url=url, kind="sqlite", path=Path(path))
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            "CASENET_DATABASE_URL must start with sqlite:/// or postgresql:// "
            f"(got scheme {parts.scheme or 'none'!r})"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise SettingsError("CASENET_DATABASE_URL: the port is not a number") from None
    dbname = parts.path.lstrip("/")
    if not parts.hostname or not parts.username or not dbname:
        raise SettingsError(
            "CASENET_DATABASE_URL must name user, host and database: "
            "postgresql://user[:pass]@host:port/db"
        )
    return DatabaseSettings(
        url=url,
        kind="postgresql",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        dbname=unquote(dbname),
    )


def parse_master_keys(value: str) -> tuple[tuple[str, bytes], ...]:
    """Parse ``key_id:base64(32 bytes),...`` (newest last)."""
    keys: list[tuple[str, bytes]] = []
    for item in value.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise SettingsError("CASENET_MASTER_KEYS: each entry must be key_id:base64")
        key = _decode_key(encoded, "CASENET_MASTER_KEYS", key_id)
        if key_id in (k for k, _ in keys):
            raise SettingsError(f"CASENET_MASTER_KEYS: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise SettingsError("CASENET_MASTER_KEYS: no key given")
    return tuple(keys)


def _decode_key(encoded: str, setting: str, key_id: str = "") -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{setting}: key {key_id!r} is not valid base64") from None
    if len(key) != 32:
        raise SettingsError(f"{setting}: key {key_id!r} must be 32 bytes, got {len(key)}")
    return key


def _dev_secret(data_dir: Path, name: str, make: str) -> str:
    """Read a dev secret from the data dir, creating it (mode 0600) the first time."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make + "\n")
    return path.read_text().strip()


def _b64_random(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting once. In development, missing secrets are made in the data dir."""
    environ = os.environ if environ is None else environ
    env = environ.get("CASENET_ENV", DEVELOPMENT)
    if env not in (DEVELOPMENT, PRODUCTION):
        raise SettingsError("CASENET_ENV must be development or production")
    data_dir = Path(environ.get("CASENET_DATA_DIR", "./var"))
    database = parse_database_url(
        environ.get("CASENET_DATABASE_URL", f"sqlite:///{data_dir / 'casenet.sqlite3'}")
    )
    generated: set[str] = set()

    def secret(setting: str, filename: str, make: str) -> str:
        value = environ.get(setting, "")
        if value:
            return value
        if env == PRODUCTION:
            raise SettingsError(f"{setting} is required when CASENET_ENV=production")
        generated.add(setting)
        return _dev_secret(data_dir, filename, make)

    master_keys = parse_master_keys(
        secret("CASENET_MASTER_KEYS", "master_keys", f"dev1:{_b64_random(32)}")
    )
    signing_key = _decode_key(
        secret("CASENET_SIGNING_KEY", "signing_key", _b64_random(32)), "CASENET_SIGNING_KEY"
    )
    operator_token = secret("CASENET_OPERATOR_TOKEN", "operator_token", secrets.token_urlsafe(32))
    if env == PRODUCTION and len(operator_token) < _MIN_OPERATOR_TOKEN_LENGTH:
        raise SettingsError(
            f"CASENET_OPERATOR_TOKEN must be at least {_MIN_OPERATOR_TOKEN_LENGTH} characters"
        )
    return Settings(
        database=database,
        data_dir=data_dir,
        master_keys=master_keys,
        signing_key=signing_key,
        operator_token=operator_token,
        env=env,
        generated=frozenset(generated),
    )
