"""The whole policy as one Markdown document, for review."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from xmpp_connect.policy.model import STANZA_ERROR_PREFIX, Policy, Scenario
from xmpp_connect.policy.predicates import pattern_text

GRADE_FIELDS = (
    "strength",
    "actor_certainty",
    "authority_certainty",
    "payload_certainty",
    "interaction_certainty",
    "timing_certainty",
    "channel_certainty",
    "non_repudiation_strength",
)


def policy_report(policy: Policy) -> str:
    sections = [
        f"# xmpp-connect policy {policy.version}",
        "Rules are tried in order; the first match wins. A fact no rule matches is `unmapped` "
        "(undef.unmapped, dead-lettered).\n\nTables: " + ", ".join(f"`{f}`" for f in policy.files),
        _rules(policy),
        _scenarios(policy),
        _stanza_errors(policy),
        _grades(policy),
        _commands(policy),
        _precedence(policy),
    ]
    return "\n\n".join(sections) + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def _code(text: object) -> str:
    return f"`{text}`" if text not in (None, "") else "—"


def _codes(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in sorted(items))


def _rules(policy: Policy) -> str:
    rows = (
        (rule.index + 1, _code(rule.id), "; ".join(rule.spec), _code(pattern_text(rule.when)),
         _code(rule.scenario), rule.source)
        for rule in policy.rules
    )
    return "## Rules\n\n" + _table(("#", "rule", "spec", "when", "scenario", "source"), rows)


def _outcome_row(scenario: Scenario) -> tuple[object, ...]:
    a = scenario.assessment
    return (
        _code(scenario.id),
        f"{a.category} / `{a.subclass}` / {a.confidence}",
        ", ".join(f"`{e}`" for e in scenario.events) or "—",
        _code(scenario.attempt_state),
        _code(scenario.grade),
        "—" if scenario.retryable is None else str(scenario.retryable).lower(),
        scenario.scope,
        " ".join(scenario.notes),
    )


OUTCOME_HEADER = ("scenario", "assessment", "events", "attempt state", "grade", "retryable", "scope", "notes")


def _scenarios(policy: Policy) -> str:
    rows = (_outcome_row(s) for s in policy.scenarios.values() if not s.id.startswith(STANZA_ERROR_PREFIX))
    return "## Scenarios\n\n" + _table(OUTCOME_HEADER, rows)


def _stanza_errors(policy: Policy) -> str:
    rows = []
    for entry in policy.stanza_errors.values():
        outcome = _outcome_row(policy.scenario(entry.scenario_id))
        rows.append((_code(entry.condition), entry.typical_type, *outcome))
    return "## Stanza errors (§24)\n\n" + _table(("condition", "typical type", *OUTCOME_HEADER), rows)


def _grades(policy: Policy) -> str:
    rows = (
        (_code(grade.id), _code(policy.grade_event_types[grade.id]),
         *(getattr(grade, name) for name in GRADE_FIELDS), " ".join(grade.notes))
        for grade in policy.grades.values()
    )
    return "## Evidence grades (§14)\n\n" + _table(("grade", "event type", *GRADE_FIELDS, "notes"), rows)


def _commands(policy: Policy) -> str:
    rows = [(", ".join(c["keywords"]), _code(c["classification"])) for c in policy.commands["commands"]]
    rows.append(("any other non-empty body", _code(policy.commands["otherwise"])))
    rows.append(("empty body", _code("none")))
    return "## Commands (§17)\n\n" + _table(("keywords", "classification"), rows)


def _precedence(policy: Policy) -> str:
    order = "\n".join(f"{i}. `{subclass}`" for i, subclass in enumerate(policy.precedence.order, 1))
    rows = (
        (c.name, _codes(c.when_any), _codes(c.and_any),
         f"{c.result.category} / `{c.result.subclass}` / {c.result.confidence}")
        for c in policy.precedence.conflicts
    )
    precedence = policy.precedence
    readings = [(_code(k), v) for k, v in precedence.interpretations.items()]
    readings += [(f"any other {category}", v) for category, v in precedence.category_interpretations.items()]
    moot = (
        (_code(timer), _codes(sorted(answers.subclasses)), _codes(sorted(answers.categories)))
        for timer, answers in precedence.timeouts_answered_by.items()
    )
    return ("## Precedence (strongest first)\n\n" + order + "\n\n### Conflicts\n\n"
            + _table(("name", "when any", "and any", "result"), rows)
            + "\n\n### What a coordination engine may read from the strongest evidence\n\n"
            + _table(("strongest subclass", "interpretation"), readings)
            + "\n\n### Timeouts made moot (a timer falling due after this evidence is dropped)\n\n"
            + _table(("timer", "subclasses", "categories"), moot))
