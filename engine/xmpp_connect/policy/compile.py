"""Compile rule `when` patterns (policy-format.md grammar) into a durable_rules ruleset definition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xmpp_connect.policy.model import Rule

# durable_rules stores `pri` as an unsigned short: priorities 0..65535.
MAX_RULES = 65536
KIND_GUARD: dict[str, Any] = {"$ex": {"kind": 1}}


class CompileError(ValueError):
    """The rules cannot be expressed in durable_rules (e.g. too many for its priority range)."""


def compile_ruleset(rules: Sequence[Rule]) -> dict[str, dict[str, Any]]:
    """One durable rule per policy rule, named and run by its id, `pri` = its priority index.

    Every rule is ANDed with a positive `$ex` guard on `kind` (a rule of only `$nex` tests would match the
    engine's own state). The result is a fresh structure on every call.
    """
    if len(rules) > MAX_RULES:
        raise CompileError(f"{len(rules)} rules: durable_rules priorities allow at most {MAX_RULES}")
    return {
        rule.id: {
            "all": [{"m": {"$and": [dict(KIND_GUARD), *compile_pattern(rule.when)]}}],
            "run": rule.id,
            "pri": index,
        }
        for index, rule in enumerate(rules)
    }


def compile_pattern(pattern: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conditions of one pattern (to be ANDed)."""
    conditions: list[dict[str, Any]] = []
    for name, condition in pattern.items():
        if name == "any":
            conditions.append({"$or": [_conjunction(compile_pattern(sub)) for sub in condition]})
        elif name == "all":
            conditions.extend(_conjunction(compile_pattern(sub)) for sub in condition)
        elif isinstance(condition, Mapping):
            conditions.extend(_operator(name, op, value) for op, value in condition.items())
        else:
            conditions.append({name: condition})
    return conditions


def _conjunction(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _absent(name: str) -> dict[str, Any]:
    return {"$nex": {name: 1}}


def _operator(name: str, op: str, value: Any) -> dict[str, Any]:
    if op == "in":
        return _disjunction([{name: v} for v in value])
    if op == "not":
        return {"$or": [{"$neq": {name: value}}, _absent(name)]}
    if op == "not_in":
        return {"$or": [_conjunction([{"$neq": {name: v}} for v in value]), _absent(name)]}
    if op == "exists":
        return {"$ex": {name: 1}} if value else _absent(name)
    raise CompileError(f"unknown operator {op!r} on field {name!r}")


def _disjunction(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return conditions[0] if len(conditions) == 1 else {"$or": conditions}
