"""Checks across tables that no single schema can make: references, reachability, vocabulary, precedence.

Errors: duplicate rule ids; a rule's unknown scenario; a scenario or stanza_error.<key> no rule reaches;
a fact field or value outside facts.schema.json; a rule not testing `kind` (equality or `in`, top level);
an event type missing from descriptor.yaml emitted_event_types; a referenced grade that does not exist;
a missing §14 grade; a subclass not starting with its category; a used subclass missing from precedence
`order`; a §24 condition missing from stanza_errors.yaml; a command classification outside the vocabulary;
a keyword listed twice.
Warnings: precedence entries no scenario produces (they rank nothing today, harmless).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.commands import CommandTable, command_key
from xmpp_connect.policy.model import STANZA_ERROR_PREFIX, UNMAPPED
from xmpp_connect.policy.problems import Problem
from xmpp_connect.policy.vocabulary import Vocabulary
from xmpp_connect.policy.yaml_source import YamlDocument

REQUIRED_GRADES = (
    "server_acceptance",
    "presence_available",
    "delivery_receipt",
    "displayed_marker",
    "acknowledgement",
    "authenticated_reply",
    "muc_room_accepted",
    "pubsub_published",
)
BUILTIN_SUBCLASSES = frozenset({"undef.unmapped"})
KIND_FIELD = "kind"


@dataclass(frozen=True)
class Tables:
    """The schema-valid documents of one policy directory."""

    rules: tuple[YamlDocument, ...]
    scenarios: YamlDocument
    stanza_errors: YamlDocument
    grades: YamlDocument
    commands: YamlDocument
    precedence: YamlDocument
    descriptor: YamlDocument

    def outcomes(self) -> Iterator[tuple[YamlDocument, str, Mapping[str, Any]]]:
        """Every scenario-like entry: (document, key, entry) for scenarios and stanza errors."""
        for doc in (self.scenarios, self.stanza_errors):
            for key, entry in doc.data.items():
                yield doc, key, entry


def cross_check(tables: Tables, vocabulary: Vocabulary) -> list[Problem]:
    return [
        *_check_rules(tables, vocabulary),
        *_check_outcomes(tables),
        *_check_grades(tables),
        *_check_precedence(tables),
        *_check_stanza_error_coverage(tables, vocabulary),
        *_check_commands(tables, vocabulary),
    ]


def _scenario_ids(tables: Tables) -> set[str]:
    ids = set(tables.scenarios.data)
    ids.update(STANZA_ERROR_PREFIX + key for key in tables.stanza_errors.data)
    return ids


def _check_rules(tables: Tables, vocabulary: Vocabulary) -> Iterator[Problem]:
    known = _scenario_ids(tables)
    first_seen: dict[str, str] = {}
    reached: set[str] = set()
    for doc in tables.rules:
        for i, rule in enumerate(doc.data):
            where = f"{doc.relpath}:{doc.line([i, 'id'])}"
            if rule["id"] in first_seen:
                message = f"duplicate rule id {rule['id']!r} (first at {first_seen[rule['id']]})"
                yield doc.problem([i, "id"], message)
            else:
                first_seen[rule["id"]] = where
            scenario = rule["scenario"]
            reached.add(scenario)
            if scenario not in known and scenario != UNMAPPED:
                yield doc.problem([i, "scenario"], f"rule {rule['id']!r}: unknown scenario {scenario!r}")
            if not _tests_kind(rule["when"]):
                yield doc.problem([i, "when"], f"rule {rule['id']!r} does not test `kind` (equality or `in`)")
            yield from _check_pattern(doc, [i, "when"], rule["when"], vocabulary)
    for doc, key, _entry in tables.outcomes():
        scenario_id = key if doc is tables.scenarios else STANZA_ERROR_PREFIX + key
        if scenario_id not in reached:
            yield doc.problem([key], f"scenario {scenario_id!r} is not reached by any rule")


def _tests_kind(when: Mapping[str, Any]) -> bool:
    condition = when.get(KIND_FIELD)
    if condition is None:
        return False
    return not isinstance(condition, dict) or "in" in condition


def _check_pattern(doc: YamlDocument, path: list[str | int], pattern: Mapping[str, Any],
                   vocabulary: Vocabulary) -> Iterator[Problem]:
    for name, condition in pattern.items():
        if name in ("any", "all"):
            for j, sub in enumerate(condition):
                yield from _check_pattern(doc, [*path, name, j], sub, vocabulary)
            continue
        spec = vocabulary.fields.get(name)
        if spec is None:
            yield doc.problem([*path, name], f"unknown fact field {name!r} (not in facts.schema.json)")
            continue
        for value in _compared_values(condition):
            if not spec.accepts(value):
                yield doc.problem([*path, name], f"field {name!r}: {value!r} is not {spec.describe()}")


def _compared_values(condition: Any) -> list[Any]:
    if not isinstance(condition, dict):
        return [condition]
    values = []
    for op in ("in", "not_in"):
        values.extend(condition.get(op, ()))
    if "not" in condition:
        values.append(condition["not"])
    return values


def _check_outcomes(tables: Tables) -> Iterator[Problem]:
    emitted = set(tables.descriptor.data.get("emitted_event_types", ()))
    grades = tables.grades.data
    for doc, key, entry in tables.outcomes():
        if doc is tables.scenarios and (key == UNMAPPED or key.startswith("stanza_error")):
            yield doc.problem([key], f"scenario id {key!r} is reserved")
        assessment = entry["assessment"]
        if not assessment["subclass"].startswith(assessment["category"] + "."):
            yield doc.problem([key, "assessment", "subclass"],
                              f"{key}: subclass {assessment['subclass']!r} is not in category "
                              f"{assessment['category']!r}")
        for j, event in enumerate(entry["events"]):
            if event not in emitted:
                yield doc.problem([key, "events", j],
                                  f"{key}: event type {event!r} is not in descriptor emitted_event_types")
        grade = entry["grade"]
        if grade is not None and grade not in grades:
            yield doc.problem([key, "grade"], f"{key}: grade {grade!r} is not in grades.yaml")


def _check_grades(tables: Tables) -> Iterator[Problem]:
    doc = tables.grades
    emitted = set(tables.descriptor.data.get("emitted_event_types", ()))
    for name in REQUIRED_GRADES:
        if name not in doc.data:
            yield doc.problem([], f"the §14 grade {name!r} is missing")
    for key, grade in doc.data.items():
        if grade["event_type"] not in emitted:
            yield doc.problem([key, "event_type"],
                              f"{key}: event type {grade['event_type']!r} is not in descriptor.yaml "
                              "emitted_event_types")


def _used_subclasses(tables: Tables) -> set[str]:
    used = {entry["assessment"]["subclass"] for _doc, _key, entry in tables.outcomes()}
    used.update(c["result"]["subclass"] for c in tables.precedence.data.get("conflicts", ()))
    return used


def _check_precedence(tables: Tables) -> Iterator[Problem]:
    doc = tables.precedence
    used = _used_subclasses(tables)
    order = doc.data["order"]
    for j, subclass in enumerate(order):
        if subclass not in used and subclass not in BUILTIN_SUBCLASSES:
            yield doc.problem(["order", j], f"precedence lists {subclass!r}, which no scenario produces",
                              severity="warning")
    for doc_, key, entry in tables.outcomes():
        subclass = entry["assessment"]["subclass"]
        if subclass not in order:
            yield doc_.problem([key, "assessment", "subclass"],
                               f"{key}: subclass {subclass!r} is missing from precedence.yaml order")
    for j, conflict in enumerate(doc.data.get("conflicts", ())):
        if conflict["result"]["subclass"] not in order:
            yield doc.problem(["conflicts", j, "result", "subclass"],
                              f"conflict {conflict['name']!r}: result subclass is missing from order")
        for side in ("when_any", "and_any"):
            for k, subclass in enumerate(conflict[side]):
                if subclass not in used:
                    yield doc.problem(["conflicts", j, side, k],
                                      f"conflict {conflict['name']!r}: {subclass!r} is not produced by any "
                                      "scenario", severity="warning")


def _check_stanza_error_coverage(tables: Tables, vocabulary: Vocabulary) -> Iterator[Problem]:
    doc = tables.stanza_errors
    spec = vocabulary.fields.get("error_condition")
    conditions = set(spec.values or ()) if spec is not None else set()
    for condition in sorted(conditions - set(doc.data)):
        yield doc.problem([], f"stanza error condition {condition!r} (facts.schema.json) has no entry")
    for key in doc.data:
        if conditions and key not in conditions:
            yield doc.problem([key], f"{key!r} is not an error_condition of facts.schema.json")


def _check_commands(tables: Tables, vocabulary: Vocabulary) -> Iterator[Problem]:
    doc = tables.commands
    spec = vocabulary.fields.get("command")
    allowed = set(spec.values or ()) if spec is not None else set()
    seen: dict[str, int] = {}
    for j, command in enumerate(doc.data["commands"]):
        if allowed and command["classification"] not in allowed:
            yield doc.problem(["commands", j, "classification"],
                              f"command classification {command['classification']!r} is not a `command` "
                              "value of facts.schema.json")
        for k, keyword in enumerate(command["keywords"]):
            normalized = command_key(keyword)
            if normalized in seen:
                yield doc.problem(["commands", j, "keywords", k],
                                  f"keyword {keyword!r} is already listed (line {seen[normalized]})")
            else:
                seen[normalized] = doc.line(["commands", j, "keywords", k])
    if allowed and doc.data["otherwise"] not in allowed:
        yield doc.problem(["otherwise"], f"`otherwise` {doc.data['otherwise']!r} is not a `command` value")
    try:
        CommandTable.from_mapping(doc.data)
    except ValueError as exc:
        yield doc.problem([], str(exc))


def check_invariant_names(doc: YamlDocument, tables: Tables, vocabulary: Vocabulary) -> Iterator[Problem]:
    """Invariant premises must use the vocabulary (error); an output name the policy does not know is a
    warning (it may be a typo, or an output this policy never produces)."""
    known = {
        "subclasses": set(tables.precedence.data["order"]),
        "grades": set(tables.grades.data),
        "events": set(tables.descriptor.data.get("emitted_event_types", ())),
    }
    first_seen: dict[str, int] = {}
    for i, invariant in enumerate(doc.data["invariants"]):
        at: list[str | int] = ["invariants", i]
        if invariant["id"] in first_seen:
            yield doc.problem([*at, "id"], f"duplicate invariant id {invariant['id']!r} "
                                           f"(first at line {first_seen[invariant['id']]})")
        first_seen.setdefault(invariant["id"], doc.line([*at, "id"]))
        for key in ("when", "ranks_below"):
            if key in invariant:
                yield from _check_pattern(doc, [*at, key], invariant[key], vocabulary)
        for key, names in invariant.get("never", {}).items():
            for j, name in enumerate(names):
                if key in known and name not in known[key]:
                    message = (f"invariant {invariant['id']!r}: {name!r} is not one of this policy's {key} "
                               "(the invariant cannot be broken through it)")
                    yield doc.problem([*at, "never", key, j], message, severity="warning")


def check_quality_names(doc: YamlDocument, tables: Tables, vocabulary: Vocabulary) -> Iterator[Problem]:
    """A §25 signal naming a subclass, grade or fact kind unknown to the policy matches nothing (warning)."""
    kinds = vocabulary.fields[KIND_FIELD].values if KIND_FIELD in vocabulary.fields else None
    known = {
        "subclasses": set(tables.precedence.data["order"]),
        "grades": set(tables.grades.data),
        "fact_kinds": set(kinds or ()),
    }
    for signal, entry in doc.data.items():
        for key, names in entry.items():
            for j, name in enumerate(names):
                if key in known and name not in known[key]:
                    message = f"quality signal {signal!r}: {name!r} is not one of this policy's {key}"
                    yield doc.problem([signal, key, j], message, severity="warning")
