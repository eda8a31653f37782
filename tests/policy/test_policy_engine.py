"""The durable host: atomic reload without leaks, safe under threads, closed cleanly."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from native_rulesets import NativeRulesets
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy import Policy
from xmpp_connect.policy.engine import SID, RuleEngine

SM_ACK = {"kind": "sm_ack", "correlated": True}


def _other_policy(policy: Policy) -> Policy:
    """The same tables, except that an SM ack is taken for a plain send acceptance."""
    rules = tuple(dataclasses.replace(r, scenario="sent_to_server") if r.id == "acceptance.sm_ack" else r
                  for r in policy.rules)
    return dataclasses.replace(policy, rules=rules, version="f" * 16)


def test_reload_switches_policy_and_does_not_leak(
    fixture_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # not deleting the old ruleset leaked ~700 KB per reload (bench/policy_memory.py prints the RSS)
    rulesets = NativeRulesets(monkeypatch)
    other = _other_policy(fixture_policy)
    with Classifier(fixture_policy) as classifier:
        assert classifier.classify(SM_ACK).scenario == "server_acknowledged"
        for _ in range(100):
            classifier.reload(other)
            classifier.reload(fixture_policy)
        assert len(rulesets.live) == 1, "each reload frees the ruleset it replaces"
        classifier.reload(other)
        result = classifier.classify(SM_ACK)
        assert (result.scenario, result.policy_version) == ("sent_to_server", "f" * 16)
    assert rulesets.created == 202
    assert (rulesets.live, rulesets.unknown_deletes) == (set(), 0), "close frees the last one, once"


def test_classifications_stay_consistent_while_reloading_from_threads(fixture_policy: Policy) -> None:
    other = _other_policy(fixture_policy)
    expected = {fixture_policy.version: "server_acknowledged", other.version: "sent_to_server"}
    seen: list[tuple[str, str]] = []
    with Classifier(fixture_policy) as classifier:
        def work() -> None:
            for _ in range(300):
                result = classifier.classify(SM_ACK)
                seen.append((result.policy_version, result.scenario))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for i in range(60):
            classifier.reload(other if i % 2 == 0 else fixture_policy)
        for thread in threads:
            thread.join()
    assert len(seen) == 1200
    assert all(expected[version] == scenario for version, scenario in seen)


def test_closed_engine_refuses_to_classify(fixture_policy: Policy) -> None:
    engine = RuleEngine(fixture_policy)
    engine.close()
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.first_match(SM_ACK)


def test_engine_starts_no_threads(fixture_policy: Policy) -> None:
    before = threading.active_count()
    engine = RuleEngine(fixture_policy)
    try:
        engine.first_match(SM_ACK)
        assert threading.active_count() == before
    finally:
        engine.close()


def test_steady_classification_keeps_no_state(fixture_policy: Policy) -> None:
    receipt = {"kind": "receipt", "correlated": True, "sender_is_addressee": True}
    facts = [SM_ACK, {"kind": "presence"}, receipt]
    # durable keeps ~9 KB per stored fact or pending event (bench/policy_memory.py prints the RSS)
    engine = RuleEngine(fixture_policy)
    try:
        loaded = engine._current()
        for fact in facts:
            engine.first_match(fact)
        state = loaded.host.get_state(loaded.ruleset, SID)
        for _ in range(1000):
            for fact in facts:
                engine.first_match(fact)
        assert loaded.host.get_facts(loaded.ruleset, SID) == [], "no fact is left stored"
        assert loaded.host.get_pending_events(loaded.ruleset, SID) == [], "no event is left pending"
        assert loaded.host.get_state(loaded.ruleset, SID) == state
    finally:
        engine.close()


def test_only_the_engine_module_imports_durable() -> None:
    package = Path(__file__).resolve().parents[2] / "engine" / "xmpp_connect"
    importers = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if any(line.startswith(("import durable", "from durable"))
               for line in path.read_text(encoding="utf-8").splitlines())
    )
    assert importers == ["policy/engine.py"]
