"""Evidence store benchmark: µs per append and per assessment with 10k, 100k, 1M messages stored.

One store per size is bulk-loaded with background messages (two evidence events each, ids as the service
makes them: ``--ids``), then the same measured work runs on every store, in rounds that alternate the stores'
order so the VM's drift hits all sizes alike: appends one event each, one transaction each (a store call
outside an event loop) and grouped as the service makes them (tasks on one event loop with group commit: one
loop iteration's appends are one transaction), in two patterns: **scattered** (receipts about messages all
over the store: the worst case for any index) and **recent** (as the service appends: a new send's first
event and a receipt about one of the last sends, in turn); and assessments (read a message's log, compute its
assessment) of scattered and of recent messages. A ratio of the largest store's over the smallest's near 1
means the per-event cost does not grow with the store. Wall and CPU time and page faults are printed. The
sweep runs twice: on fresh connections ("cold", each page a connection touches first costs it a page
fault), then after a warm-up of unmeasured appends and assessments ("warm", as a running service's
connections are).

The append cost is measured with and without the evidence hash chain in the same run (A/B, alternating
rounds on the same store, so the VM's drift hits both alike), both ways; on PostgreSQL also with several
writers (a store, a thread and an event loop each, as replicas would be). The B side leaves the chain
columns NULL, or with ``--ab-b sized`` writes constants of the same length (the row's size without the
chain's computing).

    .venv/bin/python bench/store.py [--sizes 10000,100000,1000000] [--backends sqlite,postgres]
                                    [--ids ordered|digest] [--warm 0.0625] [--ab-samples 8000]
                                    [--ab-b null|sized]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import multiprocessing
import os
import random
import resource
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
from xmpp_connect.model.evidence import EvidenceEvent, dedupe_event_id
from xmpp_connect.sending.ids import message_id
from xmpp_connect.store import PostgresStore, SqliteStore
from xmpp_connect.store.chain import ChainLinker
from xmpp_connect.store.idempotency import operation_id
from xmpp_connect.store.records import XmppMessage
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.timestamps import to_text

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


def ordered_message(n: int) -> str:
    """Message number ``n``'s id as the service makes it: its send claimed ``n`` seconds after T0."""
    return message_id(operation_id(TENANT, f"key{n}", T0 + timedelta(seconds=n)))


def digest_message(n: int) -> str:
    """Message number ``n``'s id as the service made it before ids were time-ordered: a digest."""
    return "xmppmsg_" + hashlib.sha256(f"key{n}".encode()).hexdigest()[:24]


IDS: dict[str, Callable[[int], str]] = {"ordered": ordered_message, "digest": digest_message}
"""The id schemes the size sweep can store and append with (``--ids``)."""


def about(template: EvidenceEvent, message: str, key: str, at: datetime) -> EvidenceEvent:
    """``template`` as an observation about ``message``, its event id derived as the service derives it
    (from a dedupe key that begins with the message id)."""
    event_id = dedupe_event_id(TENANT, message, f"{message}|{key}")
    return replace(template, event_id=event_id, message_id=message, occurred_at=at)


def background(start: int, stop: int, message: Callable[[int], str]) -> Iterator[EvidenceEvent]:
    """Two events (server ack, receipt) for each message number in [start, stop)."""
    for n in range(start, stop):
        at = T0 + timedelta(seconds=n)
        yield about(ACK, message(n), "ack", at)
        yield about(RECEIPT, message(n), "receipt", at + timedelta(seconds=1))


class Unchained(ChainLinker):
    """The B side: the same insert statement with the chain columns left NULL (no head read, no hashing)."""

    def values(self, row: tuple[object, ...]) -> tuple[object, ...]:
        return (None,) * 6


SIZED = (None, "5a" * 16, "b3" * 32, "evt_n1000000000", "c4" * 32, "d5" * 32)
"""Chain values of the stored lengths (salt, personal digest, previous id, entry and chain hash)."""


class Sized(ChainLinker):
    """The B side with ``--ab-b sized``: constant chain values as long as the real ones (rows as wide as
    chained rows, no hashing), which splits the row's size from the chain's computing."""

    def values(self, row: tuple[object, ...]) -> tuple[object, ...]:
        return SIZED


