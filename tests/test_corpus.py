"""The shipped policy against the scenario corpus (tests/scenarios/*.yaml), pinned by one snapshot per file,
plus the non-negotiable readings of §3/§11-§14 checked fact by fact."""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from native_rulesets import NativeRulesets
from xmpp_connect.app.cli import main
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.corpus import CorpusCase, load_corpus, load_sequences
from xmpp_connect.evidence.coverage import CoverageReport, run_corpus, run_sequences
from xmpp_connect.evidence.traceability import traceability_markdown
from xmpp_connect.model.classification import Classification
from xmpp_connect.policy import Policy, PolicyError, load_policy
from xmpp_connect.policy.paths import default_corpus_dir, default_policy_dir
from xmpp_connect.policy.predicates import PredicateMatcher

ROOT = default_policy_dir()
CORPUS = default_corpus_dir()
pytestmark = pytest.mark.skipif(
    not any((ROOT / "rules").glob("*.yaml")) or not any(CORPUS.glob("*.yaml")),
    reason="the shipped rules/ or tests/scenarios/ corpus is not written yet",
)
# Evidence a server or stream acceptance can never stand for (§3, §7.5, §23).
RECIPIENT_SUCCESS = frozenset({
    "success.delivered_to_client",
    "success.displayed_by_client",
    "success.acknowledged_by_client",
    "success.reply_received",
    "success.presence_observed",
})


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def classifier(policy: Policy) -> Iterator[Classifier]:
    with Classifier(policy) as classifier:
        yield classifier


@pytest.fixture(scope="module")
def cases() -> tuple[CorpusCase, ...]:
    return load_corpus(CORPUS)


@pytest.fixture(scope="module")
def report(policy: Policy, cases: tuple[CorpusCase, ...], classifier: Classifier) -> CoverageReport:
    return run_corpus(policy, cases, classifier.classify)


def _pinned(classification: Classification) -> dict[str, Any]:
    out = classification.to_dict()
    del out["policy_version"]
    return out


def test_every_case_gets_its_expected_scenario_and_rule(report: CoverageReport) -> None:
    misses = [f"{o.case.source}: {o.case.name}: {o.problem}" for o in report.failures]
    assert misses == []


def test_every_rule_and_scenario_is_reached_by_a_case(report: CoverageReport) -> None:
    assert (report.unreached_rules, report.unreached_scenarios) == ((), ())


@pytest.mark.parametrize("corpus_file", sorted(p.name for p in CORPUS.glob("*.yaml")))
def test_corpus_outputs_are_pinned(report: CoverageReport, snapshot: Any, corpus_file: str) -> None:
    """One JSON snapshot per corpus file (__snapshots__/test_corpus/): small enough to review on a change."""
    outputs = {o.case.name: _pinned(o.classification) for o in report.outcomes
               if o.classification and o.case.source.split(":")[0] == corpus_file}
    assert outputs == snapshot.use_extension(JSONSnapshotExtension)


def test_classifications_carry_the_policy_version(report: CoverageReport, policy: Policy) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", policy.version)
    assert {o.classification.policy_version for o in report.outcomes if o.classification} == {policy.version}


def test_durable_and_python_predicates_agree_on_every_case(report: CoverageReport, policy: Policy) -> None:
    matcher = PredicateMatcher(policy.rules)
    for outcome in report.outcomes:
        if outcome.classification is None:
            continue
        chosen = matcher.first_match(outcome.classification.fact)
        assert (chosen.id if chosen else None) == outcome.classification.rule_id, outcome.case.name


