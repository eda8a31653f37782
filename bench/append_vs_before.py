"""Appends on the current code against appends on an earlier commit's code (issue 16: "as fast as today").

``--before`` names the commit to compare with (default bc96e86, the parent of the evidence hash chain's
first commit); its ``engine/`` is exported with ``git archive`` into a temporary directory. The current side
is this checkout's ``engine/`` (or ``--after``'s, exported too). Each side runs in a driver process of its
own (this script with ``--driver``, ``PYTHONPATH`` at that side's ``engine/``) with a store of its own,
pre-filled the same way to 10k messages (two evidence entries each, ``bulk_append``). The driver uses only
store calls both versions have (``append_evidence``, ``enable_group_commit``, ``durable``) and appends the
same rows: a receipt-like entry about one of the stored messages, scattered over them.

Rounds alternate between the sides in pairs (before-now, now-before, ...), so the loaded VM's drift hits
both alike. Printed per mode: each side's µs per append, wall and the driver's CPU time (all its threads;
on PostgreSQL the client's alone), the median of the per-pair ratios now / before, and the CPU time's
system part (counted in clock ticks: summed only). Modes: SQLite one commit each (a store call outside an
event loop), SQLite grouped and PostgreSQL grouped (``TASKS`` tasks on one event loop with group commit,
each appending one entry and awaiting ``durable()``, as the service appends). ``--callgrind N`` adds
instructions per SQLite append (valgrind; per side, two runs from copies of one pre-filled store: ``WARM``
+ N appends less ``WARM`` appends, divided by N).

    .venv/bin/python bench/append_vs_before.py [--before bc96e86] [--after REV] [--pairs 40]
        [--modes sqlite-one,sqlite-grouped,postgres-grouped] [--callgrind 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
MESSAGES = 10_000
"""Messages in each side's store before the measured appends (two entries each)."""
TASKS = 32
"""Concurrent appending tasks on the event loop in grouped mode (as bench/store.py)."""
ROUND = {"sqlite-one": 500, "sqlite-grouped": 1000, "postgres-grouped": 300}
"""Appends per round in each mode (about 50-150 ms of work on this VM)."""
WARM = 300
"""Appends before the callgrind runs' counted ones."""
SIDES = ("before", "now")


