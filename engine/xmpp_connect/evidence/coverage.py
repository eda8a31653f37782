"""Run the corpus through a classifier: which cases differ from `expect`, which rules and scenarios no case
reaches; and, between two policy versions, which case changes which output (`rules diff`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from xmpp_connect.evidence import lifecycle
from xmpp_connect.evidence.corpus import CorpusCase, SequenceCase
from xmpp_connect.model.classification import Classification, Precedence
from xmpp_connect.model.evidence import EvidenceContext, EvidenceEvent, build_evidence_events
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.model import Policy, thaw

Classify = Callable[[Mapping[str, Any]], Classification]
_SEQUENCE_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CaseOutcome:
    """A case's classification, or the error that prevented it; `problem` says how it missed `expect`."""

    case: CorpusCase
    classification: Classification | None
    problem: str | None


@dataclass(frozen=True)
class CoverageReport:
    outcomes: tuple[CaseOutcome, ...]
    unreached_rules: tuple[str, ...]
    unreached_scenarios: tuple[str, ...]

    @property
    def failures(self) -> tuple[CaseOutcome, ...]:
        return tuple(o for o in self.outcomes if o.problem is not None)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unreached_rules and not self.unreached_scenarios


def run_case(case: CorpusCase, classify: Classify, commands: CommandTable) -> CaseOutcome:
    try:
        classification = classify(case.build_fact(commands))
    except ValueError as exc:
        return CaseOutcome(case, None, f"not classified: {exc}")
    problems = []
    if classification.scenario != case.expect_scenario:
        problems.append(f"scenario {classification.scenario!r}, expected {case.expect_scenario!r}")
    if case.expect_rule is not None and classification.rule_id != case.expect_rule:
        problems.append(f"rule {classification.rule_id!r}, expected {case.expect_rule!r}")
    got = case_outputs(classification)
    for key, expected in thaw(case.expect_outputs).items():
        if got[key] != expected:
            problems.append(f"{key} {got[key]!r}, expected {expected!r}")
    return CaseOutcome(case, classification, "; ".join(problems) or None)


def case_outputs(classification: Classification) -> dict[str, Any]:
    """The outputs a corpus case pins: assessment subclass, events, grade id, attempt state."""
    return {
        "subclass": classification.assessment.subclass,
        "events": list(classification.events),
        "grade": classification.grade.id if classification.grade is not None else None,
        "attempt_state": classification.attempt_state,
    }


def run_corpus(policy: Policy, cases: Sequence[CorpusCase], classify: Classify) -> CoverageReport:
    commands = CommandTable.from_mapping(thaw(policy.commands))
    outcomes = tuple(run_case(case, classify, commands) for case in cases)
    fired_rules = {o.classification.rule_id for o in outcomes if o.classification is not None}
    fired_scenarios = {o.classification.scenario for o in outcomes if o.classification is not None}
    return CoverageReport(
        outcomes=outcomes,
        unreached_rules=tuple(rule.id for rule in policy.rules if rule.id not in fired_rules),
        unreached_scenarios=tuple(s for s in policy.scenarios if s not in fired_scenarios),
    )


DIFF_FIELDS = ("scenario", "rule", "category", "subclass", "confidence", "events", "grade", "attempt_state",
               "retryable", "dead_letter")


@dataclass(frozen=True)
class CaseChange:
    """One corpus case whose outputs differ between two policies: field -> (old, new)."""

    case: CorpusCase
    changes: tuple[tuple[str, Any, Any], ...]


def diff_outputs(old: CoverageReport, new: CoverageReport) -> tuple[CaseChange, ...]:
    """The cases (same corpus, same order) whose classification differs, field by field."""
    changed = []
    for before, after in zip(old.outcomes, new.outcomes, strict=True):
        a, b = _diffable(before), _diffable(after)
        fields = tuple((name, a.get(name), b.get(name)) for name in DIFF_FIELDS if a.get(name) != b.get(name))
        if fields:
            changed.append(CaseChange(before.case, fields))
    return tuple(changed)


def _diffable(outcome: CaseOutcome) -> dict[str, Any]:
    c = outcome.classification
    if c is None:
        return {"scenario": f"(not classified: {outcome.problem})"}
    return {
        "scenario": c.scenario,
        "rule": c.rule_id,
        "category": c.assessment.category,
        "confidence": c.assessment.confidence,
        "retryable": c.retryable,
        "dead_letter": c.dead_letter,
        **case_outputs(c),
    }


@dataclass(frozen=True)
class SequenceOutcome:
    """A sequence case's message assessment (None if a fact could not be classified) and how it missed."""

    case: SequenceCase
    assessment: Mapping[str, str] | None
    problem: str | None


def run_sequence(case: SequenceCase, classify: Classify, precedence: Precedence,
                 version: str) -> SequenceOutcome:
    """Classify each fact, log it one second after the previous one, and assess the message (§11)."""
    events: list[EvidenceEvent] = []
    try:
        for i, fact in enumerate(case.facts):
            context = EvidenceContext(tenant_id="corpus", observed_at=_SEQUENCE_START + timedelta(seconds=i),
                                      message_id=case.name)
            events.extend(build_evidence_events(classify(thaw(fact)), context))
    except ValueError as exc:
        return SequenceOutcome(case, None, f"not classified: {exc}")
    result = lifecycle.assess(case.name, events, precedence, version)
    got = {"category": result.category, "subclass": result.subclass}
    problems = [f"{key} {got[key]!r}, expected {value!r}"
                for key, value in case.expect.items() if got[key] != value]
    return SequenceOutcome(case, got, "; ".join(problems) or None)


def run_sequences(policy: Policy, cases: Sequence[SequenceCase],
                  classify: Classify) -> tuple[SequenceOutcome, ...]:
    return tuple(run_sequence(case, classify, policy.precedence, policy.version) for case in cases)


def diff_sequences(old: Sequence[SequenceOutcome],
                   new: Sequence[SequenceOutcome]) -> tuple[SequenceChange, ...]:
    """The sequence cases whose message assessment differs between two policies."""
    return tuple(SequenceChange(a.case, a.assessment, b.assessment)
                 for a, b in zip(old, new, strict=True) if a.assessment != b.assessment)


@dataclass(frozen=True)
class SequenceChange:
    case: SequenceCase
    old: Mapping[str, str] | None
    new: Mapping[str, str] | None
