"""The scenario corpus (tests/scenarios/*.yaml): named cases, each a fact or a stanza with its context,
the scenario (and optionally the rule) the policy must give it, and the outputs that scenario must carry
(assessment subclass, events, grade, attempt state), so that a changed output is a difference too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_connect.facts.build import fact_from_xml
from xmpp_connect.model.correlation import context_from_dict
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.model import freeze, thaw
from xmpp_connect.policy.problems import PolicyError, Problem
from xmpp_connect.policy.yaml_source import YamlDocument, read_yaml

CASE_KEYS = frozenset({"name", "spec", "description", "fact", "stanza", "context", "expect"})
OUTPUT_KEYS = ("subclass", "events", "grade", "attempt_state")
EXPECT_KEYS = frozenset({"scenario", "rule", *OUTPUT_KEYS})


@dataclass(frozen=True)
class CorpusCase:
    """One case; exactly one of `fact` and `stanza` is set (`context` goes with `stanza`)."""

    name: str
    source: str
    spec: tuple[str, ...]
    expect_scenario: str
    expect_rule: str | None = None
    expect_outputs: Mapping[str, Any] = field(default_factory=dict)
    fact: Mapping[str, Any] | None = None
    stanza: str | None = None
    context: Mapping[str, Any] | None = None

    def build_fact(self, commands: CommandTable) -> dict[str, Any]:
        """The case's fact: given, or built from the stanza by the fact builder (its errors propagate)."""
        if self.fact is not None:
            return thaw(self.fact)
        assert self.stanza is not None
        return fact_from_xml(self.stanza, context_from_dict(thaw(self.context or {})), commands)


def load_corpus(directory: Path) -> tuple[CorpusCase, ...]:
    """Every case of `directory`/*.yaml (files by name, then file order); PolicyError (file:line) if bad."""
    cases: list[CorpusCase] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    paths = sorted(Path(directory).glob("*.yaml"))
    if not paths:
        raise PolicyError([Problem(str(directory), None, "no corpus files (*.yaml)")])
    for path in paths:
        doc = read_yaml(path, path.name)
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        if not isinstance(doc.data, list):
            problems.append(doc.problem([], "a corpus file is a list of cases"))
            continue
        for i, entry in enumerate(doc.data):
            problem = _case_problem(entry)
            if problem is not None:
                problems.append(doc.problem([i], problem))
                continue
            case = _case(doc, i, entry)
            if case.name in seen:
                message = f"duplicate case name {case.name!r} (first at {seen[case.name]})"
                problems.append(doc.problem([i, "name"], message))
                continue
            seen[case.name] = case.source
            cases.append(case)
    if problems:
        raise PolicyError(problems)
    return tuple(cases)


def _case_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "a case is a mapping"
    unknown = sorted(set(entry) - CASE_KEYS)
    if unknown:
        return f"unknown case keys {unknown}"
    if not isinstance(entry.get("name"), str):
        return "a case needs a `name`"
    if ("fact" in entry) == ("stanza" in entry):
        return f"case {entry['name']!r}: give exactly one of `fact` and `stanza`"
    if "fact" in entry and not isinstance(entry["fact"], dict):
        return f"case {entry['name']!r}: `fact` is a mapping"
    if "stanza" in entry and not isinstance(entry["stanza"], str):
        return f"case {entry['name']!r}: `stanza` is XML text"
    if "context" in entry and ("stanza" not in entry or not isinstance(entry["context"], dict)):
        return f"case {entry['name']!r}: `context` is a mapping and goes with `stanza`"
    expect = entry.get("expect")
    if not isinstance(expect, dict) or not isinstance(expect.get("scenario"), str):
        return f"case {entry['name']!r}: `expect.scenario` is required"
    if set(expect) - EXPECT_KEYS:
        return f"case {entry['name']!r}: `expect` takes only {', '.join(sorted(EXPECT_KEYS))}"
    missing = [key for key in OUTPUT_KEYS if key not in expect]
    if missing:
        return f"case {entry['name']!r}: `expect` must pin the outputs {', '.join(missing)}"
    return None


def _case(doc: YamlDocument, index: int, entry: Mapping[str, Any]) -> CorpusCase:
    spec = entry.get("spec", ())
    return CorpusCase(
        name=entry["name"],
        source=f"{doc.relpath}:{doc.line([index])}",
        spec=(spec,) if isinstance(spec, str) else tuple(spec),
        expect_scenario=entry["expect"]["scenario"],
        expect_rule=entry["expect"].get("rule"),
        expect_outputs=freeze({key: entry["expect"][key] for key in OUTPUT_KEYS}),
        fact=freeze(entry["fact"]) if "fact" in entry else None,
        stanza=entry.get("stanza"),
        context=freeze(entry["context"]) if "context" in entry else None,
    )


SEQUENCES_DIR = "sequences"
SEQUENCE_KEYS = frozenset({"name", "spec", "description", "sequence", "expect"})
SEQUENCE_EXPECT_KEYS = frozenset({"category", "subclass"})


@dataclass(frozen=True)
class SequenceCase:
    """The facts one message's log receives, in arrival order, and the message's assessment (§11)."""

    name: str
    source: str
    spec: tuple[str, ...]
    facts: tuple[Mapping[str, Any], ...]
    expect: Mapping[str, str]


def load_sequences(directory: Path) -> tuple[SequenceCase, ...]:
    """Every case of `directory`/sequences/*.yaml (none when that directory does not exist)."""
    cases: list[SequenceCase] = []
    problems: list[Problem] = []
    for path in sorted((Path(directory) / SEQUENCES_DIR).glob("*.yaml")):
        doc = read_yaml(path, f"{SEQUENCES_DIR}/{path.name}")
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        for i, entry in enumerate(doc.data if isinstance(doc.data, list) else [None]):
            problem = _sequence_problem(entry)
            if problem is not None:
                problems.append(doc.problem([i], problem))
                continue
            spec = entry.get("spec", ())
            cases.append(SequenceCase(
                name=entry["name"],
                source=f"{doc.relpath}:{doc.line([i])}",
                spec=(spec,) if isinstance(spec, str) else tuple(spec),
                facts=tuple(freeze(fact) for fact in entry["sequence"]),
                expect=freeze(entry["expect"]),
            ))
    if problems:
        raise PolicyError(problems)
    return tuple(cases)


def _sequence_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return "a sequence case is a mapping with a `name`"
    if set(entry) - SEQUENCE_KEYS:
        return f"case {entry['name']!r}: unknown keys {sorted(set(entry) - SEQUENCE_KEYS)}"
    facts = entry.get("sequence")
    if not isinstance(facts, list) or not facts or not all(isinstance(f, dict) for f in facts):
        return f"case {entry['name']!r}: `sequence` is a non-empty list of facts"
    expect = entry.get("expect")
    if not isinstance(expect, dict) or set(expect) != SEQUENCE_EXPECT_KEYS:
        return f"case {entry['name']!r}: `expect` is {{category, subclass}} of the message's assessment"
    return None
