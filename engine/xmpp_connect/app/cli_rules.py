"""`xmpp-connect rules check | explain | coverage | diff | replay | report | traceability`: the policy
author's and auditor's tools over the tables (rules/, mappings/), the scenario corpus and stored evidence."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from xmpp_connect.config.loader import default_config, load_config
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.corpus import CorpusCase, SequenceCase, load_corpus, load_sequences
from xmpp_connect.evidence.coverage import (
    CaseChange,
    CoverageReport,
    SequenceOutcome,
    diff_outputs,
    diff_sequences,
    run_corpus,
    run_sequences,
)
from xmpp_connect.evidence.replay import Replay, replay
from xmpp_connect.evidence.traceability import traceability_markdown
from xmpp_connect.facts.build import fact_from_xml
from xmpp_connect.model.correlation import context_from_dict
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.engine import RuleEngine
from xmpp_connect.policy.explain import explain_match, render_explanation
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy, thaw
from xmpp_connect.policy.paths import default_corpus_dir
from xmpp_connect.policy.prove import prove
from xmpp_connect.policy.report import policy_report
from xmpp_connect.policy.vocabulary import FactError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def add_commands(subparsers: Any) -> None:
    """Register `rules` and its actions on the top-level subparsers."""
    rules = subparsers.add_parser("rules", help="check, explain, cover, diff and report the policy tables")
    actions = rules.add_subparsers(dest="action", required=True)

    check = actions.add_parser("check", help="validate the tables and prove the invariants; file:line for "
                                             "every problem")
    _policy_option(check)
    check.set_defaults(handler=_check)

    explain = actions.add_parser("explain", help="classify one fact or stanza and say why")
    _policy_option(explain)
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--fact", type=Path, metavar="FILE.json", help="a fact as a JSON object")
    source.add_argument("--stanza", type=Path, metavar="FILE.xml", help="a raw stanza")
    explain.add_argument("--context", type=Path, metavar="FILE.json",
                         help="correlation context for --stanza (fields of CorrelationContext)")
    explain.set_defaults(handler=_explain)

    coverage = actions.add_parser("coverage", help="run the corpus; list misses, unreached rules/scenarios")
    _policy_option(coverage)
    _corpus_option(coverage)
    coverage.set_defaults(handler=_coverage)

    diff = actions.add_parser("diff", help="which corpus cases change which output between two policies")
    diff.add_argument("old", type=Path, metavar="OLD_DIR", help="the policy in force (rules/, mappings/)")
    diff.add_argument("new", type=Path, metavar="NEW_DIR", help="the proposed policy")
    _corpus_option(diff)
    diff.set_defaults(handler=_diff)

    what_if = actions.add_parser("replay", help="re-assess a stored message's evidence under another policy")
    what_if.add_argument("--message", required=True, metavar="ID", help="the xmpp_message_id")
    what_if.add_argument("--policy", type=Path, metavar="DIR",
                         help="the policy to replay under (default: the service's own)")
    what_if.add_argument("--config", type=Path, help="service config (YAML); default: the embedded sandbox")
    what_if.add_argument("--data-dir", type=Path, default=Path("data"), help="data directory of the default")
    what_if.add_argument("--tenant", metavar="ID", help="the message's tenant (default: the only one)")
    what_if.set_defaults(handler=_replay)

    report = actions.add_parser("report", help="the whole policy as Markdown")
    _policy_option(report)
    _output_option(report)
    report.set_defaults(handler=_report)

    trace = actions.add_parser("traceability", help="spec/traceability.md from the tables and the corpus")
    _policy_option(trace)
    _corpus_option(trace)
    _output_option(trace)
    trace.set_defaults(handler=_traceability)


def _policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, metavar="DIR",
                        help="directory holding rules/ and mappings/ (default: the packaged tables)")


def _corpus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, default=default_corpus_dir(), metavar="DIR",
                        help="scenario corpus directory (default: %(default)s)")


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")


def _check(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    policy = load_policy(args.policy)
    RuleEngine(policy).close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    for warning in policy.warnings:
        print(warning, file=sys.stderr)
    print(f"policy {policy.version} OK: {len(policy.rules)} rules, {len(policy.scenarios)} scenarios "
          f"({len(policy.stanza_errors)} stanza errors), {len(policy.grades)} grades, "
          f"{len(policy.invariants)} invariants proven over every fact, {len(policy.warnings)} warnings "
          f"({elapsed_ms:.0f} ms)")
    return EXIT_OK


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _input_fact(args: argparse.Namespace, policy: Policy) -> dict[str, Any]:
    if args.fact is not None:
        if args.context is not None:
            raise ValueError("--context goes with --stanza")
        fact = _read_json(args.fact)
        if not isinstance(fact, dict):
            raise ValueError(f"{args.fact}: a fact is a JSON object")
        return fact
    context = context_from_dict(_read_json(args.context) if args.context is not None else {})
    commands = CommandTable.from_mapping(thaw(policy.commands))
    return fact_from_xml(args.stanza.read_bytes(), context, commands)


def _explain(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    try:
        fact = _input_fact(args, policy)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with Classifier(policy) as classifier:
        try:
            classification = classifier.classify(fact)
        except FactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    fired = policy.rule(classification.rule_id) if classification.rule_id is not None else None
    explanation = explain_match(policy, fact, fired)
    print(render_explanation(explanation))
    print(json.dumps(classification.to_dict(), indent=2, ensure_ascii=False))
    return EXIT_OK if explanation.engines_agree else EXIT_FINDINGS


def _run(policy: Policy, cases: tuple[CorpusCase, ...]) -> CoverageReport:
    with Classifier(policy) as classifier:
        return run_corpus(policy, cases, classifier.classify)


def _coverage(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    report = _run(policy, load_corpus(args.corpus))
    sequences = _run_sequences(policy, load_sequences(args.corpus))
    missed = [o for o in sequences if o.problem is not None]
    print(_coverage_text(report))
    print(f"{len(sequences)} sequences, {len(missed)} differ from `expect`")
    for outcome in missed:
        print(f"  {outcome.case.source}: {outcome.case.name}: {outcome.problem}")
    return EXIT_OK if report.ok and not missed else EXIT_FINDINGS


def _run_sequences(policy: Policy, cases: tuple[SequenceCase, ...]) -> tuple[SequenceOutcome, ...]:
    with Classifier(policy) as classifier:
        return run_sequences(policy, cases, classifier.classify)


def _coverage_text(report: CoverageReport) -> str:
    lines = [f"{len(report.outcomes)} cases, {len(report.failures)} differ from `expect`"]
    lines.extend(f"  {o.case.source}: {o.case.name}: {o.problem}" for o in report.failures)
    lines.append(f"{len(report.unreached_rules)} rules no case reaches")
    lines.extend(f"  {rule}" for rule in report.unreached_rules)
    lines.append(f"{len(report.unreached_scenarios)} scenarios no case reaches")
    lines.extend(f"  {scenario}" for scenario in report.unreached_scenarios)
    return "\n".join(lines)


def _diff(args: argparse.Namespace) -> int:
    """Both policies load without the invariant proof (the old one may predate it); the new one's broken
    invariants are listed after the differences, since it could not go live."""
    old = load_policy(args.old, check_invariants=False)
    new = load_policy(args.new, check_invariants=False)
    cases = load_corpus(args.corpus)
    changes = diff_outputs(_run(old, cases), _run(new, cases))
    print(f"policy {old.version} ({args.old}) -> {new.version} ({args.new}): {len(cases)} cases, "
          f"{len(changes)} change")
    for change in changes:
        print(_change_text(change))
    sequences = load_sequences(args.corpus)
    moved = diff_sequences(_run_sequences(old, sequences), _run_sequences(new, sequences))
    print(f"{len(sequences)} sequences, {len(moved)} change the message's assessment")
    for move in moved:
        print(f"  {move.case.source}: {move.case.name}: {_value(move.old)} -> {_value(move.new)}")
    broken = prove(new, new.invariants, {})
    if broken:
        print(f"{len(broken)} invariant violations in NEW_DIR (it would not load; see `rules check`):")
        for problem in broken:
            print(f"  {problem}")
    return EXIT_FINDINGS if changes or moved or broken else EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from xmpp_connect.app.server import open_store

    config = load_config(args.config) if args.config else default_config(args.data_dir)
    tenants = [t.id for t in config.tenants]
    tenant = args.tenant or (tenants[0] if len(tenants) == 1 else None)
    if tenant not in tenants:
        print(f"error: name the tenant with --tenant (one of {', '.join(tenants)})", file=sys.stderr)
        return EXIT_USAGE
    stored_policy = load_policy(config.policy_dir)
    policy = load_policy(args.policy) if args.policy is not None else stored_policy
    store = open_store(config)
    try:
        events = store.evidence_for_message(tenant, args.message)
    finally:
        store.close()
    if not events:
        print(f"error: no evidence for message {args.message!r} of tenant {tenant!r}", file=sys.stderr)
        return EXIT_USAGE
    with Classifier(policy) as classifier:
        result = replay(args.message, events, stored_policy, policy, classifier.classify)
    print(_replay_text(result))
    changed = result.stored.to_dict() | {"policy_version": None} != result.replayed.to_dict() | {
        "policy_version": None}
    return EXIT_FINDINGS if changed else EXIT_OK


def _replay_text(result: Replay) -> str:
    lines = [f"timeline: stored (policy {result.stored.policy_version}) | replayed (policy "
             f"{result.replayed.policy_version})"]
    for entry in result.entries:
        stored, again = entry.stored, entry.replayed
        left = f"{stored.event_type} {stored.scenario} {stored.assessment.subclass}"
        right = "(kept as stored: no usable fact)" if again is None else (
            "same" if (again.scenario, again.assessment) == (stored.scenario, stored.assessment)
            else f"{again.scenario} {again.assessment.subclass} ({again.assessment.confidence})")
        lines.append(f"  {stored.occurred_at.isoformat()} {left} | {right}")
    lines.append("assessment:")
    for name in ("category", "subclass", "confidence", "strongest_signal", "conflict",
                 "recommended_coordination_interpretation"):
        before, after = getattr(result.stored, name), getattr(result.replayed, name)
        mark = "" if before == after else "   <- changes"
        lines.append(f"  {name}: {before} | {after}{mark}")
    return "\n".join(lines)


def _change_text(change: CaseChange) -> str:
    parts = "; ".join(f"{name} {_value(old)} -> {_value(new)}" for name, old, new in change.changes)
    return f"  {change.case.source}: {change.case.name}: {parts}"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write(text: str, output: Path | None) -> None:
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _report(args: argparse.Namespace) -> int:
    _write(policy_report(load_policy(args.policy)), args.output)
    return EXIT_OK


def _traceability(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    report = _run(policy, load_corpus(args.corpus))
    _write(traceability_markdown(policy, report), args.output)
    return EXIT_OK
