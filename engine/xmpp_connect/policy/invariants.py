"""The spec's MUST-NOTs as data (mappings/invariants.yaml): what evidence may never yield.

Two forms. `never`: no fact satisfying the premise `when` (same grammar as rule patterns; absent = every fact)
may be classified into a scenario with one of the listed outputs. `ranks_below`: every scenario a premise
fact can reach (optionally only those of `categories`) ranks strictly below, in precedence `order`, every
scenario a fact of the second premise can reach — so that evidence can never hide or outrank the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.model import Scenario, freeze
from xmpp_connect.policy.yaml_source import YamlDocument

OUTPUT_KEYS = ("categories", "subclasses", "events", "grades", "attempt_states")


@dataclass(frozen=True)
class Forbidden:
    """Outputs a scenario must not have; `event_words`: whole words (split on `.` and `_`) of event types."""

    categories: frozenset[str] = frozenset()
    subclasses: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    grades: frozenset[str] = frozenset()
    attempt_states: frozenset[str] = frozenset()
    event_words: frozenset[str] = frozenset()

    def broken_by(self, scenario: Scenario) -> tuple[str, ...]:
        """What of the scenario's outputs is forbidden, in words (empty: nothing)."""
        found = []
        if scenario.assessment.category in self.categories:
            found.append(f"category {scenario.assessment.category}")
        if scenario.assessment.subclass in self.subclasses:
            found.append(f"subclass {scenario.assessment.subclass}")
        found.extend(f"event {event}" for event in scenario.events if event in self.events)
        if scenario.grade in self.grades:
            found.append(f"grade {scenario.grade}")
        if scenario.attempt_state in self.attempt_states:
            found.append(f"attempt state {scenario.attempt_state}")
        for event in scenario.events:
            words = set(re.split(r"[._]", event)) & self.event_words
            if words:
                found.append(f"event {event} (legal-sounding: {', '.join(sorted(words))})")
        return tuple(found)


@dataclass(frozen=True)
class Invariant:
    """One MUST-NOT of the spec; `source` is its `file:line`."""

    id: str
    spec: tuple[str, ...]
    statement: str
    when: Mapping[str, Any]
    source: str
    never: Forbidden | None = None
    ranks_below: Mapping[str, Any] | None = None
    categories: frozenset[str] | None = None

    @property
    def cites(self) -> str:
        return "; ".join(self.spec)


def build_invariants(doc: YamlDocument) -> tuple[Invariant, ...]:
    """The schema-valid invariants document as Invariant objects."""
    invariants = []
    for i, entry in enumerate(doc.data["invariants"]):
        spec = entry["spec"]
        never = entry.get("never")
        categories = entry.get("categories")
        invariants.append(Invariant(
            id=entry["id"],
            spec=(spec,) if isinstance(spec, str) else tuple(spec),
            statement=entry["statement"],
            when=freeze(entry.get("when", {})),
            source=f"{doc.relpath}:{doc.line(['invariants', i])}",
            never=_forbidden(never) if never is not None else None,
            ranks_below=freeze(entry["ranks_below"]) if "ranks_below" in entry else None,
            categories=frozenset(categories) if categories is not None else None,
        ))
    return tuple(invariants)


def _forbidden(data: Mapping[str, Any]) -> Forbidden:
    return Forbidden(**{key: frozenset(data.get(key, ())) for key in (*OUTPUT_KEYS, "event_words")})
