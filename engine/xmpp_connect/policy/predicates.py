"""The same `when` patterns as plain Python predicates: for `rules explain`, the benchmark baseline, and a
cross-check that durable_rules decides exactly as the grammar says."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.compile import CompileError
from xmpp_connect.policy.model import Rule

Fact = Mapping[str, Any]
Predicate = Callable[[Fact], bool]
MISSING: Any = object()


def compile_predicate(pattern: Mapping[str, Any]) -> Predicate:
    """A function telling whether a fact matches `pattern` (every condition holds)."""
    tests = [_condition_test(name, condition) for name, condition in pattern.items()]
    return lambda fact: all(test(fact) for test in tests)


def _condition_test(name: str, condition: Any) -> Predicate:
    if name == "any":
        subs = [compile_predicate(sub) for sub in condition]
        return lambda fact: any(sub(fact) for sub in subs)
    if name == "all":
        subs = [compile_predicate(sub) for sub in condition]
        return lambda fact: all(sub(fact) for sub in subs)
    if isinstance(condition, Mapping):
        tests = [_operator_test(name, op, value) for op, value in condition.items()]
        return tests[0] if len(tests) == 1 else (lambda fact: all(test(fact) for test in tests))
    return lambda fact: fact.get(name, MISSING) == condition


def _operator_test(name: str, op: str, value: Any) -> Predicate:
    if op == "in":
        allowed = tuple(value)
        return lambda fact: fact.get(name, MISSING) in allowed
    if op == "not":
        return lambda fact: fact.get(name, MISSING) != value
    if op == "not_in":
        excluded = tuple(value)
        return lambda fact: fact.get(name, MISSING) not in excluded
    if op == "exists":
        return lambda fact: (name in fact) is bool(value)
    raise CompileError(f"unknown operator {op!r} on field {name!r}")


class PredicateMatcher:
    """First-match evaluation of a rule list in plain Python, trying only the rules for the fact's kind."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        compiled = [(rule, compile_predicate(rule.when), _kinds(rule.when)) for rule in rules]
        every_kind = {kind for _, _, kinds in compiled if kinds is not None for kind in kinds}
        self._any_kind = tuple((rule, test) for rule, test, kinds in compiled if kinds is None)
        self._by_kind = {
            kind: tuple((rule, test) for rule, test, kinds in compiled if kinds is None or kind in kinds)
            for kind in every_kind
        }

    def first_match(self, fact: Fact) -> Rule | None:
        for rule, predicate in self._by_kind.get(fact.get("kind"), self._any_kind):
            if predicate(fact):
                return rule
        return None


def _kinds(pattern: Mapping[str, Any]) -> frozenset[Any] | None:
    """The kinds a pattern can match (its top-level `kind` equality or `in`); None: not restricted."""
    condition = pattern.get("kind", MISSING)
    if condition is MISSING:
        return None
    if not isinstance(condition, Mapping):
        return frozenset({condition})
    if set(condition) == {"in"}:
        return frozenset(condition["in"])
    return None


@dataclass(frozen=True)
class ConditionCheck:
    """One condition of a pattern evaluated against a fact, for people to read."""

    text: str
    held: bool
    field: str | None = None
    fact_value: Any = MISSING
    parts: tuple[ConditionCheck, ...] = ()

    @property
    def fact_text(self) -> str:
        """The fact's value as JSON, or `(absent)`."""
        return "(absent)" if self.fact_value is MISSING else _json(self.fact_value)


def explain_pattern(pattern: Mapping[str, Any], fact: Fact) -> tuple[ConditionCheck, ...]:
    """Each top-level condition of `pattern` with the fact's value and whether it held."""
    checks = []
    for name, condition in pattern.items():
        if name in ("any", "all"):
            parts = tuple(_sub_pattern_check(sub, fact) for sub in condition)
            held = any(p.held for p in parts) if name == "any" else all(p.held for p in parts)
            checks.append(ConditionCheck(f"{name} of {len(parts)}", held, parts=parts))
        else:
            checks.append(ConditionCheck(
                _condition_text(name, condition),
                _condition_test(name, condition)(fact),
                field=name,
                fact_value=fact.get(name, MISSING),
            ))
    return tuple(checks)


def _sub_pattern_check(pattern: Mapping[str, Any], fact: Fact) -> ConditionCheck:
    """One alternative of `any`/`all`: its single condition as is, or the group with its conditions."""
    checks = explain_pattern(pattern, fact)
    if len(checks) == 1:
        return checks[0]
    return ConditionCheck(pattern_text(pattern), all(c.held for c in checks), parts=checks)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _condition_text(name: str, condition: Any) -> str:
    if not isinstance(condition, Mapping):
        return f"{name} = {_json(condition)}"
    texts = []
    for op, value in condition.items():
        if op == "in":
            texts.append(f"{name} in {_json(list(value))}")
        elif op == "not":
            texts.append(f"{name} != {_json(value)} (or absent)")
        elif op == "not_in":
            texts.append(f"{name} not in {_json(list(value))} (or absent)")
        elif op == "exists":
            texts.append(f"{name} {'present' if value else 'absent'}")
    return " and ".join(texts)


def pattern_text(pattern: Mapping[str, Any]) -> str:
    """The whole pattern as one line, e.g. `kind = "receipt", late != true (or absent)`."""
    parts = []
    for name, condition in pattern.items():
        if name in ("any", "all"):
            parts.append(f"{name}({' | '.join(pattern_text(sub) for sub in condition)})")
        else:
            parts.append(_condition_text(name, condition))
    return ", ".join(parts)