def driver(backend: str, target: str) -> None:
    """The driver process: pre-fill a store, then answer ``mode count`` lines with ``wall cpu`` seconds.

    Its entries are bench/store.py's ACK and RECEIPT written out again on purpose: the driver also runs on
    the old tree, where bench/store.py's imports (the chain, the ids) do not exist."""
    from xmpp_connect.model.classification import Assessment
    from xmpp_connect.model.evidence import EvidenceEvent
    from xmpp_connect.store import PostgresStore, SqliteStore

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ack = EvidenceEvent(
        tenant_id="bench",
        event_id="",
        event_type="notification.attempt.accepted_by_provider",
        scenario="server_acknowledged",
        rule_id="ack.sm",
        policy_version="bench0000000000",
        assessment=Assessment("undef", "undef.server_acknowledged_only", "medium"),
        grade="server_acceptance",
        attempt_state="server_acknowledged",
        occurred_at=t0,
        case_id="case",
        participant_id="p",
        endpoint_ref="ep_bench",
        fact={"kind": "sm_ack"},
    )
    receipt = replace(
        ack,
        event_type="notification.endpoint.accepted",
        scenario="delivered_to_client",
        rule_id="receipt.from_addressee",
        assessment=Assessment("success", "success.delivered_to_client", "high"),
        grade="delivery_receipt",
        attempt_state="delivered_to_client",
        fact={"kind": "receipt"},
    )

    def background() -> Iterator[Any]:
        for n in range(MESSAGES):
            at = t0 + timedelta(seconds=n)
            yield replace(ack, event_id=f"evt_a{n}", message_id=f"m{n}", occurred_at=at)
            after = at + timedelta(seconds=1)
            yield replace(receipt, event_id=f"evt_r{n}", message_id=f"m{n}", occurred_at=after)

    numbers = itertools.count()

    def entry() -> Any:
        n = next(numbers)
        return replace(receipt, event_id=f"evt_n{n}", message_id=f"m{n * 7919 % MESSAGES}")

    def one_commit_each(store: Any, count: int) -> None:
        for _ in range(count):
            store.append_evidence([entry()])

    def grouped(store: Any, count: int) -> None:
        async def task(share: int) -> None:
            for _ in range(share):
                store.append_evidence([entry()])
                await store.durable()

        async def appends() -> None:
            store.enable_group_commit(asyncio.get_running_loop())
            try:
                await asyncio.gather(*(task(count // TASKS + (i < count % TASKS)) for i in range(TASKS)))
            finally:
                store.disable_group_commit()

        asyncio.run(appends())

    writers = {"one": one_commit_each, "grouped": grouped}
    if backend == "sqlite":
        existed = Path(target).exists()
        store: Any = SqliteStore(target)
        if not existed:
            store.bulk_append(background())
    else:
        import psycopg

        store = PostgresStore(PG_DSN, schema=target)
        store.bulk_append(background())
        with psycopg.connect(PG_DSN, autocommit=True) as conn:  # as autovacuum would have by then
            conn.execute(f'VACUUM ANALYZE "{target}".evidence_events')
    import xmpp_connect

    print("ready", xmpp_connect.__file__, flush=True)
    try:
        for line in sys.stdin:
            mode, count = line.split()
            wall, cpu, system = time.perf_counter(), time.process_time(), os.times().system
            writers[mode](store, int(count))
            took = time.perf_counter() - wall, time.process_time() - cpu, os.times().system - system
            print(*took, flush=True)
    finally:
        store.close()


class Side:
    """One side's driver process."""

    def __init__(self, name: str, engine: Path, backend: str, target: str) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(engine)}
        self._process = subprocess.Popen(
            [sys.executable, str(HERE), "--driver", backend, target],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        ready = self._process.stdout.readline().split()
        if not ready or ready[0] != "ready" or not ready[1].startswith(str(engine)):
            raise RuntimeError(f"{name}: driver did not start on {engine}: {ready}")

    def round(self, mode: str, count: int) -> tuple[float, ...]:
        """Wall, CPU and (of that) system CPU seconds of ``count`` appends."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{mode} {count}\n")
        self._process.stdin.flush()
        return tuple(float(seconds) for seconds in self._process.stdout.readline().split())

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(60)


def measure(sides: dict[str, Side], mode: str, pairs: int) -> None:
    """``pairs`` pairs of rounds, the order alternating, after an unmeasured round each; prints the result."""
    kind = mode.split("-")[1]
    count = ROUND[mode]
    for side in sides.values():
        side.round(kind, count)
    took: dict[str, list[tuple[float, ...]]] = {name: [] for name in SIDES}
    for p in range(pairs):
        for name in SIDES if p % 2 == 0 else reversed(SIDES):
            took[name].append(sides[name].round(kind, count))
    figures = []
    per_append = 1e6 / (pairs * count)
    for i, label in enumerate(("wall", "CPU")):
        before, now = ([t[i] for t in took[name]] for name in SIDES)
        ratio = statistics.median(n / b for b, n in zip(before, now, strict=True))
        figures.append(
            f"{label} {sum(before) * per_append:5.0f} µs before, {sum(now) * per_append:5.0f} now"
            f" (median of pairs {(ratio - 1) * 100:+.1f}%)"
        )
    system = {name: sum(t[2] for t in took[name]) * per_append for name in SIDES}
    figures.append(f"of the CPU, system {system['before']:4.0f} µs before, {system['now']:4.0f} now")
    print(f"{mode:17} {pairs} pairs of {count}: " + " | ".join(figures), flush=True)


def instructions(engine: Path, prefilled: Path, kind: str, count: int, scratch: Path) -> int:
    """Instructions (callgrind) of a driver run on a copy of ``prefilled``: ``WARM``, then ``count``
    appends."""
    db = scratch / f"cg-{secrets.token_hex(4)}.sqlite3"
    shutil.copy(prefilled, db)
    out = scratch / f"callgrind-{secrets.token_hex(4)}.out"
    script = f"{kind} {WARM}\n" + (f"{kind} {count}\n" if count else "")
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(HERE),
         "--driver", "sqlite", str(db)],
        env={**os.environ, "PYTHONPATH": str(engine), "PYTHONHASHSEED": "0"},
        input=script, text=True, check=True, capture_output=True,
    )
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    assert totals is not None
    return int(totals.group(1))


def callgrind(engines: dict[str, Path], scratch: Path, count: int) -> None:
    """Instructions per SQLite append on each side (the difference of two runs, from the same pre-fill)."""
    for name, engine in engines.items():  # pre-filled by a plain run, outside valgrind
        Side(name, engine, "sqlite", str(scratch / f"prefill-{name}.sqlite3")).close()
    for kind in ("one", "grouped"):
        per = {
            name: (instructions(engine, scratch / f"prefill-{name}.sqlite3", kind, count, scratch)
                   - instructions(engine, scratch / f"prefill-{name}.sqlite3", kind, 0, scratch)) / count
            for name, engine in engines.items()
        }
        before, now = per["before"], per["now"]
        print(
            f"sqlite-{kind:11} callgrind, {count} appends after {WARM}: {before / 1e3:.1f}k instructions"
            f" per append before, {now / 1e3:.1f}k now ({(now / before - 1) * 100:+.1f}%)",
            flush=True,
        )


def export(commit: str, into: Path) -> Path:
    """``commit``'s ``engine/`` unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "engine"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "engine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="bc96e86", help="the commit whose code is 'before'")
    parser.add_argument("--after", help="a commit to measure instead of this checkout's engine/")
    parser.add_argument("--pairs", type=int, default=40, help="pairs of rounds per mode")
    parser.add_argument("--modes", default="sqlite-one,sqlite-grouped,postgres-grouped")
    parser.add_argument("--callgrind", type=int, default=0, help="appends counted by callgrind (0: none)")
    parser.add_argument("--driver", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(*args.driver)
        return
    modes = args.modes.split(",")
    head = args.after or subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                        check=True, capture_output=True, text=True).stdout.strip()
    print(f"before: {args.before}, now: {head}; {MESSAGES:,} messages pre-filled;"
          f" grouped: {TASKS} tasks on one event loop with group commit", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        engines = {
            "before": export(args.before, scratch / "before"),
            "now": export(args.after, scratch / "now") if args.after else REPO / "engine",
        }
        sqlite_modes = [m for m in modes if m.startswith("sqlite")]
        if sqlite_modes:
            sides = {name: Side(name, engine, "sqlite", str(scratch / f"{name}.sqlite3"))
                     for name, engine in engines.items()}
            try:
                for mode in sqlite_modes:
                    measure(sides, mode, args.pairs)
            finally:
                for side in sides.values():
                    side.close()
        if "postgres-grouped" in modes:
            postgres(engines, args.pairs)
        if args.callgrind:
            callgrind(engines, scratch, args.callgrind)


def postgres(engines: dict[str, Path], pairs: int) -> None:
    """The PostgreSQL grouped mode, each side on a throwaway schema of its own."""
    import psycopg
    from psycopg import sql

    try:
        psycopg.connect(PG_DSN).close()
    except psycopg.OperationalError:
        print("postgres: not reachable at 127.0.0.1:5432, skipped")
        return
    schemas = {name: "xc_bench_" + secrets.token_hex(4) for name in engines}
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for schema in schemas.values():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sides: dict[str, Side] = {}
    try:
        for name, engine in engines.items():
            sides[name] = Side(name, engine, "postgres", schemas[name])
        measure(sides, "postgres-grouped", pairs)
    finally:
        for side in sides.values():
            side.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
