"""Each invariant of mappings/invariants.yaml, broken in a copy of the shipped tables the way a careless
author would: `rules check` (and any policy load) must refuse it with the invariant's §, the rule's and
scenario's file:line and a counterexample fact. The shipped tables themselves prove every invariant."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from xmpp_connect.app.cli import main
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy import PolicyError, load_policy
from xmpp_connect.policy.paths import default_policy_dir
from xmpp_connect.policy.symbolic import CompiledRules
from xmpp_connect.policy.yaml_source import read_yaml

ROOT = default_policy_dir()
INVARIANTS = ROOT / "mappings" / "invariants.yaml"


@dataclass(frozen=True)
class Edit:
    """Replace `old` (found exactly once, or `everywhere`) by `new` in `path` of the copy."""

    path: str
    old: str
    new: str
    everywhere: bool = False


@dataclass(frozen=True)
class Careless:
    """A careless edit and what the refusal must name."""

    invariant: str
    edits: tuple[Edit, ...]
    rule: str | None
    fact_kind: str


SERVER_ACK_OLD = "  assessment: {category: undef, subclass: undef.server_acknowledged_only, confidence: high}"
SERVER_ACK_NEW = "  assessment: {category: success, subclass: success.delivered_to_client, confidence: high}"
DEFERRED_ORDER = "  - fail.expired\n  - undef.deferred\n  - undef.presence_unavailable\n"
PRESENCE_LAST = "  - undef.sent_to_server_only\n  - success.presence_observed\n"

CARELESS = (
    Careless("server_acceptance_is_not_delivery",
             (Edit("mappings/scenarios.yaml", SERVER_ACK_OLD, SERVER_ACK_NEW),),
             "acceptance.server_acknowledged", "sm_ack"),
    Careless("server_acceptance_is_not_endpoint_acceptance",
             (Edit("mappings/scenarios.yaml",
                   "subclass: undef.sent_to_server_only, confidence: medium}\n"
                   "  events: [notification.attempt.accepted_by_provider]",
                   "subclass: undef.sent_to_server_only, confidence: medium}\n"
                   "  events: [notification.attempt.accepted_by_provider, notification.endpoint.accepted]"),),
             "acceptance.sent_to_server", "send_accepted"),
    Careless("presence_is_not_delivery",
             (Edit("mappings/scenarios.yaml",
                   "subclass: success.presence_observed, confidence: medium}\n"
                   "  events: [notification.endpoint.accepted]\n  attempt_state: endpoint_available",
                   "subclass: success.presence_observed, confidence: medium}\n"
                   "  events: [notification.endpoint.accepted]\n  attempt_state: delivered_to_client"),),
             "presence.available", "presence"),
    Careless("chat_state_is_weak_context",
             (Edit("mappings/scenarios.yaml", "  grade: weak_context", "  grade: delivery_receipt"),),
             "chat_state.activity", "chat_state"),
    Careless("room_acceptance_is_not_participant_awareness",
             (Edit("mappings/scenarios.yaml",
                   "undef, subclass: undef.muc_room_message_participant_uncertain, confidence: medium}\n"
                   "  events: [notification.endpoint.accepted]",
                   "success, subclass: success.delivered_to_client, confidence: medium}\n"
                   "  events: [notification.endpoint.accepted]"),),
             "muc.room_accepted", "muc_reflection"),
    Careless("pubsub_publication_is_not_awareness",
             (Edit("mappings/scenarios.yaml", "  events: [feed.item.published]",
                   "  events: [feed.item.published, interaction.notification.opened]"),),
             "pubsub.published", "pubsub_published"),
    Careless("archive_presence_is_reconstruction_only",
             (Edit("mappings/scenarios.yaml",
                   "subclass: undef.server_acknowledged_only, confidence: medium}\n  events: []\n"
                   "  attempt_state: null",
                   "subclass: undef.server_acknowledged_only, confidence: medium}\n  events: []\n"
                   "  attempt_state: delivered_to_client"),),
             "acceptance.archive_match", "archive_match"),
    Careless("receipt_is_not_display",
             (Edit("rules/50_receipts.yaml",
                   "  when: {kind: receipt, correlated: true, sender_is_addressee: true}\n"
                   "  scenario: delivered_to_client",
                   "  when: {kind: receipt, correlated: true, sender_is_addressee: true}\n"
                   "  scenario: displayed_by_client"),),
             "receipts.from_addressee", "receipt"),
    Careless("non_addressee_is_not_participant_success",
             (Edit("rules/50_receipts.yaml",
                   "  when: {kind: receipt, correlated: true, sender_is_addressee: true}",
                   "  when: {kind: receipt, correlated: true}"),
              Edit("rules/50_receipts.yaml", "  when: {kind: receipt, sender_is_addressee: {not: true}}",
                   "  when: {kind: receipt, sender_is_addressee: {not: true}, delayed: true}")),
             "receipts.from_addressee", "receipt"),
    Careless("unauthenticated_bridge_is_not_participant_success",
             (Edit("rules/55_markers.yaml", "  when: {kind: marker, sender_authenticated: false}",
                   "  when: {kind: marker, sender_authenticated: false, delayed: true}"),),
             None, "marker"),
    Careless("uncorrelated_evidence_is_not_participant_success",
             (Edit("rules/60_inbound.yaml", "  when: {kind: inbound_message, correlated: {not: true}}",
                   "  when: {kind: inbound_message, correlated: {exists: false}}"),),
             None, "inbound_message"),
    Careless("tracking_context_is_not_participant_success",
             (Edit("mappings/scenarios.yaml", "  events: [interaction.unprompted_message_received]",
                   "  events: [interaction.unprompted_message_received,"
                   " interaction.acknowledgement_recorded]"),),
             "inbound.tracking_context", "inbound_message"),
    Careless("unreliable_occupant_is_not_participant_success",
             (Edit("rules/70_muc.yaml",
                   "  when: {kind: muc_marker, occupant_mapping_reliable: true, marker: {in: [displayed, "
                   "acknowledged]}}",
                   "  when: {kind: muc_marker, marker: {in: [displayed, acknowledged]}}"),),
             "muc.marker_reliable_occupant", "muc_marker"),
    Careless("missing_receipt_is_not_a_result",
             (Edit("mappings/scenarios.yaml",
                   "  assessment: {category: undef, subclass: undef.receipt_requested_no_response, "
                   "confidence: medium}",
                   "  assessment: {category: fail, subclass: fail.delivery_failed, confidence: medium}"),),
             "timers.receipt_timeout", "timer"),
    Careless("stanza_error_is_never_success",
             (Edit("mappings/stanza_errors.yaml",
                   "  assessment: {category: fail, subclass: fail.recipient_not_found, confidence: medium}",
                   "  assessment: {category: success, subclass: success.server_acknowledged, "
                   "confidence: medium}"),),
             "errors.condition.gone", "stanza_error"),
    Careless("temporary_error_is_not_permanent_rejection",
             (Edit("mappings/scenarios.yaml",
                   "  assessment: {category: undef, subclass: undef.deferred, confidence: medium}\n"
                   "  events: [notification.endpoint.rejected_temporary]",
                   "  assessment: {category: undef, subclass: undef.deferred, confidence: medium}\n"
                   "  events: [notification.endpoint.rejected_permanent]"),),
             "errors.wait_is_temporary", "stanza_error"),
    Careless("adapter_rejection_is_never_success",
             (Edit("mappings/scenarios.yaml",
                   "  assessment: {category: fail, subclass: fail.missing_jid, confidence: high}",
                   "  assessment: {category: success, subclass: success.sent_to_server, confidence: high}"),),
             "pre_send.missing_jid", "request_rejected"),
    Careless("no_legal_sounding_event_names",
             tuple(Edit(f"mappings/{name}.yaml", "interaction.notification.opened",
                        "interaction.recipient_legally_notified", everywhere=True)
                   for name in ("scenarios", "grades", "descriptor")),
             None, ""),
    Careless("receipt_timeout_never_hides_a_temporary_error",
             (Edit("mappings/precedence.yaml", DEFERRED_ORDER, "  - fail.expired\n"),
              Edit("mappings/precedence.yaml", "  - undef.offline_delivery_unknown\n",
                   "  - undef.offline_delivery_unknown\n" + DEFERRED_ORDER.split("\n", 1)[1])),
             "timers.receipt_timeout_unsupported", "timer"),
    Careless("presence_and_chat_state_never_lift_a_message_to_success",
             (Edit("mappings/precedence.yaml", PRESENCE_LAST, "  - undef.sent_to_server_only\n"),
              Edit("mappings/precedence.yaml", "  - undef.pubsub_publication_only\n",
                   "  - success.presence_observed\n  - undef.pubsub_publication_only\n")),
             "presence.full_jid_available", "presence"),
)


def _copy(tmp_path: Path) -> Path:
    for name in ("rules", "mappings"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def _apply(root: Path, edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        path = root / edit.path
        text = path.read_text(encoding="utf-8")
        assert text.count(edit.old) == 1 or (edit.everywhere and edit.old in text), (edit.old, edit.path)
        path.write_text(text.replace(edit.old, edit.new), encoding="utf-8")


def _line(root: Path, relpath: str, pattern: str) -> int:
    for number, line in enumerate((root / relpath).read_text(encoding="utf-8").splitlines(), 1):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in {relpath}")


def _invariant_ids() -> list[str]:
    doc = read_yaml(INVARIANTS, "mappings/invariants.yaml")
    assert not isinstance(doc, Exception) and hasattr(doc, "data")
    return [entry["id"] for entry in doc.data["invariants"]]  # type: ignore[union-attr]


def test_every_shipped_invariant_has_a_careless_edit_test() -> None:
    assert sorted(c.invariant for c in CARELESS) == sorted(_invariant_ids())


def test_the_shipped_tables_prove_every_invariant() -> None:
    assert {inv.id for inv in load_policy().invariants} == set(_invariant_ids())


@pytest.mark.parametrize("careless", CARELESS, ids=lambda c: c.invariant)
def test_a_careless_edit_is_refused_with_a_counterexample(tmp_path: Path, careless: Careless,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path)
    _apply(root, careless.edits)
    with pytest.raises(PolicyError) as caught:
        load_policy(root)
    mine = [m for m in caught.value.messages if f"breaks invariant {careless.invariant} (" in m]
    assert mine, caught.value.messages
    message = mine[0]
    invariant_line = _line(root, "mappings/invariants.yaml", rf"- id: {careless.invariant}$")
    assert f"mappings/invariants.yaml:{invariant_line})" in message
    assert "§" in message.split("breaks invariant", 1)[1].split(";")[0]
    if careless.rule is not None:
        assert f"rule {careless.rule} (rules/" in message, message
        assert re.match(r"rules/\d+_\w+\.yaml:\d+: ", message), message
    assert re.search(r"via scenario \S+ \(mappings/\w+\.yaml:\d+\)", message), message
    fact = json.loads(message.split("counterexample fact: ", 1)[1])
    if careless.fact_kind:
        assert fact["kind"] == careless.fact_kind
    if careless.rule is not None:
        _fires_for(root, careless.rule, fact)

    assert main(["rules", "check", "--policy", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"breaks invariant {careless.invariant} (" in err


def _fires_for(root: Path, rule: str, fact: dict[str, object]) -> None:
    """The counterexample is a real fact: under the broken tables (loaded without the proof), the durable
    rules engine classifies it by the rule the refusal names."""
    with Classifier(load_policy(root, check_invariants=False)) as classifier:
        assert classifier.classify(fact).rule_id == rule


def test_the_issues_overclaim_edit_is_refused_by_rules_check(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path)
    _apply(root, (Edit("mappings/scenarios.yaml", SERVER_ACK_OLD, SERVER_ACK_NEW),))
    assert main(["rules", "check", "--policy", str(root)]) == 1
    err = capsys.readouterr().err
    rule_line = _line(root, "rules/30_acceptance.yaml", r"- id: acceptance.server_acknowledged$")
    scenario_line = _line(root, "mappings/scenarios.yaml", r"^server_acknowledged:")
    assert (f"rules/30_acceptance.yaml:{rule_line}: breaks invariant server_acceptance_is_not_delivery "
            "(§23 Important mapping rule") in err
    assert f"via scenario server_acknowledged (mappings/scenarios.yaml:{scenario_line}) gives subclass " \
           "success.delivered_to_client" in err
    assert 'counterexample fact: {"kind": "sm_ack"}' in err


def test_every_witness_is_classified_by_its_rule_under_durable_rules() -> None:
    """The solver's first-match reasoning agrees with the engine: for every shipped rule it finds a fact
    (every rule is reachable: the corpus reaches each one), and the durable engine picks that rule for it;
    a fact no rule matches is found only if the engine leaves it unmapped."""
    policy = load_policy()
    compiled = CompiledRules.build(policy.rules, policy.vocabulary)
    with Classifier(policy) as classifier:
        for index, rule in enumerate(policy.rules):
            fact = compiled.witness(index, {})
            assert fact is not None, f"{rule.id} ({rule.source}) is shadowed by earlier rules"
            assert classifier.classify(fact).rule_id == rule.id, (rule.id, fact)
        for kind in sorted(policy.vocabulary.fields["kind"].values or ()):
            unmatched = compiled.unmatched_witness({"kind": kind})
            if unmatched is not None:
                assert classifier.classify(unmatched).scenario == "unmapped", unmatched
