"""Loading: an immutable Policy from valid tables; every problem as file:line from broken ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xmpp_connect.policy import Policy, PolicyError, load_policy
from xmpp_connect.policy.model import UNMAPPED


def _line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def _errors(root: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(root)
    return list(caught.value.messages)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_fixture_policy_loads_with_rules_in_priority_order(fixture_policy: Policy) -> None:
    ids = [rule.id for rule in fixture_policy.rules]
    assert ids[:3] == ["acceptance.sent_to_server", "acceptance.sm_ack", "receipts.from_addressee"]
    assert [rule.index for rule in fixture_policy.rules] == list(range(len(ids)))
    assert fixture_policy.rule("receipts.from_addressee").source == "rules/50_receipts.yaml:1"
    assert re.fullmatch(r"[0-9a-f]{16}", fixture_policy.version)
    assert fixture_policy.warnings == ()


def test_builtin_unmapped_scenario_is_dead_lettered_undef(fixture_policy: Policy) -> None:
    unmapped = fixture_policy.scenario(UNMAPPED)
    assert unmapped.assessment.category == "undef"
    assert unmapped.assessment.subclass == "undef.unmapped"
    assert unmapped.assessment.confidence == "low"
    assert unmapped.events == ()
    assert unmapped.dead_letter


def test_stanza_errors_become_scenarios(fixture_policy: Policy) -> None:
    entry = fixture_policy.stanza_errors["item_not_found"]
    assert entry.condition == "item-not-found"
    scenario = fixture_policy.scenario("stanza_error.item_not_found")
    assert scenario.assessment.subclass == "fail.stanza_error"
    assert scenario.retryable is False


def test_policy_is_immutable(fixture_policy: Policy) -> None:
    with pytest.raises(TypeError):
        fixture_policy.scenarios["x"] = fixture_policy.scenario(UNMAPPED)  # type: ignore[index]
    with pytest.raises(TypeError):
        fixture_policy.rules[0].when["kind"] = "timer"  # type: ignore[index]


def test_version_depends_on_every_table_byte(policy_copy: Path, fixture_policy: Policy) -> None:
    assert load_policy(policy_copy).version == fixture_policy.version
    _replace(policy_copy / "mappings" / "scenarios.yaml", "this is not delivery.", "this is not delivery!")
    assert load_policy(policy_copy).version != fixture_policy.version


def test_yaml_syntax_error_names_file_and_line(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "50_receipts.yaml"
    _replace(path, "late: true}", "late: true")
    line = _line_of(path, "late: true")
    errors = _errors(policy_copy)
    assert len(errors) == 1
    assert errors[0].startswith("rules/50_receipts.yaml:")
    reported = int(errors[0].split(":")[1])
    assert line <= reported <= line + 1


def test_schema_violation_names_the_offending_line(policy_copy: Path) -> None:
    path = policy_copy / "mappings" / "scenarios.yaml"
    _replace(path, "{category: success, subclass: success.delivered_to_client, confidence: high}",
             "{category: maybe, subclass: success.delivered_to_client, confidence: high}")
    line = _line_of(path, "category: maybe")
    assert _errors(policy_copy) == [
        f"mappings/scenarios.yaml:{line}: delivered_to_client.assessment.category: "
        "'maybe' is not one of ['success', 'fail', 'undef']"
    ]


def test_unexpected_property_points_at_that_property(policy_copy: Path) -> None:
    path = policy_copy / "mappings" / "grades.yaml"
    _replace(path, "  strength: weak\n", "  strength: weak\n  colour: blue\n")
    errors = _errors(policy_copy)
    assert errors == [f"mappings/grades.yaml:{_line_of(path, 'colour: blue')}: server_acceptance: "
                      "Additional properties are not allowed ('colour' was unexpected)"]


def test_unknown_scenario_reference_and_unreached_scenario(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "55_markers.yaml"
    _replace(path, "scenario: displayed_by_client", "scenario: displayed_by_clent")
    errors = _errors(policy_copy)
    scenarios = policy_copy / "mappings" / "scenarios.yaml"
    assert errors == [
        f"mappings/scenarios.yaml:{_line_of(scenarios, 'displayed_by_client:')}: "
        "scenario 'displayed_by_client' is not reached by any rule",
        f"rules/55_markers.yaml:{_line_of(path, 'displayed_by_clent')}: "
        "rule 'markers.displayed': unknown scenario 'displayed_by_clent'",
    ]


def test_fact_fields_and_values_outside_the_vocabulary(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "55_markers.yaml"
    _replace(path, "    marker: displayed\n", "    marker: shown\n    colour: red\n")
    errors = _errors(policy_copy)
    assert errors == [
        f"rules/55_markers.yaml:{_line_of(path, 'marker: shown')}: "
        "field 'marker': 'shown' is not one of acknowledged, displayed, received",
        f"rules/55_markers.yaml:{_line_of(path, 'colour: red')}: "
        "unknown fact field 'colour' (not in facts.schema.json)",
    ]


def test_values_inside_any_and_operators_are_checked(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "50_receipts.yaml"
    _replace(path, "- {sender_authenticated: true}", "- {sender_authenticated: yes please}")
    _replace(path, "late: {not: true}", "late: {not: 3}")
    errors = _errors(policy_copy)
    late_line = _line_of(path, "late: {not: 3}")
    assert f"rules/50_receipts.yaml:{late_line}: field 'late': 3 is not a bool" in errors
    assert (f"rules/50_receipts.yaml:{_line_of(path, 'yes please')}: "
            "field 'sender_authenticated': 'yes please' is not a bool") in errors


def test_rule_without_kind_and_duplicate_id(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "90_timers.yaml"
    path.write_text(path.read_text(encoding="utf-8") + (
        "- id: timers.receipt_timeout\n"
        "  spec: x\n"
        "  when: {timer: expiry}\n"
        "  scenario: receipt_no_response\n"
    ), encoding="utf-8")
    errors = _errors(policy_copy)
    assert errors == [
        "rules/90_timers.yaml:5: duplicate rule id 'timers.receipt_timeout' "
        "(first at rules/90_timers.yaml:1)",
        "rules/90_timers.yaml:7: rule 'timers.receipt_timeout' does not test `kind` (equality or `in`)",
    ]


def test_kind_tested_with_not_is_not_a_positive_guard(policy_copy: Path) -> None:
    path = policy_copy / "rules" / "70_muc.yaml"
    _replace(path, "when: {kind: muc_reflection}", "when: {kind: {not: receipt}}")
    assert _errors(policy_copy) == [
        "rules/70_muc.yaml:3: rule 'muc.reflection' does not test `kind` (equality or `in`)"
    ]


def test_event_grade_and_precedence_cross_checks(policy_copy: Path) -> None:
    scenarios = policy_copy / "mappings" / "scenarios.yaml"
    _replace(scenarios, "events: [interaction.reply_received]", "events: [interaction.reply_invented]")
    _replace(scenarios, "grade: muc_room_accepted", "grade: muc_room_guessed")
    _replace(scenarios, "subclass: undef.identity_uncertain", "subclass: undef.identity_unclear")
    errors = _errors(policy_copy)
    assert set(errors) == {
        f"mappings/scenarios.yaml:{_line_of(scenarios, 'reply_invented')}: reply_received: event type "
        "'interaction.reply_invented' is not in descriptor emitted_event_types",
        f"mappings/scenarios.yaml:{_line_of(scenarios, 'undef.identity_unclear')}: "
        "receipt_identity_uncertain: subclass 'undef.identity_unclear' is missing from precedence.yaml order",
        f"mappings/scenarios.yaml:{_line_of(scenarios, 'muc_room_guessed')}: muc_room_accepted: grade "
        "'muc_room_guessed' is not in grades.yaml",
        "mappings/precedence.yaml:12: warning: precedence lists 'undef.identity_uncertain', "
        "which no scenario produces",
    }


def test_missing_required_grade_and_stanza_error(policy_copy: Path) -> None:
    grades = policy_copy / "mappings" / "grades.yaml"
    text = grades.read_text(encoding="utf-8")
    grades.write_text(text[: text.index("pubsub_published:")], encoding="utf-8")
    errors_path = policy_copy / "mappings" / "stanza_errors.yaml"
    text = errors_path.read_text(encoding="utf-8")
    start = text.index("gone:")
    errors_path.write_text(text[:start] + text[text.index("internal_server_error:"):], encoding="utf-8")
    _replace(policy_copy / "rules" / "80_errors.yaml", "scenario: stanza_error.gone", "scenario: unmapped")
    errors = _errors(policy_copy)
    assert "mappings/grades.yaml:1: the §14 grade 'pubsub_published' is missing" in errors
    assert ("mappings/stanza_errors.yaml:1: stanza error condition 'gone' (facts.schema.json) has no entry"
            in errors)


def test_missing_table_and_unknown_table(policy_copy: Path) -> None:
    (policy_copy / "mappings" / "commands.yaml").unlink()
    (policy_copy / "mappings" / "extra.yaml").write_text("a: 1\n")
    assert _errors(policy_copy) == [
        "mappings/commands.yaml: required table is missing",
        "mappings/extra.yaml: warning: unknown table, ignored",
    ]


def test_command_table_contradiction(policy_copy: Path) -> None:
    path = policy_copy / "mappings" / "commands.yaml"
    _replace(path, "[NO, DECLINE]", "[NO, DECLINE, ok]")
    errors = _errors(policy_copy)
    line = _line_of(path, "DECLINE, ok")
    assert f"mappings/commands.yaml:{line}: keyword 'ok' is already listed (line 2)" in errors
