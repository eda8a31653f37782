"""The `when` grammar in durable_rules and in plain Python predicates: same semantics, absent fields too."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest

from xmpp_connect.policy import Policy, Rule
from xmpp_connect.policy.compile import MAX_RULES, CompileError, compile_pattern, compile_ruleset
from xmpp_connect.policy.engine import RuleEngine
from xmpp_connect.policy.model import freeze
from xmpp_connect.policy.predicates import PredicateMatcher, compile_predicate, explain_pattern


def _rule(index: int, when: dict[str, Any], scenario: str = "sent_to_server") -> Rule:
    return Rule(id=f"r{index}", index=index, spec=("test",), description="", when=freeze(when),
                scenario=scenario, source=f"test:{index}")


@pytest.fixture
def engine_for(fixture_policy: Policy) -> Iterator[Any]:
    engines: list[RuleEngine] = []

    def build(*whens: dict[str, Any]) -> RuleEngine:
        rules = tuple(_rule(i, when) for i, when in enumerate(whens))
        engine = RuleEngine(dataclasses.replace(fixture_policy, rules=rules))
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()


def _fired(engine: RuleEngine, fact: dict[str, Any]) -> str | None:
    rule = engine.first_match(fact).rule
    return rule.id if rule is not None else None


def test_compiled_rule_has_kind_guard_priority_and_action() -> None:
    ruleset = compile_ruleset((_rule(0, {"kind": "receipt", "late": {"not": True}}),))
    assert ruleset == {
        "r0": {
            "all": [{"m": {"$and": [
                {"$ex": {"kind": 1}},
                {"kind": "receipt"},
                {"$or": [{"$neq": {"late": True}}, {"$nex": {"late": 1}}]},
            ]}}],
            "run": "r0",
            "pri": 0,
        }
    }


def test_not_in_and_exists_compile_to_absent_aware_conditions() -> None:
    pattern = freeze({"error_type": {"not_in": ["wait", "cancel"]}, "cap_receipts": {"exists": False}})
    assert compile_pattern(pattern) == [
            {"$or": [{"$and": [{"$neq": {"error_type": "wait"}}, {"$neq": {"error_type": "cancel"}}]},
                     {"$nex": {"error_type": 1}}]},
            {"$nex": {"cap_receipts": 1}},
        ]


def test_too_many_rules_for_durable_priorities() -> None:
    rules = [_rule(0, {"kind": "timer"})] * (MAX_RULES + 1)
    with pytest.raises(CompileError, match="at most 65536"):
        compile_ruleset(rules)


@pytest.mark.parametrize(
    ("condition", "fact_value", "held"),
    [
        ({"not": True}, None, True),
        ({"not": True}, True, False),
        ({"not": True}, False, True),
        ({"not_in": ["wait", "cancel"]}, None, True),
        ({"not_in": ["wait", "cancel"]}, "wait", False),
        ({"not_in": ["wait", "cancel"]}, "modify", True),
        ({"in": ["wait", "cancel"]}, None, False),
        ({"in": ["wait", "cancel"]}, "cancel", True),
        ({"exists": False}, None, True),
        ({"exists": False}, "auth", False),
        ({"exists": True}, None, False),
        ({"exists": True}, "auth", True),
        ("wait", None, False),
        ("wait", "wait", True),
        ("wait", "auth", False),
    ],
)
def test_operator_semantics_agree(engine_for: Any, condition: Any, fact_value: Any, held: bool) -> None:
    engine = engine_for({"kind": "stanza_error", "error_type": condition})
    fact: dict[str, Any] = {"kind": "stanza_error"}
    if fact_value is not None:
        fact["error_type"] = fact_value
    assert (_fired(engine, fact) == "r0") is held
    assert compile_predicate(freeze({"kind": "stanza_error", "error_type": condition}))(fact) is held


def test_any_and_all_nest(engine_for: Any) -> None:
    when = {"kind": "receipt",
            "any": [{"sender_resource_known": True},
                    {"all": [{"sender_authenticated": True}, {"late": False}]}]}
    engine = engine_for(when)
    cases = [
        ({"kind": "receipt", "sender_resource_known": True}, True),
        ({"kind": "receipt", "sender_authenticated": True, "late": False}, True),
        ({"kind": "receipt", "sender_authenticated": True}, False),
        ({"kind": "receipt"}, False),
        ({"kind": "marker", "sender_resource_known": True}, False),
    ]
    for fact, held in cases:
        assert (_fired(engine, fact) == "r0") is held, fact
        assert compile_predicate(freeze(when))(fact) is held, fact


def test_first_rule_by_priority_wins_and_no_match_is_none(engine_for: Any) -> None:
    engine = engine_for({"kind": "receipt", "late": True}, {"kind": "receipt"},
                        {"kind": {"in": ["receipt", "marker"]}})
    assert _fired(engine, {"kind": "receipt", "late": True}) == "r0"
    assert _fired(engine, {"kind": "receipt"}) == "r1"
    assert _fired(engine, {"kind": "marker"}) == "r2"
    assert _fired(engine, {"kind": "timer"}) is None


def _random_facts(policy: Policy, count: int) -> list[dict[str, Any]]:
    """Facts over the fields the fixture rules test, each field absent or any of its values."""
    fields = sorted({name for rule in policy.rules for name in _fields(rule.when)} - {"kind"})
    kinds = sorted({"receipt", "marker", "inbound_message", "stanza_error", "timer", "sm_ack", "presence"})
    rng = random.Random(2024)
    facts = []
    for _ in range(count):
        fact: dict[str, Any] = {"kind": rng.choice(kinds)}
        for name in fields:
            spec = policy.vocabulary.fields[name]
            values = sorted(spec.values) if spec.values is not None else [True, False]
            choice = rng.choice([None, *values])
            if choice is not None:
                fact[name] = choice
        facts.append(fact)
    return facts


def _fields(pattern: Any) -> Iterator[str]:
    for name, condition in pattern.items():
        if name in ("any", "all"):
            yield from itertools.chain.from_iterable(_fields(sub) for sub in condition)
        else:
            yield name


def test_durable_and_predicates_agree_on_random_facts(fixture_policy: Policy) -> None:
    matcher = PredicateMatcher(fixture_policy.rules)
    engine = RuleEngine(fixture_policy)
    try:
        for fact in _random_facts(fixture_policy, 3000):
            expected = matcher.first_match(fact)
            assert engine.first_match(fact).rule == expected, fact
    finally:
        engine.close()


def test_explain_reports_each_condition_with_the_fact_value(fixture_policy: Policy) -> None:
    rule = fixture_policy.rule("receipts.from_addressee")
    checks = explain_pattern(rule.when, {"kind": "receipt", "correlated": True, "sender_is_addressee": False})
    summary = [(c.text, c.held, c.fact_text if c.field else None) for c in checks]
    assert summary == [
        ('kind = "receipt"', True, '"receipt"'),
        ("correlated = true", True, "true"),
        ("sender_is_addressee = true", False, "false"),
        ("late != true (or absent)", True, "(absent)"),
        ("any of 2", False, None),
    ]
    parts = [p.text for p in checks[-1].parts]
    assert parts == ["sender_resource_known = true", "sender_authenticated = true"]
