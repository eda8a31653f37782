"""Facts per second through the compiled durable_rules ruleset vs. the same table as plain Python predicates.

Mixed facts come from the scenario corpus (every case whose fact builds). Each measurement runs for a fixed
time budget (best of five rounds), so the whole benchmark takes a few seconds. One core, one thread.
Target: >= 20,000 facts/s through `classify`.

    .venv/bin/python bench/classify.py [--policy DIR] [--corpus DIR] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xmpp_connect.evidence.classify import Classifier, classification_for
from xmpp_connect.evidence.corpus import load_corpus
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.engine import RuleEngine
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy, thaw
from xmpp_connect.policy.paths import default_corpus_dir
from xmpp_connect.policy.predicates import PredicateMatcher

TARGET_PER_SECOND = 20_000
Fact = Mapping[str, Any]


def corpus_facts(policy: Policy, corpus: Path) -> list[dict[str, Any]]:
    commands = CommandTable.from_mapping(thaw(policy.commands))
    facts = []
    for case in load_corpus(corpus):
        try:
            facts.append(case.build_fact(commands))
        except ValueError:
            continue
    return facts


def rate(work: Callable[[Fact], object], facts: Sequence[Fact], seconds: float, rounds: int = 5) -> float:
    """Facts per second of `work` over the mixed facts: the best of `rounds` runs sharing `seconds`
    (the best run is the one least disturbed by other processes, as timeit advises)."""
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / rounds:
            for fact in facts:
                work(fact)
            done += len(facts)
        best = max(best, done / elapsed)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, help="policy directory (default: the packaged tables)")
    parser.add_argument("--corpus", type=Path, default=default_corpus_dir())
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    args = parser.parse_args(argv)

    policy = load_policy(args.policy)
    facts = corpus_facts(policy, args.corpus)
    matcher = PredicateMatcher(policy.rules)
    engine = RuleEngine(policy)
    classifier = Classifier(policy)
    try:
        durable_match = rate(engine.first_match, facts, args.seconds)
        durable_classify = rate(classifier.classify, facts, args.seconds)
        python_match = rate(matcher.first_match, facts, args.seconds)
        python_classify = rate(
            lambda f: classification_for(policy, matcher.first_match(f), f), facts, args.seconds
        )
    finally:
        engine.close()
        classifier.close()

    print(f"policy {policy.version}: {len(policy.rules)} rules, {len(facts)} distinct corpus facts (mixed), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"durable_rules first match      {durable_match:>12,.0f} facts/s")
    print(f"durable_rules classify()       {durable_classify:>12,.0f} facts/s  (vocabulary check + outputs)")
    print(f"python predicates first match  {python_match:>12,.0f} facts/s")
    print(f"python predicates + outputs    {python_classify:>12,.0f} facts/s")
    print(f"ratio python/durable (match)   {python_match / durable_match:>12.1f}x")
    verdict = "met" if durable_classify >= TARGET_PER_SECOND else "NOT met"
    print(f"target >= {TARGET_PER_SECOND:,} facts/s through classify(): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