B_SIDES: dict[str, type[ChainLinker]] = {"null": Unchained, "sized": Sized}
b_side: type[ChainLinker] = Unchained
"""The chain A/B's B side (``--ab-b``)."""


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
        self.store.chain_linker = ChainLinker if chained else b_side  # type: ignore[misc]
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
        task = (chained, count, writer.__name__, b_side.__name__)
        cpu = self._pool.map(_replica_round, [task] * self.count, chunksize=1)
        return time.perf_counter() - began, sum(cpu)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()


_replica: tuple[SqlStore, Any] | None = None
"""In a replica process: its store, and the barrier every replica passes before a round."""


def _replica_start(schema: str, barrier: Any) -> None:
    global _replica
    _replica = (PostgresStore(PG_DSN, schema=schema, migrate=False), barrier)


def _replica_round(task: tuple[bool, int, str, str]) -> float:
    """One replica's share of a round (its CPU seconds); the barrier makes every replica take exactly one
    share."""
    chained, count, writer_name, b_name = task
    assert _replica is not None
    store, barrier = _replica
    b_linker = {linker.__name__: linker for linker in B_SIDES.values()}[b_name]
    store.chain_linker = ChainLinker if chained else b_linker  # type: ignore[misc]
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
        f"{' (same-length constants)' if b_side is Sized else ''}"
        f" ({overall:+.1f}% overall, median of paired rounds {(ratio - 1) * 100:+.1f}%)"
        f" | CPU {cpu_with:5.0f} µs, {cpu_without:5.0f} ({(cpu_ratio - 1) * 100:+.1f}% median of pairs)",
        flush=True,
    )


INSERT_MESSAGE = (
    "INSERT INTO messages (tenant_id, message_id, created_at, tracking_context) VALUES (?, ?, ?, ?)"
)
RECENT = 500
"""The recent pattern's reach: its receipts and assessments are about one of the last ``RECENT`` sends."""


Step = tuple[XmppMessage | None, EvidenceEvent]
"""One appended event, and the message a new send creates before it."""


class Workload:
    """One store loaded with ``size`` background messages, and the size sweep's operations on it."""

    def __init__(self, store: SqlStore, size: int, message: Callable[[int], str]) -> None:
        self.store = store
        self.size = size
        self.message = message
        self.sent = size
        """Messages so far: the background's, then those the recent pattern sends."""
        self._numbers = itertools.count()
        self._rng = random.Random(size)

    def load(self) -> str:
        began = time.perf_counter()
        rows = self.store.bulk_append(background(0, self.size, self.message))
        for start in range(0, self.size, 10_000):
            with self.store._write() as conn:
                self.store._exec_many(conn, INSERT_MESSAGE, (
                    (TENANT, self.message(n), to_text(T0 + timedelta(seconds=n)), "{}")
                    for n in range(start, min(start + 10_000, self.size))
                ))
        if self.store.backend == "postgres":  # as autovacuum would have by then; not while measuring
            self.store._conn().execute("VACUUM ANALYZE evidence_events")
        return f"{self.size:,} msgs: {rows:,} rows in {time.perf_counter() - began:.0f} s"

    def scattered(self) -> Step:
        """A receipt about one of the background messages, scattered over the whole store (worst case)."""
        n = next(self._numbers)
        return None, about(RECEIPT, self.message(n * 7919 % self.size), f"receipt-{n}", T0)

    def recent(self) -> Step:
        """As the service appends: in turn a new send (its message and first event), and a receipt about one
        of the last sends."""
        n = next(self._numbers)
        if n % 2 == 0:
            at = T0 + timedelta(seconds=self.sent)
            message = XmppMessage(TENANT, self.message(self.sent), at)
            self.sent += 1
            return message, about(ACK, message.message_id, "ack", at)
        return None, about(RECEIPT, self.message(self._recent()), f"receipt-{n}", T0)

    def _recent(self) -> int:
        return self.sent - 1 - self._rng.randrange(RECENT)

    def append_µs(self, pool: ThreadPoolExecutor, writer: Callable[[SqlStore, Iterator[Step]], None],
                  step: Callable[[], Step], count: int) -> float:
        """µs per append of ``count`` events made by ``step``, appended by ``writer`` on the pool thread."""
        began = time.perf_counter()
        pool.submit(writer, self.store, (step() for _ in range(count))).result()
        return (time.perf_counter() - began) / count * 1e6

    def assess_µs(self, message: Callable[[], int], count: int) -> float:
        """µs per assessment of ``count`` messages (their log read and assessed) numbered by ``message``."""
        began = time.perf_counter()
        for _ in range(count):
            message_id = self.message(message())
            events = self.store.evidence_for_message(TENANT, message_id)
            lifecycle.assess(message_id, events, PRECEDENCE, "bench")
        return (time.perf_counter() - began) / count * 1e6