def _grid(base: dict[str, Any], **choices: list[Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the choices on top of `base`; None leaves the field out (unknown)."""
    names = list(choices)
    for values in itertools.product(*choices.values()):
        fact = dict(base)
        fact.update({n: v for n, v in zip(names, values, strict=True) if v is not None})
        yield fact


def test_server_acceptance_and_sm_ack_are_never_recipient_evidence(classifier: Classifier) -> None:
    facts = _grid(
        {"correlated": True},
        kind=["send_accepted", "sm_ack"],
        message_type=["chat", "normal", "headline", "groupchat"],
        endpoint_type=["bare_jid", "full_jid", "muc_room_jid", None],
        recipient_available=[True, False, None],
        receipt_requested=[True, None],
        cap_offline_storage=[True, False, None],
    )
    for fact in facts:
        result = classifier.classify(fact)
        assert result.assessment.subclass not in RECIPIENT_SUCCESS, (fact, result.scenario)
        if fact.get("receipt_requested"):
            assert result.assessment.category != "success", (fact, result.scenario)


RECEIPT = {
    "kind": "receipt", "message_type": "chat", "endpoint_type": "bare_jid", "correlated": True,
    "sender_is_addressee": True, "sender_resource_known": True, "sender_authenticated": True,
    "receipt_requested": True, "delayed": False, "late": False,
}


def test_receipt_is_client_delivery_not_awareness(classifier: Classifier) -> None:
    result = classifier.classify(RECEIPT)
    assert result.assessment.subclass == "success.delivered_to_client"
    assert result.grade is not None and result.grade.id == "delivery_receipt"
    assert "notification.endpoint.accepted" in result.events
    assert any(re.search(r"awareness|read", note, re.IGNORECASE) for note in result.notes), result.notes


def test_displayed_marker_is_display_not_comprehension(classifier: Classifier) -> None:
    marker = {**RECEIPT, "kind": "marker", "marker": "displayed", "markable": True}
    del marker["receipt_requested"]
    result = classifier.classify(marker)
    assert result.assessment.subclass == "success.displayed_by_client"
    assert result.grade is not None and result.grade.id == "displayed_marker"
    assert any("comprehension" in note.lower() for note in result.notes), result.notes


def test_missing_receipt_is_undef_never_fail(classifier: Classifier) -> None:
    result = classifier.classify({"kind": "timer", "timer": "receipt_timeout", "correlated": True,
                                  "receipt_requested": True})
    assert result.assessment.subclass == "undef.receipt_requested_no_response"
    for fact in _grid({"kind": "timer", "timer": "receipt_timeout", "correlated": True},
                      cap_receipts=[True, False, None], recipient_available=[True, False, None],
                      endpoint_type=["bare_jid", "full_jid", None]):
        assert classifier.classify(fact).assessment.category != "fail", fact


def test_muc_reflection_is_room_level_only(classifier: Classifier) -> None:
    result = classifier.classify({"kind": "muc_reflection", "message_type": "groupchat",
                                  "endpoint_type": "muc_room_jid", "correlated": True})
    assert result.assessment.subclass == "undef.muc_room_message_participant_uncertain"


def test_receipt_from_someone_else_is_not_success(classifier: Classifier) -> None:
    for fact in _grid({**RECEIPT, "sender_is_addressee": False},
                      sender_resource_known=[True, False, None], sender_authenticated=[True, False, None]):
        assert classifier.classify(fact).assessment.category != "success", fact


def test_unmatched_fact_is_unmapped_and_dead_lettered(report: CoverageReport) -> None:
    unmatched = [o for o in report.outcomes if o.case.expect_scenario == "unmapped"]
    assert unmatched, "the corpus needs a case expecting `unmapped`"
    for outcome in unmatched:
        result = outcome.classification
        assert result is not None
        assert (result.scenario, result.rule_id, result.dead_letter) == ("unmapped", None, True)
        assert result.assessment.subclass == "undef.unmapped"


def test_rules_check_passes_on_the_shipped_tables(capsys: pytest.CaptureFixture[str], policy: Policy) -> None:
    assert main(["rules", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"policy {policy.version} OK: ")


def test_rules_coverage_passes_on_the_shipped_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "coverage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("cases, 0 differ from `expect`")
    assert lines[1:3] == ["0 rules no case reaches", "0 scenarios no case reaches"]
    assert re.fullmatch(r"\d+ sequences, 0 differ from `expect`", lines[3]), lines
    assert lines[4:] == []


def test_every_sequence_gives_its_expected_message_assessment(policy: Policy, classifier: Classifier) -> None:
    sequences = load_sequences(CORPUS)
    names = {c.name for c in sequences}
    assert {"temporary_error_then_receipt_timeout", "chat_states_after_server_ack"} <= names
    outcomes = run_sequences(policy, sequences, classifier.classify)
    assert [(o.case.name, o.problem) for o in outcomes if o.problem] == []


@pytest.fixture
def tables_copy(tmp_path: Path) -> Path:
    for name in ("rules", "mappings"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def _first_line(path: Path, pattern: str) -> tuple[int, str]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if re.search(pattern, line):
            return number, line
    raise AssertionError(f"{pattern!r} not in {path}")


def _replace_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def _messages(root: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(root)
    return list(caught.value.messages)


def test_check_names_file_and_line_of_a_broken_yaml_value(tables_copy: Path) -> None:
    path = sorted((tables_copy / "rules").glob("*.yaml"))[0]
    number, line = _first_line(path, r"^\s+scenario: ")
    _replace_line(path, number, line.split("scenario:")[0] + "scenario: [unclosed")
    messages = _messages(tables_copy)
    assert len(messages) == 1
    where = messages[0].split(": ")[0]
    assert where in (f"rules/{path.name}:{number}", f"rules/{path.name}:{number + 1}")


def test_check_names_file_and_line_of_an_unknown_scenario(tables_copy: Path) -> None:
    path = sorted((tables_copy / "rules").glob("*.yaml"))[0]
    number, line = _first_line(path, r"^\s+scenario: ")
    _replace_line(path, number, line.split("scenario:")[0] + "scenario: no_such_scenario")
    assert any(m.startswith(f"rules/{path.name}:{number}: ") and "unknown scenario 'no_such_scenario'" in m
               for m in _messages(tables_copy))


def test_check_names_file_and_line_of_a_schema_violation(tables_copy: Path) -> None:
    path = tables_copy / "mappings" / "scenarios.yaml"
    number, line = _first_line(path, r"confidence: high")
    _replace_line(path, number, line.replace("confidence: high", "confidence: certain", 1))
    messages = _messages(tables_copy)
    assert len(messages) == 1
    assert messages[0].startswith(f"mappings/scenarios.yaml:{number}: ")
    assert "'certain' is not one of ['low', 'medium', 'high']" in messages[0]


def test_reload_200_times_swaps_policy_without_leaking(
    policy: Policy, report: CoverageReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without freeing the old ruleset this grew ~350 KiB per reload (bench/policy_memory.py prints the RSS)
    rulesets = NativeRulesets(monkeypatch)
    matched = next(o.classification for o in report.outcomes if o.classification and o.classification.rule_id)
    rule = policy.rule(matched.rule_id)  # type: ignore[arg-type]
    other_scenario = next(s for s in policy.scenarios if s not in (rule.scenario, "unmapped"))
    rules = tuple(dataclasses.replace(r, scenario=other_scenario) if r is rule else r for r in policy.rules)
    other = dataclasses.replace(policy, version="0" * 16, rules=rules)
    with Classifier(policy) as classifier:
        assert classifier.classify(matched.fact).scenario == rule.scenario
        for _ in range(100):
            classifier.reload(other)
            classifier.reload(policy)
        assert len(rulesets.live) == 1, "each reload frees the ruleset it replaces"
        classifier.reload(other)
        result = classifier.classify(matched.fact)
        assert (result.scenario, result.policy_version) == (other_scenario, "0" * 16)
    assert (rulesets.created, rulesets.live, rulesets.unknown_deletes) == (202, set(), 0)


def test_committed_traceability_is_generated_from_the_current_tables_and_corpus(
        policy: Policy, report: CoverageReport) -> None:
    committed = (ROOT / "spec" / "traceability.md").read_text(encoding="utf-8")
    assert committed == traceability_markdown(policy, report), (
        "spec/traceability.md is stale: run `xmpp-connect rules traceability --output spec/traceability.md`"
    )
    for rule in policy.rules:
        assert f"| `{rule.id}` | {rule.source.rsplit(':', 1)[0]} |" in committed
    for outcome in report.outcomes:
        assert f"`{outcome.case.name}`" in committed
