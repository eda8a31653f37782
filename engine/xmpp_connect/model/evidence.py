"""The mapping -> evidence event step: one Classification plus its ids becomes log entries (§13)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from xmpp_connect.model.classification import Assessment, Classification, Grade
from xmpp_connect.model.frozen import dict_init
from xmpp_connect.model.ids import beside_message
from xmpp_connect.xmpp import jids

INTERNAL_EVENT_TYPE = "xmpp.evidence_recorded"
"""The event type of a log entry for a classification that emits no normalized event (kept for assessment,
shown in the timeline, declared in the descriptor, left off the feed)."""
GRADE_DIMENSIONS = (
    "strength",
    "actor_certainty",
    "authority_certainty",
    "payload_certainty",
    "interaction_certainty",
    "timing_certainty",
    "channel_certainty",
    "non_repudiation_strength",
)
"""The §14 dimensions of an evidence grade, in the spec's order."""


@dict_init
@dataclass(frozen=True)
class EvidenceEvent:
    """One entry of the append-only evidence log.

    ``occurred_at`` is the event's own time (a XEP-0203 delay stamp when there is one); ``seq`` and
    ``recorded_at`` are set by the store when the entry is appended. ``emitted`` is False for internal
    entries that carry an assessment but no normalized event type.
    """

    tenant_id: str
    event_id: str
    event_type: str
    scenario: str
    rule_id: str | None
    policy_version: str
    assessment: Assessment
    grade: str | None
    attempt_state: str | None
    occurred_at: datetime
    message_id: str | None = None
    attempt_id: str | None = None
    case_id: str | None = None
    participant_id: str | None = None
    correlation_id: str | None = None
    endpoint_ref: str | None = None
    raw_ref: str | None = None
    late: bool = False
    inferred: bool = False
    emitted: bool = True
    scope: str = "message"
    dedupe_key: str | None = None
    notes: tuple[str, ...] = ()
    fact: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None
    recorded_at: datetime | None = None
    sender_jid: str | None = None
    sender_resource: str | None = None
    grade_dimensions: Mapping[str, str] = field(default_factory=dict)

    def placed(self, seq: int, recorded_at: datetime) -> EvidenceEvent:
        """The entry as the store appends it: a copy with its feed position and recording time (a field
        copy; ``dataclasses.replace`` would run the whole constructor again for every appended entry)."""
        placed = object.__new__(EvidenceEvent)
        placed.__dict__.update(self.__dict__, seq=seq, recorded_at=recorded_at)
        return placed

    def to_dict(self) -> dict[str, Any]:
        """The event as the API serves it (times in ISO 8601; no feed position)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "scenario": self.scenario,
            "rule_id": self.rule_id,
            "policy_version": self.policy_version,
            "assessment": {
                "category": self.assessment.category,
                "subclass": self.assessment.subclass,
                "confidence": self.assessment.confidence,
            },
            "evidence_grade": self.grade,
            "grade": {"id": self.grade, **self.grade_dimensions} if self.grade else None,
            "attempt_state": self.attempt_state,
            "xmpp_message_id": self.message_id,
            "xmpp_attempt_id": self.attempt_id,
            "coordination_case_id": self.case_id,
            "participant_id": self.participant_id,
            "correlation_id": self.correlation_id,
            "endpoint_ref": self.endpoint_ref,
            "sender": self.sender(),
            "raw_event_ref": self.raw_ref,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "late": self.late,
            "inferred": self.inferred,
            "notes": list(self.notes),
        }

    def sender(self) -> dict[str, str | None] | None:
        """Who sent the evidence: full JID and resource, or only their references where privacy hides JIDs
        (then ``resource`` is an opaque reference that still tells two resources apart)."""
        if self.sender_jid is None and self.sender_resource is None:
            return None
        return {
            "full_jid": self.sender_jid,
            "resource": self.sender_resource,
            "endpoint_ref": self.endpoint_ref,
        }


@dict_init
@dataclass(frozen=True)
class DedupeBasis:
    """What makes two observations the same one (§29): kind, sender full JID, the stanza id they refer to.

    ``kind`` names the evidence precisely, e.g. ``receipt``, ``marker:displayed``, ``stanza_error``,
    ``timer:receipt_timeout``.
    """

    kind: str
    sender_full_jid: str
    stanza_id: str


@dict_init
@dataclass(frozen=True)
class EvidenceContext:
    """The ids and times a classification is recorded with."""

    tenant_id: str
    observed_at: datetime
    delay_stamp: datetime | None = None
    message_id: str | None = None
    attempt_id: str | None = None
    case_id: str | None = None
    participant_id: str | None = None
    correlation_id: str | None = None
    endpoint_ref: str | None = None
    raw_ref: str | None = None
    late: bool = False
    dedupe: DedupeBasis | None = None
    sender_jid: str | None = None
    sender_resource: str | None = None


def endpoint_ref(tenant_id: str, jid: str) -> str:
    """A stable opaque reference for an endpoint, stored instead of the JID (§28). Keyed by bare JID."""
    return "ep_" + _digest(tenant_id, jids.bare(jid))[:20]


def dedupe_key(message_id: str | None, basis: DedupeBasis, event_type: str) -> str:
    """The key under which the same receipt/marker/error is stored once."""
    return "|".join((message_id or "", basis.kind, basis.sender_full_jid, basis.stanza_id, event_type))


def dedupe_event_id(tenant_id: str, message_id: str | None, key: str) -> str:
    """The one event id of an observation under its dedupe key (spec/ids.md)."""
    return "evt_" + beside_message(message_id, _digest(tenant_id, key), 32)


def build_evidence_events(
    classification: Classification,
    context: EvidenceContext,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> tuple[EvidenceEvent, ...]:
    """One log entry per normalized event type of the classification (one internal entry if it has none).

    With a dedupe basis the event id is derived from it, so the store keeps a repeated observation once;
    about a message with a time-ordered id, it starts with the message's time part (spec/ids.md).
    """
    own = {
        "tenant_id": context.tenant_id,
        "occurred_at": context.delay_stamp or context.observed_at,
        "message_id": context.message_id,
        "attempt_id": context.attempt_id,
        "case_id": context.case_id,
        "participant_id": context.participant_id,
        "correlation_id": context.correlation_id,
        "endpoint_ref": context.endpoint_ref,
        "raw_ref": context.raw_ref,
        "sender_jid": context.sender_jid,
        "sender_resource": context.sender_resource,
    }
    return evidence_entries(classification, own, context.dedupe, context.late, new_id)


CONTEXT_FIELDS = ("tenant_id", "occurred_at", "message_id", "attempt_id", "case_id", "participant_id",
                  "correlation_id", "endpoint_ref", "raw_ref", "sender_jid", "sender_resource")
"""The entry fields its context gives, each entry of one context the same (``occurred_at``: the delay stamp,
else the observation time)."""


def evidence_entries(
    classification: Classification,
    own: Mapping[str, Any],
    dedupe: DedupeBasis | None = None,
    late: bool = False,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> tuple[EvidenceEvent, ...]:
    """``build_evidence_events`` with the context given as ``own``, its ``CONTEXT_FIELDS`` (exactly those) as
    the entries carry them: the recorder builds that mapping, not an ``EvidenceContext`` per event."""
    event_types = classification.events or (INTERNAL_EVENT_TYPE,)
    fact = dict(classification.fact)
    if len(event_types) == 1:  # most classifications: no generator to build and drain
        return (_event(classification, own, dedupe, late, event_types[0], fact, new_id),)
    return tuple(_event(classification, own, dedupe, late, event_type, fact, new_id)
                 for event_type in event_types)


def _event(
    classification: Classification,
    own: Mapping[str, Any],
    dedupe: DedupeBasis | None,
    late: bool,
    event_type: str,
    fact: dict[str, Any],
    new_id: Callable[[], str],
) -> EvidenceEvent:
    """The entry, built as ``EvidenceEvent(...)`` would build it: the fields the classification and event
    type give (the same for every entry of a memoized classification) copied from a template in field
    order, then the context's and the entry's own (the constructor's one dict, without binding 29
    arguments)."""
    message_id = own["message_id"]
    key = dedupe_key(message_id, dedupe, event_type) if dedupe else None
    if key:
        event_id = dedupe_event_id(own["tenant_id"], message_id, key)
    else:
        event_id = "evt_" + beside_message(message_id, new_id(), 32)
    template, dimensions = _template(classification, event_type)
    state = template.copy()
    state.update(own)
    state.update(
        event_id=event_id,
        late=late or fact.get("late") is True,
        inferred=_inferred(fact),
        dedupe_key=key,
        fact=fact,
        grade_dimensions=dict(dimensions),
    )
    event = object.__new__(EvidenceEvent)
    object.__setattr__(event, "__dict__", state)
    return event


def _template(classification: Classification, event_type: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Every field of an entry in field order, those the classification and event type give filled in
    (the rest are the entry's own, set per entry), and the grade's dimensions."""
    known = _TEMPLATES.get((id(classification), event_type))
    if known is not None and known[0] is classification:
        return known[1], known[2]
    dimensions = _dimensions(classification)
    template: dict[str, Any] = dict.fromkeys(f.name for f in fields(EvidenceEvent))
    template.update(
        event_type=event_type,
        scenario=classification.scenario,
        rule_id=classification.rule_id,
        policy_version=classification.policy_version,
        assessment=classification.assessment,
        grade=classification.grade.id if classification.grade else None,
        attempt_state=classification.attempt_state,
        emitted=event_type != INTERNAL_EVENT_TYPE,
        scope=classification.scope,
        notes=classification.notes,
    )
    if len(_TEMPLATES) >= _TEMPLATES_LIMIT:
        _TEMPLATES.clear()
    _TEMPLATES[(id(classification), event_type)] = (classification, template, dimensions)
    return template, dimensions


