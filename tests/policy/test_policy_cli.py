"""`xmpp-connect rules check | explain | coverage | report` on the fixture tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xmpp_connect.app.cli import main
from xmpp_connect.policy import Policy

FIXTURE_POLICY = Path(__file__).parent / "fixtures" / "policy"
FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_passes_with_a_summary(capsys: pytest.CaptureFixture[str], fixture_policy: Policy) -> None:
    code, out, err = _run(capsys, "rules", "check", "--policy", str(FIXTURE_POLICY))
    assert code == 0
    assert re.fullmatch(rf"policy {fixture_policy.version} OK: 35 rules, 36 scenarios \(23 stanza errors\), "
                        r"8 grades, 2 invariants proven over every fact, 0 warnings \(\d+ ms\)\n", out), out
    assert err == ""


def test_check_fails_with_file_line_messages(capsys: pytest.CaptureFixture[str], policy_copy: Path) -> None:
    path = policy_copy / "rules" / "70_muc.yaml"
    path.write_text(path.read_text().replace("scenario: muc_room_accepted", "scenario: muc_nowhere"))
    code, out, err = _run(capsys, "rules", "check", "--policy", str(policy_copy))
    assert code == 1
    assert out == ""
    assert "rules/70_muc.yaml:4: rule 'muc.reflection': unknown scenario 'muc_nowhere'" in err.splitlines()


def test_explain_fact_names_rule_conditions_and_classification(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    fact = tmp_path / "fact.json"
    fact.write_text(json.dumps({"kind": "receipt", "correlated": True, "sender_is_addressee": True,
                                "sender_authenticated": True, "late": True}))
    code, out, _ = _run(capsys, "rules", "explain", "--policy", str(FIXTURE_POLICY), "--fact", str(fact))
    assert code == 0
    text, _, payload = out.partition("\n{")
    assert "Rule receipts.late fired (rules/50_receipts.yaml:13) -> scenario delivered_to_client_late" in text
    assert "held   late = true   [fact: true]" in text
    assert "Earlier rule receipts.from_addressee (rules/50_receipts.yaml:1) missed by one condition:" in text
    assert "FAILED late != true (or absent)   [fact: true]" in text
    classification = json.loads("{" + payload)
    assert classification["scenario"] == "delivered_to_client_late"
    assert classification["rule_id"] == "receipts.late"


def test_explain_stanza_with_context(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stanza = tmp_path / "receipt.xml"
    stanza.write_text('<message xmlns="jabber:client" from="mallory@localhost/x" to="alice@localhost/a" '
                      'id="r9"><received xmlns="urn:xmpp:receipts" id="msg-1"/></message>')
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"outbound": {"stanza_id": "msg-1", "to_jid": "bob@localhost",
                                                "endpoint_type": "bare_jid", "receipt_requested": True}}))
    code, out, _ = _run(capsys, "rules", "explain", "--policy", str(FIXTURE_POLICY),
                        "--stanza", str(stanza), "--context", str(context))
    assert code == 0
    classification = json.loads(out[out.index("\n{") + 1:])
    assert classification["scenario"] == "receipt_identity_uncertain"
    assert classification["assessment"]["category"] == "undef"
    assert classification["fact"]["sender_is_addressee"] is False


def test_explain_unmatched_and_invalid_fact(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fact = tmp_path / "fact.json"
    fact.write_text(json.dumps({"kind": "chat_state", "chat_state": "composing"}))
    code, out, _ = _run(capsys, "rules", "explain", "--policy", str(FIXTURE_POLICY), "--fact", str(fact))
    assert code == 0
    assert out.startswith("No rule matched: the fact is `unmapped`")
    fact.write_text(json.dumps({"kind": "chat_state", "mood": "happy"}))
    code, _, err = _run(capsys, "rules", "explain", "--policy", str(FIXTURE_POLICY), "--fact", str(fact))
    assert code == 2
    assert "unknown fact field 'mood'" in err


def test_coverage_lists_misses_and_unreached(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in FIXTURE_CORPUS.glob("*.yaml"):
        (corpus / path.name).write_text(path.read_text())
    (corpus / "99_wrong.yaml").write_text(
        "- name: sm_ack_is_not_delivery\n"
        "  fact: {kind: sm_ack}\n"
        "  expect: {scenario: delivered_to_client, subclass: success.delivered_to_client,\n"
        "           events: [notification.endpoint.accepted], grade: delivery_receipt,\n"
        "           attempt_state: delivered_to_client}\n"
    )
    code, out, _ = _run(capsys, "rules", "coverage", "--policy", str(FIXTURE_POLICY), "--corpus", str(corpus))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "10 cases, 1 differ from `expect`"
    assert lines[1] == (
        "  99_wrong.yaml:1: sm_ack_is_not_delivery: scenario 'server_acknowledged', expected "
        "'delivered_to_client'; subclass 'undef.server_acknowledged_only', expected "
        "'success.delivered_to_client'; events ['notification.attempt.accepted_by_provider'], expected "
        "['notification.endpoint.accepted']; grade 'server_acceptance', expected 'delivery_receipt'; "
        "attempt_state 'server_acknowledged', expected 'delivered_to_client'")
    assert "  markers.displayed" in lines
    assert "  stanza_error.gone" in lines
    assert "  receipts.from_addressee" not in lines


def test_report_is_markdown_of_the_whole_table(capsys: pytest.CaptureFixture[str],
                                               fixture_policy: Policy) -> None:
    code, out, _ = _run(capsys, "rules", "report", "--policy", str(FIXTURE_POLICY))
    assert code == 0
    assert out.startswith(f"# xmpp-connect policy {fixture_policy.version}\n")
    for heading in ("## Rules", "## Scenarios", "## Stanza errors (§24)", "## Evidence grades (§14)",
                    "## Commands (§17)", "## Precedence (strongest first)"):
        assert f"\n{heading}\n" in out
    assert ("| 3 | `receipts.from_addressee` | §12.4 Receipt requested and received | `kind = \"receipt\", "
            "correlated = true, sender_is_addressee = true, late != true (or absent), "
            "any(sender_resource_known = true \\| sender_authenticated = true)` | `delivered_to_client` | "
            "rules/50_receipts.yaml:1 |") in out
    assert "| ACK, OK, CONFIRM, YES | `acknowledgement` |" in out


def test_report_shows_interpretations_and_moot_timeouts_of_the_shipped_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An auditor reads from the report what an assessment lets the engine conclude, and which evidence
    makes a receipt timeout moot (mappings/precedence.yaml)."""
    code, out, _ = _run(capsys, "rules", "report")
    assert code == 0
    assert "\n### What a coordination engine may read from the strongest evidence\n" in out
    assert ("| `success.delivered_to_client` | undef.delivered_but_awareness_unproven: strong client-delivery"
            " evidence; reading not proven. |") in out
    assert "| any other fail | XMPP channel failure for this message" in out
    moot = out.split("### Timeouts made moot", 1)[1]
    assert "| `receipt_timeout` | `success.acknowledged_by_client`, `success.delivered_to_client`" in moot
