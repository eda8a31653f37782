"""The §25 endpoint-quality signal sets (mappings/quality.yaml): which evidence counts as which signal."""

from __future__ import annotations

from dataclasses import dataclass

from xmpp_connect.model.evidence import EvidenceEvent


@dataclass(frozen=True)
class Signal:
    """Evidence matches when any listed subclass, grade, fact kind or scenario prefix fits it."""

    subclasses: frozenset[str] = frozenset()
    grades: frozenset[str] = frozenset()
    fact_kinds: frozenset[str] = frozenset()
    scenario_prefixes: tuple[str, ...] = ()

    def matches(self, event: EvidenceEvent) -> bool:
        return (
            event.assessment.subclass in self.subclasses
            or (event.grade is not None and event.grade in self.grades)
            or event.fact.get("kind") in self.fact_kinds
            or event.scenario.startswith(self.scenario_prefixes)
        )


@dataclass(frozen=True)
class QualitySignals:
    """One Signal per §25 field the log decides."""

    reached: Signal
    unreachable: Signal
    invalid_jid: Signal
    delivery_receipt: Signal
    displayed_marker: Signal
    reply: Signal
    stanza_error: Signal
