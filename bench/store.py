"""Evidence store benchmark: events/s appended and assessments/s computed with 10k, 100k, 1M messages stored.

The store grows in place: background rows (messages with two evidence events each) are bulk-loaded up to
each size, then the same measured work runs: single-event appends (one transaction each, as the pipeline
does) and assessments (read a message's log, compute its assessment). Flat µs/op across sizes means the
per-event cost does not grow with the store.

The append cost is measured with and without the evidence hash chain in the same run (A/B, alternating
rounds on the same store, so the VM's drift hits both alike); on PostgreSQL also with several writer threads.

    .venv/bin/python bench/store.py [--sizes 10000,100000,1000000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.classification import Assessment, Precedence
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store import PostgresStore, SqliteStore
from xmpp_connect.store.chain import ChainLinker
from xmpp_connect.store.sql import SqlStore

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = "bench"
PRECEDENCE = Precedence(
    order=("success.delivered_to_client", "undef.server_acknowledged_only", "undef.pending"),
)
ACK = EvidenceEvent(
    tenant_id=TENANT,
    event_id="",
    event_type="notification.attempt.accepted_by_provider",
    scenario="server_acknowledged",
    rule_id="ack.sm",
    policy_version="bench0000000000",
    assessment=Assessment("undef", "undef.server_acknowledged_only", "medium"),
    grade="server_acceptance",
    attempt_state="server_acknowledged",
    occurred_at=T0,
    case_id="case",
    participant_id="p",
    endpoint_ref="ep_bench",
    fact={"kind": "sm_ack"},
)
RECEIPT = replace(
    ACK,
    event_type="notification.endpoint.accepted",
    scenario="delivered_to_client",
    rule_id="receipt.from_addressee",
    assessment=Assessment("success", "success.delivered_to_client", "high"),
    grade="delivery_receipt",
    attempt_state="delivered_to_client",
    fact={"kind": "receipt"},
)


def background(start: int, stop: int) -> Iterator[EvidenceEvent]:
    """Two events (server ack, receipt) for each message number in [start, stop)."""
    for n in range(start, stop):
        at = T0 + timedelta(seconds=n)
        yield replace(ACK, event_id=f"evt_a{n}", message_id=f"m{n}", occurred_at=at)
        yield replace(
            RECEIPT, event_id=f"evt_r{n}", message_id=f"m{n}", occurred_at=at + timedelta(seconds=1)
        )


class Unchained(ChainLinker):
    """The B side: the same insert statement with the chain columns left NULL (no head read, no hashing)."""

    def values(self, row: tuple[object, ...]) -> tuple[object, ...]:
        return (None,) * 6


def chain_ab(store: SqlStore, samples: int, writers: int, rounds: int = 20) -> tuple[float, float, float]:
    """µs per append with and without the chain, and the median of the per-round ratios: ``rounds`` pairs
    of ``samples / rounds`` appends by ``writers`` threads each (one event, one transaction per append),
    the pair's order alternating (AB, BA, ...) so that drift in the VM's speed hits both sides alike."""
    per_round = max(1, samples // (2 * rounds))
    spent = {True: 0.0, False: 0.0}
    ratios: list[float] = []
    counter = iter(range(10**12))
    lock = threading.Lock()

    def writer(count: int) -> None:
        for _ in range(count):
            with lock:
                n = next(counter)
            store.append_evidence([replace(RECEIPT, event_id=f"evt_ab{n}", message_id=f"m{n % 1000}")])

    def one_round(pool: ThreadPoolExecutor, chained: bool) -> float:
        store.chain_linker = ChainLinker if chained else Unchained  # type: ignore[misc]
        store._chain_cache = None  # the B rounds' rows carry no chain: start each round afresh
        began = time.perf_counter()
        for done in [pool.submit(writer, per_round) for _ in range(writers)]:
            done.result()
        return time.perf_counter() - began

    with ThreadPoolExecutor(writers) as pool:  # the same threads (and connections) in every round
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            took = {chained: one_round(pool, chained) for chained in order}
            spent[True] += took[True]
            spent[False] += took[False]
            ratios.append(took[True] / took[False])
    store.chain_linker = ChainLinker  # type: ignore[misc]
    total = per_round * writers * rounds
    return spent[True] / total * 1e6, spent[False] / total * 1e6, statistics.median(ratios)


def print_ab(store: SqlStore, samples: int, writers: int) -> None:
    with_chain, without, ratio = chain_ab(store, samples, writers)
    print(
        f"{store.backend:8} chain A/B, {writers} writer(s): append {with_chain:6.0f} µs/event with the chain,"
        f" {without:6.0f} without ({(with_chain / without - 1) * 100:+.1f}% overall,"
        f" median of paired rounds {(ratio - 1) * 100:+.1f}%)",
        flush=True,
    )


def timed(operations: int, work: Callable[[int], None]) -> float:
    """Operations per second of ``work`` called ``operations`` times."""
    began = time.perf_counter()
    for i in range(operations):
        work(i)
    return operations / (time.perf_counter() - began)


def run(store: SqlStore, sizes: list[int], samples: int, writers: tuple[int, ...] = (1,)) -> None:
    loaded = 0
    rng = random.Random(7)
    for size in sizes:
        began = time.perf_counter()
        rows = store.bulk_append(background(loaded, size))
        load_seconds = time.perf_counter() - began
        loaded = size

        def append(i: int, size: int = size) -> None:
            n = rng.randrange(size)
            store.append_evidence([replace(RECEIPT, event_id=f"evt_x{size}_{i}", message_id=f"m{n}")])

        def assess(i: int, size: int = size) -> None:
            message = f"m{rng.randrange(size)}"
            lifecycle.assess(message, store.evidence_for_message(TENANT, message), PRECEDENCE, "bench")

        appends = timed(samples, append)
        assessments = timed(samples, assess)
        print(
            f"{store.backend:8} {size:>9,} msgs  bulk-load {rows:>9,} rows"
            f" {load_seconds:6.1f}s | append {appends:8,.0f} events/s ({1e6 / appends:6.0f} µs/event)"
            f" | assess {assessments:8,.0f}/s ({1e6 / assessments:6.0f} µs)",
            flush=True,
        )
    for count in writers:
        print_ab(store, samples, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--pg-writers", default="1,4", help="writer threads for the PostgreSQL chain A/B")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = args.backends.split(",")
    print(f"sizes={sizes} samples={args.samples} (2 background events per message; one append = one commit)")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as directory:
            store = SqliteStore(Path(directory) / "bench.sqlite3")
            try:
                run(store, sizes, args.samples)
            finally:
                store.close()
    if "postgres" in backends:
        try:
            psycopg.connect(PG_DSN).close()
        except psycopg.OperationalError:
            print("postgres: not reachable at 127.0.0.1:5432, skipped")
            return
        schema = "xc_bench_" + secrets.token_hex(4)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        store = PostgresStore(PG_DSN, schema=schema)
        try:
            run(store, sizes, args.samples, tuple(int(n) for n in args.pg_writers.split(",")))
        finally:
            store.close()
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
