"""Compares pytest JUnit XML reports of repeated runs: prints each run's counts and every test whose verdict
was not the same in all of them (a flaky test), or a test that did not run in every run.

    python scripts/compare_verdicts.py run1.xml run2.xml ...      (exit status 1 if any verdict changed)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ABSENT = "absent"


def verdicts(report: Path) -> dict[str, str]:
    """Test id -> passed | failed | error | skipped, from one JUnit XML report."""
    found: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        if found.get(test, "passed") == "passed":  # an error in teardown is a second entry for the test
            found[test] = outcome
    return found


def main(paths: list[str]) -> int:
    runs = [verdicts(Path(path)) for path in paths]
    for path, run in zip(paths, runs, strict=True):
        counts = Counter(run.values())
        print(f"{path}: " + ", ".join(f"{counts[v]} {v}" for v in ("passed", "failed", "error", "skipped")))
    changed = 0
    for test in sorted(set().union(*runs)):
        seen = [run.get(test, ABSENT) for run in runs]
        if len(set(seen)) > 1:
            changed += 1
            print(f"CHANGED {test}: " + " ".join(seen))
    for test in sorted(set().union(*runs)):
        if all(run.get(test) in ("failed", "error") for run in runs):
            print(f"FAILED IN EVERY RUN {test}")
    print(f"{changed} test(s) changed verdict across {len(runs)} runs")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
