"""The loaded policy as immutable objects: rules in priority order, scenarios, grades, commands..."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from xmpp_connect.model.classification import Assessment, Grade, Precedence
from xmpp_connect.model.quality import QualitySignals
from xmpp_connect.policy.vocabulary import Vocabulary

if TYPE_CHECKING:
    from xmpp_connect.policy.invariants import Invariant

UNMAPPED = "unmapped"
STANZA_ERROR_PREFIX = "stanza_error."


@dataclass(frozen=True)
class Rule:
    """One row of rules/*.yaml; `index` is its priority (0 first), `source` its `file:line`."""

    id: str
    index: int
    spec: tuple[str, ...]
    description: str
    when: Mapping[str, Any]
    scenario: str
    source: str


@dataclass(frozen=True)
class Scenario:
    """What a scenario id means: the outputs every classification into it carries."""

    id: str
    assessment: Assessment
    events: tuple[str, ...]
    attempt_state: str | None
    grade: str | None
    notes: tuple[str, ...]
    spec: tuple[str, ...] = ()
    retryable: bool | None = None
    scope: str = "message"
    dead_letter: bool = False
    source: str | None = None


@dataclass(frozen=True)
class StanzaErrorEntry:
    """One §24 row: the RFC 6120 condition, its usual type, and its scenario `stanza_error.<key>`."""

    key: str
    condition: str
    typical_type: str
    retryable: bool

    @property
    def scenario_id(self) -> str:
        return STANZA_ERROR_PREFIX + self.key


BUILTIN_UNMAPPED = Scenario(
    id=UNMAPPED,
    assessment=Assessment(category="undef", subclass="undef.unmapped", confidence="low"),
    events=(),
    attempt_state=None,
    grade=None,
    notes=("No rule matched this fact; it is dead-lettered for review and proves nothing.",),
    spec=("§29 dead-letter handling for unprocessable events",),
    dead_letter=True,
    source="(built-in)",
)


@dataclass(frozen=True)
class Policy:
    """A validated policy version. `version` is the first 16 hex digits of the tables' sha256."""

    root: Path
    version: str
    rules: tuple[Rule, ...]
    scenarios: Mapping[str, Scenario]
    stanza_errors: Mapping[str, StanzaErrorEntry]
    grades: Mapping[str, Grade]
    grade_event_types: Mapping[str, str]
    commands: Mapping[str, Any]
    precedence: Precedence
    descriptor: Mapping[str, Any]
    vocabulary: Vocabulary
    quality_signals: QualitySignals
    files: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def scenario(self, scenario_id: str) -> Scenario:
        return self.scenarios[scenario_id]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def freeze(value: Any) -> Any:
    """Plain YAML data -> read-only mappings and tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of freeze: plain dicts and lists (for JSON, or to hand to a mutable consumer)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
