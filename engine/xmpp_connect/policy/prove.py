"""Prove a policy's invariants over every fact the vocabulary allows; each failure names a counterexample.

For a `never` invariant: for every rule whose scenario has a forbidden output, search for a fact that
satisfies the premise and that this rule is the first to match. For `ranks_below`: collect the scenarios
each premise can reach (with a witness fact each) and compare their ranks in precedence `order`. The search
is exhaustive over the finite domains (symbolic.py), so "no problem" means no fact at all breaks it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.invariants import Invariant
from xmpp_connect.policy.model import BUILTIN_UNMAPPED, Policy, Rule, Scenario
from xmpp_connect.policy.problems import Problem
from xmpp_connect.policy.symbolic import CompiledRules


@dataclass(frozen=True)
class Reach:
    """A scenario a premise can reach: by which rule (None: no rule, `unmapped`) and a fact that does it."""

    scenario: Scenario
    rule: Rule | None
    fact: Mapping[str, Any]


def prove(policy: Policy, invariants: tuple[Invariant, ...],
          precedence_line: Mapping[str, str]) -> list[Problem]:
    """Every invariant a policy breaks, as problems located at the rule (or precedence entry) that breaks it.

    `precedence_line` maps a subclass to the `file:line` of its entry in precedence `order`.
    """
    premises = [inv.when for inv in invariants] + [inv.ranks_below for inv in invariants if inv.ranks_below]
    compiled = CompiledRules.build(policy.rules, policy.vocabulary, premises)
    problems: list[Problem] = []
    for invariant in invariants:
        if invariant.never is not None:
            problems.extend(_never(policy, compiled, invariant))
        if invariant.ranks_below is not None:
            problems.extend(_ranks_below(policy, compiled, invariant, precedence_line))
    return problems


def reachable(policy: Policy, compiled: CompiledRules, premise: Mapping[str, Any],
              with_unmapped: bool = True) -> Iterator[Reach]:
    """Every (rule, scenario) a fact satisfying `premise` can end in, each with one such fact."""
    for index, rule in enumerate(policy.rules):
        fact = compiled.witness(index, premise)
        if fact is not None:
            yield Reach(policy.scenario(rule.scenario), rule, fact)
    if with_unmapped:
        fact = compiled.unmatched_witness(premise)
        if fact is not None:
            yield Reach(BUILTIN_UNMAPPED, None, fact)


def _never(policy: Policy, compiled: CompiledRules, invariant: Invariant) -> Iterator[Problem]:
    """Only rules whose scenario has a forbidden output are searched (most invariants touch few rules)."""
    assert invariant.never is not None
    for index, rule in enumerate(policy.rules):
        scenario = policy.scenario(rule.scenario)
        broken = invariant.never.broken_by(scenario)
        if broken:
            fact = compiled.witness(index, invariant.when)
            if fact is not None:
                yield _problem(invariant, Reach(scenario, rule, fact), f"gives {', '.join(broken)}")
    broken = invariant.never.broken_by(BUILTIN_UNMAPPED)
    if broken:
        fact = compiled.unmatched_witness(invariant.when)
        if fact is not None:
            yield _problem(invariant, Reach(BUILTIN_UNMAPPED, None, fact), f"gives {', '.join(broken)}")


def _ranks_below(policy: Policy, compiled: CompiledRules, invariant: Invariant,
                 precedence_line: Mapping[str, str]) -> Iterator[Problem]:
    assert invariant.ranks_below is not None
    rank = policy.precedence.rank
    lower = [r for r in reachable(policy, compiled, invariant.when)
             if invariant.categories is None or r.scenario.assessment.category in invariant.categories]
    higher = list(reachable(policy, compiled, invariant.ranks_below, with_unmapped=False))
    reported: set[tuple[str, str]] = set()
    for low in lower:
        for high in higher:
            low_sub, high_sub = low.scenario.assessment.subclass, high.scenario.assessment.subclass
            if rank(low_sub) < rank(high_sub) or low_sub == high_sub:
                if (low_sub, high_sub) in reported:
                    continue
                reported.add((low_sub, high_sub))
                where = precedence_line.get(low_sub, "mappings/precedence.yaml")
                yield _problem(
                    invariant, low,
                    f"gives {low_sub}, which does not rank below {high_sub} ({where}); that is what "
                    f"{_origin(high)} gives for {_fact_text(high.fact)}",
                )


def _origin(reach: Reach) -> str:
    if reach.rule is None:
        return "no rule (unmapped)"
    rule, scenario = reach.rule, reach.scenario
    return f"rule {rule.id} ({rule.source}) via scenario {scenario.id} ({scenario.source})"


def _problem(invariant: Invariant, reach: Reach, what: str) -> Problem:
    file, _, line = (reach.rule.source if reach.rule is not None else invariant.source).rpartition(":")
    message = (
        f"breaks invariant {invariant.id} ({invariant.cites}; {invariant.source}): {invariant.statement} "
        f"{_origin(reach)} {what}; counterexample fact: {_fact_text(reach.fact)}"
    )
    return Problem(file, int(line), message)


def _fact_text(fact: Mapping[str, Any]) -> str:
    return json.dumps(dict(fact), ensure_ascii=False, sort_keys=True)