_TEMPLATES: dict[tuple[int, str], tuple[Classification, dict[str, Any], dict[str, str]]] = {}
"""(id(classification), event type) -> (the classification, kept so that its id is not reused while
remembered; the entry's template; its grade's dimensions)."""
_TEMPLATES_LIMIT = 4096


def _inferred(fact: Mapping[str, Any]) -> bool:
    """Attribution by guess: a cumulative marker's coverage, a reply tied only by the conversation, a
    message tied to a tracking context only by its sender's bare JID."""
    return (
        fact.get("marker_inferred") is True
        or fact.get("reply_via") == "conversation"
        or fact.get("context_registered") is True
    )


def _dimensions(classification: Classification) -> dict[str, str]:
    """The grade's §14 dimensions, a dict of its own per entry; read from the grade once (a policy has a
    few grades, each entry of one carries the same eight values)."""
    grade = classification.grade
    if grade is None:
        return {}
    known = _DIMENSIONS.get(id(grade))
    if known is None or known[0] is not grade:
        if len(_DIMENSIONS) >= _DIMENSIONS_LIMIT:
            _DIMENSIONS.clear()
        known = _DIMENSIONS[id(grade)] = (grade, {name: getattr(grade, name) for name in GRADE_DIMENSIONS})
    return dict(known[1])


_DIMENSIONS: dict[int, tuple[Grade, dict[str, str]]] = {}
"""id(grade) -> (the grade, kept so that its id is not reused while remembered; its dimensions)."""
_DIMENSIONS_LIMIT = 512


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
