"""What the policy says a fact is: scenario, rule, assessment, events, grade, attempt state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Assessment:
    """An adapter-level hint (§11): category success | fail | undef, a subclass, a confidence."""

    category: str
    subclass: str
    confidence: str


@dataclass(frozen=True)
class Grade:
    """An evidence grade (§14), named by its key in mappings/grades.yaml."""

    id: str
    strength: str
    actor_certainty: str
    authority_certainty: str
    payload_certainty: str
    interaction_certainty: str
    timing_certainty: str
    channel_certainty: str
    non_repudiation_strength: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Classification:
    """The outcome of classifying one fact under one policy version."""

    scenario: str
    rule_id: str | None
    policy_version: str
    assessment: Assessment
    events: tuple[str, ...]
    attempt_state: str | None
    grade: Grade | None
    notes: tuple[str, ...]
    retryable: bool | None = None
    dead_letter: bool = False
    scope: str = "message"
    fact: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["events"] = list(self.events)
        out["notes"] = list(self.notes)
        if self.grade is not None:
            out["grade"]["notes"] = list(self.grade.notes)
        return out


@dataclass(frozen=True)
class Conflict:
    """Two groups of subclasses that contradict each other when both are seen (§11 conflicting evidence)."""

    name: str
    when_any: frozenset[str]
    and_any: frozenset[str]
    result: Assessment


@dataclass(frozen=True)
class TimeoutAnswers:
    """Evidence that makes a receipt or marker timeout moot: a timer falling due after it is dropped."""

    subclasses: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def answered_by(self, assessment: Assessment) -> bool:
        return assessment.subclass in self.subclasses or assessment.category in self.categories


@dataclass(frozen=True)
class Precedence:
    """mappings/precedence.yaml: subclasses strongest first, the contradictions between them, and what a
    coordination engine may read from the strongest one (by subclass, else by category)."""

    order: tuple[str, ...]
    conflicts: tuple[Conflict, ...] = ()
    interpretations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    category_interpretations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeouts_answered_by: Mapping[str, TimeoutAnswers] = field(default_factory=lambda: MappingProxyType({}))
    confidence_order: tuple[str, ...] = ("high", "medium", "low")
    no_evidence: Assessment = Assessment("undef", "undef.pending", "low")

    def confidence_rank(self, confidence: str) -> int:
        """Lower is stronger; an unknown confidence ranks below every listed one."""
        return self._confidence_ranks.get(confidence, len(self.confidence_order))

    def interpretation(self, category: str, subclass: str) -> str | None:
        """The recommended coordination interpretation of an assessment, None when the table has none."""
        return self.interpretations.get(subclass, self.category_interpretations.get(category))

    def rank(self, subclass: str) -> int:
        """Lower is stronger; an unlisted subclass ranks below every listed one."""
        return self._ranks.get(subclass, len(self.order))

    @cached_property
    def _ranks(self) -> dict[str, int]:
        """Each subclass's place in ``order`` (its first, as ``order.index`` finds it): a lookup, not a scan
        of ~50 subclasses, for every comparison of evidence (each state-bearing event is compared with the
        attempt's decider)."""
        return _places(self.order)

    @cached_property
    def _confidence_ranks(self) -> dict[str, int]:
        return _places(self.confidence_order)


def _places(names: tuple[str, ...]) -> dict[str, int]:
    """Each name's first index in ``names``."""
    places: dict[str, int] = {}
    for index, name in enumerate(names):
        places.setdefault(name, index)
    return places
