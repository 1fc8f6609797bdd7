"""What a ``PUT /fhir/Task/{id}`` asks for: the Task a FHIR client sends back, read for
the few elements casenet acts on (``status``, ``statusReason``, ``output``, ``note``);
every other element is ignored (the client sends the whole Task it read)."""

from __future__ import annotations

from typing import Literal

import msgspec

from casenet.application.fhir_exchange import TaskMove
from casenet.domain.errors import InvalidInput
from casenet.fhir.codes import OUTCOME_SYSTEM, TASK_ACTIONS, TASK_STATUS


class CodingIn(msgspec.Struct, kw_only=True):
    system: str | None = None
    code: str | None = None


class ConceptIn(msgspec.Struct, kw_only=True):
    coding: list[CodingIn] = msgspec.field(default_factory=list)
    text: str | None = None


class CodeableReferenceIn(msgspec.Struct, kw_only=True):
    concept: ConceptIn | None = None


class TaskOutputIn(msgspec.Struct, kw_only=True):
    valueCodeableConcept: ConceptIn | None = None  # noqa: N815  (FHIR's name)


class AnnotationIn(msgspec.Struct, kw_only=True):
    text: str


class TaskUpdate(msgspec.Struct, kw_only=True):
    """A Task as ``PUT /fhir/Task/{id}`` takes it: ``status`` one of accepted, rejected,
    in-progress, on-hold, completed, failed (the receiving agency) or cancelled (the
    referring agency); ``statusReason.concept.text`` the reason a rejection, hold,
    failure or cancellation needs; a completion's outcome as a code of casenet's
    ``referral-outcome`` system in ``output[].valueCodeableConcept`` (or in
    ``statusReason``), its note in ``note[0].text``."""

    resourceType: Literal["Task"]  # noqa: N815
    status: str
    id: str | None = None
    statusReason: CodeableReferenceIn | None = None  # noqa: N815
    output: list[TaskOutputIn] = msgspec.field(default_factory=list)
    note: list[AnnotationIn] = msgspec.field(default_factory=list)


def _outcome_of(update: TaskUpdate) -> str | None:
    concepts = [o.valueCodeableConcept for o in update.output]
    if update.statusReason is not None:
        concepts.append(update.statusReason.concept)
    for found in concepts:
        for coding in found.coding if found is not None else []:
            if coding.system == OUTCOME_SYSTEM and coding.code is not None:
                return coding.code
    return None


#: Task.status -> the referral status it names.
_REFERRAL_STATUS = {task: referral for referral, task in TASK_STATUS.items()}


def task_move(update: TaskUpdate) -> TaskMove:
    """The change ``update`` asks of its referral; InvalidInput (422) for a status no
    referral has. ``action`` is None for ``requested`` (no action leads there: only a
    referral still requested is left as it is)."""
    if update.status not in TASK_ACTIONS and update.status != TASK_STATUS["requested"]:
        allowed = ", ".join(["requested", *TASK_ACTIONS])
        raise InvalidInput("status", f"must be one of {allowed}")
    concept = update.statusReason.concept if update.statusReason else None
    return TaskMove(
        target_status=_REFERRAL_STATUS[update.status],
        action=TASK_ACTIONS.get(update.status),
        task_id=update.id,
        reason=concept.text if concept is not None else None,
        outcome=_outcome_of(update),
        note=update.note[0].text if update.note else None,
    )