def write(store: SqlStore, step: Step) -> None:
    message, event = step
    if message is not None:
        store.create_message(message)
    store.append_evidence([event])


def commit_each(store: SqlStore, steps: Iterator[Step]) -> None:
    """One transaction (and one commit) per store call: store calls outside an event loop."""
    for step in steps:
        write(store, step)


def in_groups(store: SqlStore, steps: Iterator[Step]) -> None:
    """``TASKS`` tasks on one event loop, each writing a step and awaiting ``durable()`` in turn, as the
    service appends; group commit makes one loop iteration's writes one transaction."""

    async def task() -> None:
        for step in steps:
            write(store, step)
            await store.durable()

    async def appends() -> None:
        store.enable_group_commit(asyncio.get_running_loop())
        try:
            await asyncio.gather(*(task() for _ in range(TASKS)))
        finally:
            store.disable_group_commit()

    asyncio.run(appends())


Measured = tuple[float, float, float]
"""One measurement: wall µs, CPU µs (the process's, every thread) and minor page faults, per operation."""


def measured(operation: Callable[[Workload], float], workload: Workload, count: int) -> Measured:
    """``operation`` on ``workload`` (``count`` operations; it returns wall µs each), with its CPU time and
    page faults."""
    cpu, faults = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall = operation(workload)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return wall, (time.process_time() - cpu) / count * 1e6, faults / count


