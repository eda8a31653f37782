"""Timeline (§8) and assessment (§11) as pure functions of a message's evidence log and the precedence.

Recomputing from the same log with the same precedence always gives the same answer: arrival order does
not matter, late weaker evidence never downgrades a stronger signal, and contradictory evidence named by
a precedence conflict gives its result (``undef.conflicting_evidence``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xmpp_connect.classification import Conflict, Precedence
from xmpp_connect.evidence import EvidenceEvent

PENDING_SUBCLASS = "undef.pending"
_CONFIDENCE_RANK = {"high": 0, "medium": 1, "low": 2}
_SUMMARY_LIMIT = 50

# §13.1 "coordination interpretation" and §13.2 undef classes: what coordination-engine may read from
# the strongest XMPP signal. Never a statement of result satisfaction.
_INTERPRETATION = {
    "undef.pending": "undef.pending: no XMPP evidence yet.",
    "undef.sent_to_server_only": "undef.technical_acceptance_only: server acceptance; delivery unknown.",
    "success.sent_to_server": "undef.technical_acceptance_only: server acceptance; delivery unknown.",
    "undef.server_acknowledged_only": "undef.technical_acceptance_only: transport/server ack, not delivery.",
    "success.server_acknowledged": "undef.technical_acceptance_only: transport/server ack, not delivery.",
    "success.presence_observed": "undef.presence_available_but_no_receipt: availability only, not delivery.",
    "undef.presence_available_but_no_receipt": "undef.presence_available_but_no_receipt: availability only.",
    "undef.offline_stored": "undef.offline_delivery_unknown: stored offline; delivery pending or unknown.",
    "undef.offline_delivery_unknown": "undef.offline_delivery_unknown: delivery pending or unknown.",
    "undef.receipt_requested_no_response": "undef.delivery_pending: a missing receipt proves little.",
    "success.delivered_to_client": (
        "undef.delivered_but_awareness_unproven: strong client-delivery evidence; reading not proven."
    ),
    "undef.delivered_but_awareness_unproven": "undef.delivered_but_awareness_unproven: reading not proven.",
    "success.displayed_by_client": (
        "undef.displayed_but_comprehension_unproven: the client displayed it; comprehension not proven."
    ),
    "undef.displayed_but_comprehension_unproven": "undef.displayed_but_comprehension_unproven.",
    "success.acknowledged_by_client": (
        "Acknowledgement evidence: satisfies the result only if scenario policy accepts an XMPP"
        " acknowledgement."
    ),
    "success.reply_received": "Reply evidence: strong awareness evidence; the result is the engine's call.",
    "undef.reply_identity_uncertain": "undef.identity_uncertain: the replying actor is not established.",
    "undef.muc_room_message_participant_uncertain": (
        "undef.muc_participant_awareness_uncertain: room-level evidence only."
    ),
    "success.pubsub_item_published": "undef.pubsub_publication_only: publication, not subscriber awareness.",
    "undef.pubsub_publication_only": "undef.pubsub_publication_only: publication, not subscriber awareness.",
    "undef.conflicting_evidence": "undef.conflicting_evidence: the XMPP evidence contradicts itself.",
    "undef.channel_degraded": "undef.channel_degraded: the XMPP channel is degraded.",
}
_FAIL_INTERPRETATION = "XMPP channel failure for this message: consider another channel or endpoint."
_OTHER_INTERPRETATION = "XMPP-channel evidence only; coordination-engine evaluates the intended result."


@dataclass(frozen=True)
class XmppEvidenceAssessment:
    """§11 XmppEvidenceAssessment, plus the policy version it was computed under and how much log it saw."""

    xmpp_message_id: str
    participant_id: str | None
    category: str
    subclass: str
    confidence: str
    strongest_signal: str | None
    evidence_summary: tuple[str, ...]
    recommended_coordination_interpretation: str | None
    policy_version: str
    conflict: str | None = None
    evidence_count: int = 0
    late_evidence: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["evidence_summary"] = list(self.evidence_summary)
        return out


def timeline(events: Iterable[EvidenceEvent]) -> tuple[EvidenceEvent, ...]:
    """A message's log in event-time order (delay stamps honoured), ties in append order.

    Channel-health entries are left out; inferred entries (cumulative markers) stay, labelled ``inferred``.
    """
    return tuple(
        sorted((e for e in events if e.scope != "health"), key=lambda e: (e.occurred_at, e.seq or 0))
    )


def strongest(events: Sequence[EvidenceEvent], precedence: Precedence) -> EvidenceEvent | None:
    """The highest-ranked evidence, whenever it arrived; equal rank: higher confidence, then earlier."""
    return min(
        events,
        key=lambda e: (
            precedence.rank(e.assessment.subclass),
            _CONFIDENCE_RANK.get(e.assessment.confidence, 3),
            e.occurred_at,
            e.seq or 0,
        ),
        default=None,
    )


def assess(
    message_id: str,
    events: Iterable[EvidenceEvent],
    precedence: Precedence,
    policy_version: str,
    participant_id: str | None = None,
) -> XmppEvidenceAssessment:
    """The message's assessment from its log alone. No evidence yet: ``undef.pending``."""
    entries = timeline(
        e for e in events if participant_id is None or e.participant_id in (None, participant_id)
    )
    best = strongest(entries, precedence)
    summary = _summary(entries)
    if best is None:
        return XmppEvidenceAssessment(
            message_id,
            participant_id,
            "undef",
            PENDING_SUBCLASS,
            "low",
            None,
            summary,
            _INTERPRETATION[PENDING_SUBCLASS],
            policy_version,
        )
    conflict = _conflict({e.assessment.subclass for e in entries}, precedence.conflicts)
    result = conflict.result if conflict else best.assessment
    return XmppEvidenceAssessment(
        xmpp_message_id=message_id,
        participant_id=participant_id,
        category=result.category,
        subclass=result.subclass,
        confidence=result.confidence,
        strongest_signal=best.assessment.subclass,
        evidence_summary=summary
        + ((f"conflict {conflict.name}: contradictory evidence kept",) if conflict else ()),
        recommended_coordination_interpretation=_interpretation(result.category, result.subclass),
        policy_version=policy_version,
        conflict=conflict.name if conflict else None,
        evidence_count=len(entries),
        late_evidence=any(e.late for e in entries),
    )


def attempt_state(events: Iterable[EvidenceEvent], precedence: Precedence, initial: str) -> str:
    """The §10 state of an attempt: that of its strongest evidence carrying one, else ``initial``."""
    best = strongest([e for e in events if e.attempt_state], precedence)
    return best.attempt_state if best and best.attempt_state else initial


def _conflict(seen: set[str], conflicts: Sequence[Conflict]) -> Conflict | None:
    return next((c for c in conflicts if seen & c.when_any and seen & c.and_any), None)


def _interpretation(category: str, subclass: str) -> str:
    if subclass in _INTERPRETATION:
        return _INTERPRETATION[subclass]
    return _FAIL_INTERPRETATION if category == "fail" else _OTHER_INTERPRETATION


def _summary(entries: Sequence[EvidenceEvent]) -> tuple[str, ...]:
    lines = tuple(_line(e) for e in entries[:_SUMMARY_LIMIT])
    if len(entries) > _SUMMARY_LIMIT:
        lines += (f"... and {len(entries) - _SUMMARY_LIMIT} more entries",)
    return lines


def _line(event: EvidenceEvent) -> str:
    tags = "".join(t for t, on in ((" [late]", event.late), (" [inferred]", event.inferred)) if on)
    return f"{event.occurred_at.isoformat()} {event.event_type}: {event.assessment.subclass}{tags}"
