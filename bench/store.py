"""Evidence store benchmark: events/s appended and assessments/s computed with 10k, 100k, 1M messages stored.

The store grows in place: background rows (messages with two evidence events each) are bulk-loaded up to
each size, then the same measured work runs: single-event appends about messages scattered over the whole
store, one transaction each (a store call outside an event loop) and grouped as the service makes them
(tasks on one event loop with group commit: one loop iteration's appends are one transaction), and
assessments (read a message's log, compute its assessment). Flat µs/op across sizes means the per-event
cost does not grow with the store.

The append cost is measured with and without the evidence hash chain in the same run (A/B, alternating
rounds on the same store, so the VM's drift hits both alike), both ways; on PostgreSQL also with several
writers (a store, a thread and an event loop each, as replicas would be).

    .venv/bin/python bench/store.py [--sizes 10000,100000,1000000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.classification import Assessment, Precedence
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store import PostgresStore, SqliteStore
from xmpp_connect.store.chain import ChainLinker
from xmpp_connect.store.sql import SqlStore

TASKS = 32
"""Concurrent appending tasks per event loop in the grouped measurements (the bench/api.py concurrency)."""
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


Writer = Callable[[SqlStore, int, Iterator[int], int], None]
"""Appends ``count`` events to a store, numbered from a shared counter, each about one of the first
``spread`` messages."""


def receipt(n: int, spread: int) -> EvidenceEvent:
    """Event number ``n``: a receipt for one of the first ``spread`` messages (scattered over them)."""
    return replace(RECEIPT, event_id=f"evt_n{n}", message_id=f"m{n * 7919 % spread}")


def one_commit_each(store: SqlStore, count: int, numbers: Iterator[int], spread: int) -> None:
    """One event, one transaction (and one commit) per append: a store call outside an event loop."""
    for n in itertools.islice(numbers, count):
        store.append_evidence([receipt(n, spread)])


def grouped(store: SqlStore, count: int, numbers: Iterator[int], spread: int) -> None:
    """Appends as the service makes them: ``TASKS`` tasks on one event loop, each appending one event and
    awaiting ``durable()``; group commit makes one loop iteration's appends one transaction."""

    async def task(share: int) -> None:
        for n in itertools.islice(numbers, share):
            store.append_evidence([receipt(n, spread)])
            await store.durable()

    async def appends() -> None:
        store.enable_group_commit(asyncio.get_running_loop())
        try:
            shares = [count // TASKS + (i < count % TASKS) for i in range(TASKS)]
            await asyncio.gather(*(task(share) for share in shares))
        finally:
            store.disable_group_commit()

    asyncio.run(appends())


def append_seconds(
    store: SqlStore, count: int, writer: Writer, pool: ThreadPoolExecutor, spread: int
) -> float:
    """Seconds for ``count`` appends to ``store`` by ``writer`` on the pool's thread."""
    numbers = itertools.count(next(_rounds) * 10**9)
    began = time.perf_counter()
    pool.submit(writer, store, count, numbers, spread).result()
    return time.perf_counter() - began


_rounds = itertools.count(1)
"""Numbers the event ids of each measurement apart."""


class OneWriter:
    """The chain A/B's writer: this process's store, on one thread."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.backend = store.backend
        self.count = 1
        self._pool = ThreadPoolExecutor(1)

    def round(self, chained: bool, count: int, writer: Writer) -> tuple[float, float]:
        """Wall and CPU seconds of one round."""
        self.store.chain_linker = ChainLinker if chained else Unchained  # type: ignore[misc]
        self.store._chain_cache = None  # the B rounds' rows carry no chain: start each round afresh
        cpu = time.process_time()
        wall = append_seconds(self.store, count, writer, self._pool, 1000)
        return wall, time.process_time() - cpu

    def close(self) -> None:
        self.store.chain_linker = ChainLinker  # type: ignore[misc]
        self._pool.shutdown()


class ReplicaWriters:
    """The chain A/B's writers on PostgreSQL: processes with a store each on one schema, as replicas are
    (threads of one process would measure the interpreter's lock)."""

    def __init__(self, schema: str, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.backend = "postgres"
        self.count = count
        self._pool = context.Pool(count, _replica_start, (schema, context.Barrier(count)))

    def round(self, chained: bool, count: int, writer: Writer) -> tuple[float, float]:
        """Wall seconds of one round and the CPU seconds of every replica's share."""
        began = time.perf_counter()
        cpu = self._pool.map(_replica_round, [(chained, count, writer.__name__)] * self.count, chunksize=1)
        return time.perf_counter() - began, sum(cpu)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()


_replica: tuple[SqlStore, Any] | None = None
"""In a replica process: its store, and the barrier every replica passes before a round."""


def _replica_start(schema: str, barrier: Any) -> None:
    global _replica
    _replica = (PostgresStore(PG_DSN, schema=schema, migrate=False), barrier)


def _replica_round(task: tuple[bool, int, str]) -> float:
    """One replica's share of a round (its CPU seconds); the barrier makes every replica take exactly one
    share."""
    chained, count, writer_name = task
    assert _replica is not None
    store, barrier = _replica
    store.chain_linker = ChainLinker if chained else Unchained  # type: ignore[misc]
    store._chain_cache = None
    barrier.wait()
    writer = {"one_commit_each": one_commit_each, "grouped": grouped}[writer_name]
    cpu = time.process_time()
    writer(store, count, itertools.count(os.getpid() * 10**12 + next(_rounds) * 10**6), 1000)
    return time.process_time() - cpu


def chain_ab(writers: OneWriter | ReplicaWriters, samples: int, writer: Writer
             ) -> dict[str, tuple[float, float, float]]:
    """Wall and CPU time ("wall", "cpu") of an append with and without the chain: µs per append each way,
    and the median of the per-pair ratios. Pairs of rounds (20, or one per 2,000 appends if more are asked
    for) of ``samples / rounds`` appends split over the writers, the pair's order alternating (AB, BA, ...)
    so that drift in the VM's speed hits both sides alike. The writers' CPU time leaves out the time spent
    waiting for a core on the shared machine, which decides a pair's wall ratio often enough (on PostgreSQL
    it is the client's alone: the server's share of an append is not in it)."""
    rounds = max(20, samples // 2000)
    per_writer = max(1, samples // (2 * rounds * writers.count))
    pairs = []
    for r in range(rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        took = {chained: writers.round(chained, per_writer, writer) for chained in order}
        pairs.append((took[True], took[False]))
    per_append = 1e6 / (per_writer * writers.count * rounds)
    return {
        kind: (
            sum(chained[i] for chained, _ in pairs) * per_append,
            sum(unchained[i] for _, unchained in pairs) * per_append,
            statistics.median(chained[i] / unchained[i] for chained, unchained in pairs),
        )
        for i, kind in enumerate(("wall", "cpu"))
    }


def print_ab(writers: OneWriter | ReplicaWriters, samples: int, writer: Writer) -> None:
    measured = chain_ab(writers, samples, writer)
    (with_chain, without, ratio), (cpu_with, cpu_without, cpu_ratio) = measured["wall"], measured["cpu"]
    overall = (with_chain / without - 1) * 100
    print(
        f"{writers.backend:8} chain A/B, {writers.count} writer(s), {writer.__name__.replace('_', ' ')}:"
        f" append {with_chain:6.0f} µs/event with the chain, {without:6.0f} without"
        f" ({overall:+.1f}% overall, median of paired rounds {(ratio - 1) * 100:+.1f}%)"
        f" | CPU {cpu_with:5.0f} µs, {cpu_without:5.0f} ({(cpu_ratio - 1) * 100:+.1f}% median of pairs)",
        flush=True,
    )


def timed(operations: int, work: Callable[[int], None]) -> float:
    """Operations per second of ``work`` called ``operations`` times."""
    began = time.perf_counter()
    for i in range(operations):
        work(i)
    return operations / (time.perf_counter() - began)


def run(store: SqlStore, sizes: list[int], samples: int, ab_samples: int,
        writers: Callable[[int], OneWriter | ReplicaWriters], counts: tuple[int, ...] = (1,)) -> None:
    """The size sweep (``samples`` operations of each kind per size), then the chain A/B (``ab_samples``
    appends each way) with each count of writers."""
    loaded = 0
    rng = random.Random(7)
    with ThreadPoolExecutor(1) as pool:
        for size in sizes:
            began = time.perf_counter()
            rows = store.bulk_append(background(loaded, size))
            if store.backend == "postgres":  # as autovacuum would have by then; not while measuring
                store._conn().execute("VACUUM ANALYZE evidence_events")
            load_seconds = time.perf_counter() - began
            loaded = size

            def assess(i: int, size: int = size) -> None:
                message = f"m{rng.randrange(size)}"
                lifecycle.assess(message, store.evidence_for_message(TENANT, message), PRECEDENCE, "bench")

            each, batched = (
                append_seconds(store, samples, writer, pool, size) / samples * 1e6
                for writer in (one_commit_each, grouped)
            )
            assessments = timed(samples, assess)
            print(
                f"{store.backend:8} {size:>9,} msgs  bulk-load {rows:>9,} rows {load_seconds:6.1f}s"
                f" | append {each:5.0f} µs/event one commit each, {batched:5.0f} grouped"
                f" | assess {1e6 / assessments:5.0f} µs",
                flush=True,
            )
    for count in counts:
        ab_writers = writers(count)
        try:
            for writer in (one_commit_each, grouped):
                print_ab(ab_writers, ab_samples, writer)
        finally:
            ab_writers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--samples", type=int, default=2000, help="appends and assessments per size")
    parser.add_argument("--ab-samples", type=int, default=8000, help="appends per chain A/B")
    parser.add_argument("--pg-writers", default="1,4", help="writer threads for the PostgreSQL chain A/B")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = args.backends.split(",")
    print(f"sizes={sizes} samples={args.samples} (2 background events per message; appends one event each,"
          f" one commit each or grouped: {TASKS} tasks on one event loop with group commit)")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as directory:
            store = SqliteStore(Path(directory) / "bench.sqlite3")
            try:
                run(store, sizes, args.samples, args.ab_samples, lambda count: OneWriter(store))
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

        def writers(count: int) -> OneWriter | ReplicaWriters:
            return OneWriter(store) if count == 1 else ReplicaWriters(schema, count)

        try:
            counts = tuple(int(n) for n in args.pg_writers.split(","))
            run(store, sizes, args.samples, args.ab_samples, writers, counts)
        finally:
            store.close()
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
