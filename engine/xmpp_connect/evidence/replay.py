"""What-if replay: a stored message's evidence log re-classified from its facts under another policy, and
re-assessed, beside what was stored (`xmpp-connect rules replay`). Nothing is written back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.classification import Classification
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.policy.model import Policy

Classify = Callable[[Mapping[str, Any]], Classification]


@dataclass(frozen=True)
class ReplayedEntry:
    """One timeline entry as stored and as the other policy classifies its fact (None: no fact kept)."""

    stored: EvidenceEvent
    replayed: EvidenceEvent | None


@dataclass(frozen=True)
class Replay:
    entries: tuple[ReplayedEntry, ...]
    stored: lifecycle.XmppEvidenceAssessment
    replayed: lifecycle.XmppEvidenceAssessment


def replay(message_id: str, events: Sequence[EvidenceEvent], stored_policy: Policy, policy: Policy,
           classify: Classify) -> Replay:
    """Re-classify every entry's fact under `policy`; an entry without a usable fact is kept as stored in the
    replayed log. `stored_policy` assesses the stored log as the service does now."""
    entries = [ReplayedEntry(e, _replayed(e, classify, policy)) for e in lifecycle.timeline(events)]
    replayed_log = [e.replayed or e.stored for e in entries]
    return Replay(
        entries=tuple(entries),
        stored=lifecycle.assess(message_id, events, stored_policy.precedence, stored_policy.version),
        replayed=lifecycle.assess(message_id, replayed_log, policy.precedence, policy.version),
    )


def _replayed(event: EvidenceEvent, classify: Classify, policy: Policy) -> EvidenceEvent | None:
    """The entry as `policy` classifies its fact; None when no fact was kept or it no longer fits the
    vocabulary (then the stored entry stands in the replayed log)."""
    if not event.fact:
        return None
    try:
        classification = classify(event.fact)
    except ValueError:
        return None
    return dataclasses.replace(
        event,
        scenario=classification.scenario,
        rule_id=classification.rule_id,
        policy_version=policy.version,
        assessment=classification.assessment,
        grade=classification.grade.id if classification.grade is not None else None,
        attempt_state=classification.attempt_state,
        notes=classification.notes,
    )
