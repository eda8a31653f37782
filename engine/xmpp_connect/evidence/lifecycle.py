"""Timeline (§8) and assessment (§11) as pure functions of a message's evidence log and the precedence.

Recomputing from the same log with the same precedence always gives the same answer: arrival order does
not matter, late weaker evidence never downgrades a stronger signal, and contradictory evidence named by
a precedence conflict gives its result (``undef.conflicting_evidence``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xmpp_connect.model.classification import Conflict, Precedence
from xmpp_connect.model.evidence import EvidenceEvent

_SUMMARY_LIMIT = 50


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
    if len(events) == 1:
        return events[0]
    rank, confidence_rank = precedence.rank, precedence.confidence_rank
    return min(
        events,
        key=lambda e: (rank(e.assessment.subclass), confidence_rank(e.assessment.confidence), e.occurred_at,
                       e.seq or 0),
        default=None,
    )


def assess(
    message_id: str,
    events: Iterable[EvidenceEvent],
    precedence: Precedence,
    policy_version: str,
    participant_id: str | None = None,
) -> XmppEvidenceAssessment:
    """The message's assessment from its log alone; with no evidence yet, precedence `no_evidence`."""
    entries = timeline(
        e for e in events if participant_id is None or e.participant_id in (None, participant_id)
    )
    best = strongest(entries, precedence)
    summary = _summary(entries)
    if best is None:
        pending = precedence.no_evidence
        return XmppEvidenceAssessment(
            message_id,
            participant_id,
            pending.category,
            pending.subclass,
            pending.confidence,
            None,
            summary,
            precedence.interpretation(pending.category, pending.subclass),
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
        recommended_coordination_interpretation=precedence.interpretation(result.category, result.subclass),
        policy_version=policy_version,
        conflict=conflict.name if conflict else None,
        evidence_count=len(entries),
        late_evidence=any(e.late for e in entries),
    )


def attempt_state(events: Iterable[EvidenceEvent], precedence: Precedence, initial: str) -> str:
    """The §10 state of an attempt: that of its strongest evidence carrying one, else ``initial``."""
    best = attempt_state_event(events, precedence)
    return best.attempt_state if best and best.attempt_state else initial


def attempt_state_event(events: Iterable[EvidenceEvent], precedence: Precedence) -> EvidenceEvent | None:
    """The evidence that decides an attempt's state: the strongest carrying one. The order is total, so
    the strongest of the log is the strongest of (the previous decider, the new evidence)."""
    return strongest([e for e in events if e.attempt_state], precedence)


def _conflict(seen: set[str], conflicts: Sequence[Conflict]) -> Conflict | None:
    return next((c for c in conflicts if seen & c.when_any and seen & c.and_any), None)


def _summary(entries: Sequence[EvidenceEvent]) -> tuple[str, ...]:
    lines = tuple(_line(e) for e in entries[:_SUMMARY_LIMIT])
    if len(entries) > _SUMMARY_LIMIT:
        lines += (f"... and {len(entries) - _SUMMARY_LIMIT} more entries",)
    return lines


def _line(event: EvidenceEvent) -> str:
    tags = "".join(t for t, on in ((" [late]", event.late), (" [inferred]", event.inferred)) if on)
    return f"{event.occurred_at.isoformat()} {event.event_type}: {event.assessment.subclass}{tags}"
