"""Read rules/*.yaml and mappings/*.yaml, validate them, cross-check them, and build an immutable Policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from xmpp_connect.model.classification import Assessment, Conflict, Grade, Precedence, TimeoutAnswers
from xmpp_connect.model.quality import QualitySignals, Signal
from xmpp_connect.policy.crosscheck import Tables, check_invariant_names, check_quality_names, cross_check
from xmpp_connect.policy.invariants import build_invariants
from xmpp_connect.policy.model import (
    BUILTIN_UNMAPPED,
    UNMAPPED,
    Policy,
    Rule,
    Scenario,
    StanzaErrorEntry,
    freeze,
)
from xmpp_connect.policy.paths import default_policy_dir, schema_dir
from xmpp_connect.policy.problems import PolicyError, Problem
from xmpp_connect.policy.prove import prove
from xmpp_connect.policy.schemas import SchemaSet, load_schemas
from xmpp_connect.policy.version import policy_version
from xmpp_connect.policy.vocabulary import Vocabulary
from xmpp_connect.policy.yaml_source import YamlDocument, read_yaml

RULES_DIR = "rules"
MAPPINGS_DIR = "mappings"
INVARIANTS = "invariants"
QUALITY = "quality"
MAPPING_TABLES = (
    "scenarios", "stanza_errors", "grades", "commands", "precedence", "descriptor", "invariants", "quality",
)


def load_policy(root: Path | None = None, check_invariants: bool = True) -> Policy:
    """Load the policy under `root` (default: the packaged or checkout tables).

    Raises PolicyError listing every problem as `file:line: message`. Cross-table checks run only once
    every file parses and fits its schema (they rely on the shapes the schemas guarantee); the invariants
    (mappings/invariants.yaml) are then proven over every fact. `check_invariants=False` skips that proof:
    only to examine a broken or older policy (tests, `rules diff`), never to serve one; such a policy may
    also lack mappings/invariants.yaml.
    """
    root = Path(root) if root is not None else default_policy_dir()
    schemas = load_schemas(schema_dir(root), default_policy_dir() / "spec")
    vocabulary = Vocabulary.from_schema(schemas.facts)
    problems: list[Problem] = []
    rule_paths = sorted((root / RULES_DIR).glob("*.yaml"))
    if not rule_paths:
        problems.append(Problem(f"{RULES_DIR}/", None, "no rule files (*.yaml)"))
    mapping_paths = {p.stem: p for p in sorted((root / MAPPINGS_DIR).glob("*.yaml"))}
    for name in sorted(set(mapping_paths) - set(MAPPING_TABLES)):
        problems.append(Problem(_rel(root, mapping_paths[name]), None, "unknown table, ignored", "warning"))
    for name in MAPPING_TABLES:
        if name not in mapping_paths and (check_invariants or name != INVARIANTS):
            problems.append(Problem(f"{MAPPINGS_DIR}/{name}.yaml", None, "required table is missing"))

    rule_docs = [_read(root, path, "rules", schemas, problems) for path in rule_paths]
    mapping_docs = {name: _read(root, mapping_paths[name], name, schemas, problems)
                    for name in MAPPING_TABLES if name in mapping_paths}
    if any(p.severity == "error" for p in problems):
        raise PolicyError(_in_file_order(problems))

    invariants_doc = mapping_docs.pop(INVARIANTS, None)
    quality_doc = mapping_docs.pop(QUALITY)
    assert quality_doc is not None
    tables = Tables(rules=tuple(d for d in rule_docs if d is not None),
                    **{name: doc for name, doc in mapping_docs.items() if doc is not None})
    problems.extend(cross_check(tables, vocabulary))
    if invariants_doc is not None:
        problems.extend(check_invariant_names(invariants_doc, tables, vocabulary))
    problems.extend(check_quality_names(quality_doc, tables, vocabulary))
    if any(p.severity == "error" for p in problems):
        raise PolicyError(_in_file_order(problems))

    files = tuple(_rel(root, p) for p in (*rule_paths, *mapping_paths.values()))
    policy = _build(root, tables, vocabulary, policy_version(root, files), files, problems)
    policy = replace(policy, quality_signals=_quality(quality_doc.data))
    invariants = build_invariants(invariants_doc) if invariants_doc is not None else ()
    broken = prove(policy, invariants, _order_lines(tables.precedence)) if check_invariants else []
    if broken:
        raise PolicyError(broken)
    return replace(policy, invariants=invariants)


def _order_lines(doc: YamlDocument) -> dict[str, str]:
    """Each precedence `order` subclass -> `file:line` of its entry."""
    order = doc.data["order"]
    return {subclass: f"{doc.relpath}:{doc.line(['order', j])}" for j, subclass in enumerate(order)}


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _read(root: Path, path: Path, table: str, schemas: SchemaSet,
          problems: list[Problem]) -> YamlDocument | None:
    doc = read_yaml(path, _rel(root, path))
    if isinstance(doc, Problem):
        problems.append(doc)
        return None
    found = schemas.validate(table, doc)
    problems.extend(found)
    return None if found else doc


def _build(root: Path, tables: Tables, vocabulary: Vocabulary, version: str, files: tuple[str, ...],
           problems: list[Problem]) -> Policy:
    rules = _build_rules(tables.rules)
    scenarios: dict[str, Scenario] = {}
    for key, entry in tables.scenarios.data.items():
        scenarios[key] = _scenario(key, entry, tables.scenarios.relpath, tables.scenarios.line([key]))
    stanza_errors: dict[str, StanzaErrorEntry] = {}
    for key, entry in tables.stanza_errors.data.items():
        stanza_errors[key] = StanzaErrorEntry(key, entry["condition"], entry["typical_type"],
                                              entry["retryable"])
        scenario_id = stanza_errors[key].scenario_id
        scenarios[scenario_id] = _scenario(scenario_id, entry, tables.stanza_errors.relpath,
                                           tables.stanza_errors.line([key]))
    scenarios[UNMAPPED] = BUILTIN_UNMAPPED
    grades = {key: _grade(key, entry) for key, entry in tables.grades.data.items()}
    return Policy(
        root=root,
        version=version,
        rules=rules,
        scenarios=MappingProxyType(scenarios),
        stanza_errors=MappingProxyType(stanza_errors),
        grades=MappingProxyType(grades),
        grade_event_types=MappingProxyType({k: e["event_type"] for k, e in tables.grades.data.items()}),
        commands=freeze(tables.commands.data),
        precedence=_precedence(tables.precedence.data),
        descriptor=freeze(tables.descriptor.data),
        vocabulary=vocabulary,
        quality_signals=_quality({}),
        files=files,
        warnings=tuple(str(p) for p in problems if p.severity == "warning"),
    )


def _build_rules(docs: tuple[YamlDocument, ...]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for doc in docs:
        for i, entry in enumerate(doc.data):
            spec = entry["spec"]
            rules.append(Rule(
                id=entry["id"],
                index=len(rules),
                spec=(spec,) if isinstance(spec, str) else tuple(spec),
                description=entry.get("description", ""),
                when=freeze(entry["when"]),
                scenario=entry["scenario"],
                source=f"{doc.relpath}:{doc.line([i])}",
            ))
    return tuple(rules)


def _scenario(scenario_id: str, entry: Mapping[str, Any], relpath: str, line: int) -> Scenario:
    spec = entry["spec"]
    return Scenario(
        id=scenario_id,
        assessment=Assessment(**entry["assessment"]),
        events=tuple(entry["events"]),
        attempt_state=entry["attempt_state"],
        grade=entry["grade"],
        notes=tuple(entry["notes"]),
        spec=(spec,) if isinstance(spec, str) else tuple(spec),
        retryable=entry.get("retryable"),
        scope=entry.get("scope", "message"),
        source=f"{relpath}:{line}",
    )


def _quality(data: Mapping[str, Any]) -> QualitySignals:
    """mappings/quality.yaml as signal sets (an absent signal matches nothing)."""

    def signal(name: str) -> Signal:
        entry = data.get(name, {})
        return Signal(
            subclasses=frozenset(entry.get("subclasses", ())),
            grades=frozenset(entry.get("grades", ())),
            fact_kinds=frozenset(entry.get("fact_kinds", ())),
            scenario_prefixes=tuple(entry.get("scenario_prefixes", ())),
        )

    return QualitySignals(*(signal(f.name) for f in fields(QualitySignals)))


def _grade(key: str, entry: Mapping[str, Any]) -> Grade:
    return Grade(
        id=key,
        strength=entry["strength"],
        actor_certainty=entry["actor_certainty"],
        authority_certainty=entry["authority_certainty"],
        payload_certainty=entry["payload_certainty"],
        interaction_certainty=entry["interaction_certainty"],
        timing_certainty=entry["timing_certainty"],
        channel_certainty=entry["channel_certainty"],
        non_repudiation_strength=entry["non_repudiation_strength"],
        notes=tuple(entry.get("notes", ())),
    )


def _precedence(data: Mapping[str, Any]) -> Precedence:
    conflicts = tuple(
        Conflict(
            name=c["name"],
            when_any=frozenset(c["when_any"]),
            and_any=frozenset(c["and_any"]),
            result=Assessment(**c["result"]),
        )
        for c in data.get("conflicts", ())
    )
    interpretations = data.get("interpretations", {})
    return Precedence(
        confidence_order=tuple(data["confidence_order"]),
        no_evidence=Assessment(**data["no_evidence"]),
        order=tuple(data["order"]),
        conflicts=conflicts,
        interpretations=MappingProxyType(dict(interpretations.get("by_subclass", {}))),
        category_interpretations=MappingProxyType(dict(interpretations.get("by_category", {}))),
        timeouts_answered_by=MappingProxyType(
            {
                timer: TimeoutAnswers(
                    frozenset(answers.get("subclasses", ())), frozenset(answers.get("categories", ()))
                )
                for timer, answers in data.get("timeouts_answered_by", {}).items()
            }
        ),
    )
