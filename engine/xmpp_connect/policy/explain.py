"""Why a fact got its classification: the rule that fired, each of its conditions with the fact's value,
and earlier rules for the same kind that missed by one condition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.model import Policy, Rule
from xmpp_connect.policy.predicates import ConditionCheck, PredicateMatcher, explain_pattern


@dataclass(frozen=True)
class RuleCheck:
    rule: Rule
    checks: tuple[ConditionCheck, ...]

    @property
    def failed(self) -> tuple[ConditionCheck, ...]:
        return tuple(c for c in self.checks if not c.held)


@dataclass(frozen=True)
class Explanation:
    """`fired` is the engine's rule (None: unmapped); `predicate_rule` what plain Python predicates chose."""

    fired: RuleCheck | None
    near_misses: tuple[RuleCheck, ...]
    predicate_rule: str | None

    @property
    def engines_agree(self) -> bool:
        return (self.fired.rule.id if self.fired else None) == self.predicate_rule


def explain_match(policy: Policy, fact: Mapping[str, Any], fired: Rule | None) -> Explanation:
    """Explain the engine's choice `fired` for `fact` under `policy`."""
    limit = fired.index if fired is not None else len(policy.rules)
    near = []
    for rule in policy.rules[:limit]:
        check = RuleCheck(rule, explain_pattern(rule.when, fact))
        if len(check.failed) == 1 and check.failed[0].field != "kind":
            near.append(check)
    chosen = PredicateMatcher(policy.rules).first_match(fact)
    return Explanation(
        fired=RuleCheck(fired, explain_pattern(fired.when, fact)) if fired is not None else None,
        near_misses=tuple(near),
        predicate_rule=chosen.id if chosen is not None else None,
    )


def render_explanation(explanation: Explanation) -> str:
    """Plain text for a terminal."""
    lines = []
    if explanation.fired is None:
        lines.append("No rule matched: the fact is `unmapped` (undef.unmapped, dead-lettered).")
    else:
        rule = explanation.fired.rule
        lines.append(f"Rule {rule.id} fired ({rule.source}) -> scenario {rule.scenario}")
        lines.extend(_check_lines(explanation.fired.checks, "  "))
    for miss in explanation.near_misses:
        lines.append(f"Earlier rule {miss.rule.id} ({miss.rule.source}) missed by one condition:")
        lines.extend(_check_lines(miss.failed, "  "))
    if not explanation.engines_agree:
        lines.append(f"WARNING: plain predicates chose {explanation.predicate_rule!r}: the engines disagree")
    return "\n".join(lines)


def _check_lines(checks: tuple[ConditionCheck, ...], indent: str) -> list[str]:
    lines = []
    for check in checks:
        mark = "held  " if check.held else "FAILED"
        value = "" if check.field is None else f"   [fact: {check.fact_text}]"
        lines.append(f"{indent}{mark} {check.text}{value}")
        lines.extend(_check_lines(check.parts, indent + "    "))
    return lines
