"""Reads of one message among other selectors: before and after they search the message's index.

One store per backend is bulk-loaded with ``--messages`` messages of one participant and one case (two
entries each, bench/store.py's background). Then, in alternating rounds on the same store, the reads that
take a message besides a case or participant run as the code before this change wrote them (A: plain
``column = ?`` for every selector) and as the store runs them now (B): the audit export's selection
(``selected_rows`` with case, participant and message), the feed (``events_page``, participant and message)
and ``evidence_for_message`` with a participant. Prints each read's plan (SQLite's EXPLAIN QUERY PLAN,
PostgreSQL's EXPLAIN after VACUUM ANALYZE), µs per read for A and B per round, and the ratio A/B.

    .venv/bin/python bench/message_filters.py [--messages 50000] [--reads 200] [--rounds 5]
                                              [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from store import PG_DSN, TENANT, background, ordered_message
from xmpp_connect.store import PostgresStore, SqliteStore, audit, evidence_log
from xmpp_connect.store.rows import where_equal
from xmpp_connect.store.sql import SqlStore

SELECTORS = {"case_id": "case", "participant_id": "p"}
"""Every background entry's case and participant (bench/store.py)."""

Read = Callable[[SqlStore, str], Any]


def plain_where(tenant_id: str, message_id: str | None, **others: str | None) -> tuple[str, list[Any]]:
    """The selectors as the store wrote them before: every one ``column = ?`` (side A)."""
    return where_equal(tenant_id, **others, message_id=message_id)


@contextmanager
def side(name: str) -> Iterator[None]:
    """Side A runs the store's reads with the plain where clause, side B as they are."""
    if name == "B":
        yield
        return
    try:
        evidence_log.evidence_where = audit.evidence_where = plain_where  # type: ignore[assignment]
        yield
    finally:
        evidence_log.evidence_where = audit.evidence_where = WHERE


WHERE = evidence_log.evidence_where
READS: dict[str, Read] = {
    "export selection (case, participant, message)": lambda store, m: store.selected_rows(
        TENANT, message_id=m, **SELECTORS
    ),
    "feed (participant, message)": lambda store, m: store.events_page(
        TENANT, participant_id="p", message_id=m
    ),
    "evidence_for_message (participant)": lambda store, m: store.evidence_for_message(
        TENANT, m, participant_id="p"
    ),
}


def plans(store: SqlStore, message: str) -> None:
    """Each read's plan on both sides (the statement the store runs, captured)."""
    captured: list[tuple[str, list[Any]]] = []
    real = store._all

    def capture(text: str, params: Any = ()) -> Any:
        captured.append((text, list(params)))
        return real(text, params)

    prefix = "EXPLAIN QUERY PLAN " if store.backend == "sqlite" else "EXPLAIN "
    column = "detail" if store.backend == "sqlite" else "QUERY PLAN"
    for name, read in READS.items():
        for label in "AB":
            store._all = capture  # type: ignore[method-assign]
            try:
                with side(label):
                    read(store, message)
            finally:
                del store._all
            text, values = captured[-1]
            lines = [str(row[column]).strip() for row in store._all(prefix + text, values)]
            print(f"  {label} {name}: " + " | ".join(lines))


def measure(store: SqlStore, messages: list[str], rounds: int) -> None:
    """µs per read on each side, in rounds that alternate which side runs first."""
    for name, read in READS.items():
        for message in messages[:5]:
            with side("A"):
                old = read(store, message)
            assert old == read(store, message)
        ratios, times = [], {"A": [], "B": []}
        for round_ in range(rounds):
            for label in "AB" if round_ % 2 == 0 else "BA":
                with side(label):
                    began = time.perf_counter()
                    for message in messages:
                        read(store, message)
                    times[label].append((time.perf_counter() - began) / len(messages) * 1e6)
            ratios.append(times["A"][-1] / times["B"][-1])
        a, b = times["A"], times["B"]
        print(
            f"  {name}: A {min(a):,.0f}-{max(a):,.0f} µs, B {min(b):,.0f}-{max(b):,.0f} µs,"
            f" A/B {min(ratios):,.2f}-{max(ratios):,.2f} (median {statistics.median(ratios):,.2f})"
        )


def run(store: SqlStore, count: int, reads: int, rounds: int) -> None:
    began = time.perf_counter()
    rows = store.bulk_append(background(0, count, ordered_message))
    if store.backend == "postgres":
        store._conn().execute("VACUUM ANALYZE evidence_events")
    seconds = time.perf_counter() - began
    print(f"{store.backend}: {rows:,} entries of one participant and case, loaded in {seconds:.0f} s")
    rng = random.Random(count)
    messages = [ordered_message(rng.randrange(count)) for _ in range(reads)]
    plans(store, messages[0])
    measure(store, messages, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--reads", type=int, default=200, help="sampled messages read per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as directory:
            store = SqliteStore(Path(directory) / "store.sqlite3")
            try:
                run(store, args.messages, args.reads, args.rounds)
            finally:
                store.close()
    if "postgres" in backends:
        schema = "xc_bench_" + secrets.token_hex(4)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            pg = PostgresStore(PG_DSN, schema=schema)
            try:
                run(pg, args.messages, args.reads, args.rounds)
            finally:
                pg.close()
        finally:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