def sweep(workloads: list[Workload], samples: int, pool: ThreadPoolExecutor, label: str,
          rounds: int = 16) -> None:
    """Each operation on every store, ``samples`` per store in ``rounds`` rounds; a round measures the
    stores one after the other, the order alternating, so the VM's drift hits all sizes alike. Appends run
    on the pool's thread (the writer's connection), assessments on this one. Printed per operation: wall
    and CPU µs per store (median of its rounds), the largest store's over the smallest's (median of the
    rounds' ratios, and their range), and minor page faults per operation (median)."""
    count = max(1, samples // rounds)
    operations: dict[str, Callable[[Workload], float]] = {
        "append scattered, one commit each": lambda w: w.append_µs(pool, commit_each, w.scattered, count),
        "append scattered, grouped": lambda w: w.append_µs(pool, in_groups, w.scattered, count),
        "append recent, one commit each": lambda w: w.append_µs(pool, commit_each, w.recent, count),
        "append recent, grouped": lambda w: w.append_µs(pool, in_groups, w.recent, count),
        "assess scattered": lambda w: w.assess_µs(lambda: w._rng.randrange(w.size), count),
        "assess recent": lambda w: w.assess_µs(w._recent, count),
    }
    taken: dict[str, dict[int, list[Measured]]] = {
        name: {w.size: [] for w in workloads} for name in operations
    }
    for r in range(rounds):
        for name, operation in operations.items():
            for workload in workloads if r % 2 == 0 else workloads[::-1]:
                taken[name][workload.size].append(measured(operation, workload, count))
    backend = workloads[0].store.backend
    small, large = workloads[0].size, workloads[-1].size
    for name, per_size in taken.items():
        line = [f"{backend:8} {label:4} {name:34}"]
        for i, unit in ((0, "µs"), (1, "µs CPU")):
            ratios = sorted(a[i] / b[i] for a, b in zip(per_size[large], per_size[small], strict=True))
            figures = " ".join(f"{statistics.median(m[i] for m in ms):5.0f}" for ms in per_size.values())
            line.append(f"{figures} {unit}, {large // 1000:,}k/{small // 1000:,}k"
                        f" {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        faults = " ".join(f"{statistics.median(m[2] for m in ms):.1f}" for ms in per_size.values())
        print(" | ".join(line) + f" | faults {faults}", flush=True)


def warm_up(workloads: list[Workload], per_message: float, pool: ThreadPoolExecutor) -> None:
    """As a service's connections are after running a while: ``per_message`` scattered grouped appends per
    stored message on the writer's connection, and as many scattered assessments on the reader's, unmeasured
    (their first touch of a page costs a connection a page fault: its mmap, its page cache growing)."""
    for w in workloads:
        began, count = time.perf_counter(), max(1, int(w.size * per_message))
        w.append_µs(pool, in_groups, w.scattered, count)
        w.assess_µs(lambda w=w: w._rng.randrange(w.size), count)
        print(f"{w.store.backend:8} warmed {w.size:,} msgs: {count:,} appends and assessments in"
              f" {time.perf_counter() - began:.0f} s", flush=True)


def run(workloads: list[Workload], samples: int, ab_samples: int, warm: float,
        writers: Callable[[int], OneWriter | ReplicaWriters], counts: tuple[int, ...] = (1,)) -> None:
    """The size sweep (``samples`` operations of each kind per store) on fresh connections ("cold"), then
    unless ``warm`` is 0 the warm-up and the sweep again ("warm"), then unless ``ab_samples`` is 0 the
    chain A/B (``ab_samples`` appends each way, on the largest store) with each count of writers."""
    for workload in workloads:
        print(f"{workload.store.backend:8} loaded {workload.load()}", flush=True)
    with ThreadPoolExecutor(1) as pool:
        sweep(workloads, samples, pool, "cold")
        if warm:
            warm_up(workloads, warm, pool)
            sweep(workloads, samples, pool, "warm")
    for count in counts if ab_samples else ():
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
    parser.add_argument("--samples", type=int, default=4000, help="appends and assessments per size")
    parser.add_argument("--ids", choices=sorted(IDS), default="ordered",
                        help="ids: time-ordered (as the service makes them) or digests (as it made them)")
    parser.add_argument("--ab-samples", type=int, default=8000, help="appends per chain A/B (0: none)")
    parser.add_argument("--warm", type=float, default=1 / 16,
                        help="warm-up operations per stored message, then a second sweep (0: none)")
    parser.add_argument("--pg-writers", default="1,4", help="writer threads for the PostgreSQL chain A/B")
    parser.add_argument("--ab-b", choices=sorted(B_SIDES), default="null",
                        help="the chain A/B's B side: chain columns NULL, or constants of the same length")
    args = parser.parse_args()
    global b_side
    b_side = B_SIDES[args.ab_b]
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = args.backends.split(",")
    message = IDS[args.ids]
    print(f"sizes={sizes} samples={args.samples} ids={args.ids} (2 background events per message; appends one"
          f" event each, one commit each or grouped: {TASKS} tasks on one event loop with group commit)")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as directory:
            stores = [SqliteStore(Path(directory) / f"bench{size}.sqlite3") for size in sizes]
            try:
                workloads = [Workload(store, n, message) for store, n in zip(stores, sizes, strict=True)]
                run(workloads, args.samples, args.ab_samples, args.warm, lambda count: OneWriter(stores[-1]))
            finally:
                for store in stores:
                    store.close()
    if "postgres" in backends:
        try:
            psycopg.connect(PG_DSN).close()
        except psycopg.OperationalError:
            print("postgres: not reachable at 127.0.0.1:5432, skipped")
            return
        schemas = ["xc_bench_" + secrets.token_hex(4) for _ in sizes]
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        stores = [PostgresStore(PG_DSN, schema=schema) for schema in schemas]

        def writers(count: int) -> OneWriter | ReplicaWriters:
            return OneWriter(stores[-1]) if count == 1 else ReplicaWriters(schemas[-1], count)

        try:
            counts = tuple(int(n) for n in args.pg_writers.split(","))
            workloads = [Workload(store, size, message) for store, size in zip(stores, sizes, strict=True)]
            run(workloads, args.samples, args.ab_samples, args.warm, writers, counts)
        finally:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                for store, schema in zip(stores, schemas, strict=True):
                    store.close()
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
