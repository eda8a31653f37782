"""The `xmpp-connect` command: `rules check | explain | coverage | report` (the HTTP `serve` joins later)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.corpus import load_corpus
from xmpp_connect.evidence.coverage import CoverageReport, run_corpus
from xmpp_connect.facts.build import fact_from_xml
from xmpp_connect.model.correlation import context_from_dict
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.engine import RuleEngine
from xmpp_connect.policy.explain import explain_match, render_explanation
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy, thaw
from xmpp_connect.policy.paths import default_corpus_dir
from xmpp_connect.policy.problems import PolicyError
from xmpp_connect.policy.report import policy_report
from xmpp_connect.policy.vocabulary import FactError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmpp-connect", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rules = commands.add_parser("rules", help="check, explain, cover and report the policy tables")
    actions = rules.add_subparsers(dest="action", required=True)

    check = actions.add_parser("check", help="validate the tables; file:line for every problem")
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
    coverage.add_argument("--corpus", type=Path, default=default_corpus_dir(), metavar="DIR",
                          help="scenario corpus directory (default: %(default)s)")
    coverage.set_defaults(handler=_coverage)

    report = actions.add_parser("report", help="the whole policy as Markdown")
    _policy_option(report)
    report.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")
    report.set_defaults(handler=_report)

    serve = commands.add_parser("serve", help="run the HTTP service (default: SQLite + sandbox provider)")
    serve.add_argument("--config", type=Path, help="service config (YAML); default: the embedded sandbox")
    serve.add_argument("--data-dir", type=Path, default=Path("data"), help="data directory of the default")
    serve.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config: 8750)")
    serve.add_argument("--api-workers", type=int, default=0, metavar="N",
                       help="N worker processes serve HTTP and accept plain sends; this process keeps the"
                       " XMPP sessions and the store (default 0: one process does everything)")
    serve.add_argument("--log-format", choices=("text", "json"),
                       help="text (default) or json: one object per line (overrides the config's logging)")
    serve.set_defaults(handler=_serve)
    return parser


def _policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, metavar="DIR",
                        help="directory holding rules/ and mappings/ (default: the packaged tables)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PolicyError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return EXIT_FINDINGS


def _serve(args: argparse.Namespace) -> int:
    from xmpp_connect.app.service import run

    run(args.config, args.data_dir, args.host, args.port, args.api_workers, args.log_format)
    return 0


def _check(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    RuleEngine(policy).close()
    for warning in policy.warnings:
        print(warning, file=sys.stderr)
    print(f"policy {policy.version} OK: {len(policy.rules)} rules, {len(policy.scenarios)} scenarios "
          f"({len(policy.stanza_errors)} stanza errors), {len(policy.grades)} grades, "
          f"{len(policy.warnings)} warnings")
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


def _coverage(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    cases = load_corpus(args.corpus)
    with Classifier(policy) as classifier:
        report = run_corpus(policy, cases, classifier.classify)
    print(_coverage_text(report))
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _coverage_text(report: CoverageReport) -> str:
    lines = [f"{len(report.outcomes)} cases, {len(report.failures)} differ from `expect`"]
    lines.extend(f"  {o.case.source}: {o.case.name}: {o.problem}" for o in report.failures)
    lines.append(f"{len(report.unreached_rules)} rules no case reaches")
    lines.extend(f"  {rule}" for rule in report.unreached_rules)
    lines.append(f"{len(report.unreached_scenarios)} scenarios no case reaches")
    lines.extend(f"  {scenario}" for scenario in report.unreached_scenarios)
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    text = policy_report(load_policy(args.policy))
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
