"""`rules coverage` and `rules diff` on a changed output: a policy author changing what a scenario means (not
which rule fires) sees every corpus case it changes, field by field, before the change goes live."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xmpp_connect.app.cli import main
from xmpp_connect.policy.paths import default_policy_dir

ROOT = default_policy_dir()
OFFLINE_OLD = "  assessment: {category: undef, subclass: undef.offline_stored, confidence: medium}"
OFFLINE_NEW = "  assessment: {category: undef, subclass: undef.offline_delivery_unknown, confidence: medium}"
SERVER_ACK_OLD = "  assessment: {category: undef, subclass: undef.server_acknowledged_only, confidence: high}"
SERVER_ACK_NEW = "  assessment: {category: success, subclass: success.delivered_to_client, confidence: high}"


def _copy(tmp_path: Path, name: str, old: str | None = None, new: str = "") -> Path:
    root = tmp_path / name
    for table in ("rules", "mappings"):
        shutil.copytree(ROOT / table, root / table)
    if old is not None:
        scenarios = root / "mappings" / "scenarios.yaml"
        text = scenarios.read_text(encoding="utf-8")
        assert text.count(old) == 1
        scenarios.write_text(text.replace(old, new), encoding="utf-8")
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_coverage_reports_a_changed_output_though_rule_and_scenario_are_the_same(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changed = _copy(tmp_path, "new", OFFLINE_OLD, OFFLINE_NEW)
    code, out, _ = _run(capsys, "rules", "coverage", "--policy", str(changed))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("cases, 1 differ from `expect`")
    assert lines[1].startswith("  12_3_recipient_resource.yaml:")
    assert lines[1].endswith(": subclass 'undef.offline_delivery_unknown', expected 'undef.offline_stored'")


def test_diff_of_identical_policies_shows_no_change(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "rules", "diff", str(ROOT), str(_copy(tmp_path, "same")))
    assert code == 0
    assert out.splitlines()[0].endswith(" cases, 0 change")


def test_diff_names_each_case_and_output_that_changes(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    new = _copy(tmp_path, "new", OFFLINE_OLD, OFFLINE_NEW)
    code, out, _ = _run(capsys, "rules", "diff", str(ROOT), str(new))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith(" cases, 1 change")
    assert lines[1].startswith("  12_3_recipient_resource.yaml:")
    assert lines[1].endswith(': subclass "undef.offline_stored" -> "undef.offline_delivery_unknown"')
    assert len(lines) == 3 and lines[2].endswith(" sequences, 0 change the message's assessment")


def test_diff_of_the_overclaim_shows_the_changed_cases_and_the_broken_invariant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _copy(tmp_path, "new", SERVER_ACK_OLD, SERVER_ACK_NEW)
    code, out, _ = _run(capsys, "rules", "diff", str(ROOT), str(new))
    assert code == 1
    changed = [line for line in out.splitlines() if "subclass \"undef.server_acknowledged_only\" -> " in line]
    assert changed and all('category "undef" -> "success"' in line for line in changed)
    assert all('grade "server_acceptance" -> "server_acceptance"' not in line for line in changed)
    assert "invariant violations in NEW_DIR" in out
    assert "breaks invariant server_acceptance_is_not_delivery" in out


def test_diff_reads_an_older_policy_without_invariants(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    old = _copy(tmp_path, "old")
    (old / "mappings" / "invariants.yaml").unlink()
    code, out, _ = _run(capsys, "rules", "diff", str(old), str(ROOT))
    assert code == 0, out
    assert main(["rules", "check", "--policy", str(old)]) == 1
    assert "mappings/invariants.yaml: required table is missing" in capsys.readouterr().err


def test_diff_shows_a_precedence_change_through_the_sequences(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The chat-state defect put back (presence above server acceptance): no single-fact case changes, the
    sequences show the message lifted to success, and the broken invariant is named."""
    new = _copy(tmp_path, "new")
    precedence = new / "mappings" / "precedence.yaml"
    text = precedence.read_text(encoding="utf-8")
    last = "  - undef.sent_to_server_only\n"
    text = text.replace(last + "  - success.presence_observed\n", last)
    text = text.replace("  - undef.pubsub_publication_only\n",
                        "  - success.presence_observed\n  - undef.pubsub_publication_only\n")
    precedence.write_text(text, encoding="utf-8")
    code, out, _ = _run(capsys, "rules", "diff", str(ROOT), str(new))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith(" cases, 0 change")
    assert lines[1].endswith(" sequences, 2 change the message's assessment")
    for name in ("chat_states_after_server_ack", "presence_after_server_ack"):
        lifted = ('"subclass": "undef.server_acknowledged_only"} -> {"category": "success", '
                  '"subclass": "success.presence_observed"}')
        assert any(name in line and lifted in line for line in lines[2:4]), lines
    assert "breaks invariant presence_and_chat_state_never_lift_a_message_to_success" in out
