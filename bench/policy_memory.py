"""Policy engine memory: RSS growth over repeated reloads and over steady classification.

The suite checks the causes deterministically (every native ruleset is freed, durable keeps no fact or
pending event: tests/policy/test_policy_engine.py); this prints what the process's RSS does, which also
depends on the allocator and on what else runs. Before the fixes a reload leaked ~700 KB and durable kept
~9 KB per stored fact or pending event.

    .venv/bin/python bench/policy_memory.py [--reloads 200] [--classifications 15000]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy import Policy, load_policy
from xmpp_connect.policy.paths import default_policy_dir

FACTS = (
    {"kind": "sm_ack", "correlated": True},
    {"kind": "presence"},
    {"kind": "receipt", "correlated": True, "sender_is_addressee": True},
)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def other_version(policy: Policy) -> Policy:
    """The same tables under another version: a reload builds and swaps a whole new ruleset all the same."""
    return dataclasses.replace(policy, version="f" * 16)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reloads", type=int, default=200)
    parser.add_argument("--classifications", type=int, default=15_000)
    args = parser.parse_args()
    policy = load_policy(default_policy_dir())
    other = other_version(policy)
    with Classifier(policy) as classifier:
        for _ in range(20):  # warm up: caches, allocator arenas
            classifier.reload(other)
            classifier.reload(policy)
        before = rss_kib()
        for n in range(args.reloads):
            classifier.reload(other if n % 2 == 0 else policy)
        grown = rss_kib() - before
        print(f"reloads: {args.reloads}, RSS grew {grown} KiB ({grown / args.reloads:.1f} KiB per reload)")

        for fact in FACTS * 300:
            classifier.classify(fact)
        before = rss_kib()
        for n in range(args.classifications):
            classifier.classify(FACTS[n % len(FACTS)])
        grown = rss_kib() - before
        print(
            f"classifications: {args.classifications}, RSS grew {grown} KiB "
            f"({grown * 1024 / args.classifications:.1f} bytes per classification)"
        )


if __name__ == "__main__":
    main()
