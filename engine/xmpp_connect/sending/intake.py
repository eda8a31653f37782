"""The durable intake of the API worker processes: idempotency claims and accepted send requests, queued.

A worker answers ``202 accepted`` once the request and its result are committed here; the core process (the
one that owns the XMPP sessions and the evidence store) reads the queue and carries each request out. The
intake is its own SQLite file with one writer role (the workers), so accepting never waits for the evidence
store's write lock; the core only reads it (WAL readers never block the writer) and keeps its progress in
the evidence store. A claim whose result is empty belongs to the core: the worker forwarded that request.
A worker that queued a request says so on the intake's wake socket (``Intake.notify``), so an idle core
waits for that instead of reading the queue every few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from xmpp_connect.store.errors import IdempotencyConflict
from xmpp_connect.store.group_commit import CommitBatch

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS intake_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS intake_claims (
        tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, payload_hash TEXT NOT NULL,
        operation_id TEXT NOT NULL, result TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, idempotency_key))""",
    """CREATE TABLE IF NOT EXISTS intake_items (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, operation_id TEXT NOT NULL,
        request TEXT NOT NULL, received_at TEXT NOT NULL, payload_hash TEXT)""",
)
ITEM_COLUMNS = "seq, tenant_id, operation_id, request, received_at, payload_hash"


@dataclass(frozen=True)
class Claim:
    """What the intake knows of an idempotency key: ``fresh`` (claimed just now), or the result to replay;
    an earlier claim without a result was forwarded to the core (replay it there)."""

    fresh: bool
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Queued:
    """A request a worker accepts: its JSON text as received, when, and the result JSON it answered."""

    request_json: str
    received_at: datetime
    result_json: str


@dataclass(frozen=True)
class IntakeItem:
    """One accepted request, in acceptance order. ``payload_hash``: the request's idempotency hash as the
    worker computed it from the same text (None for a request queued before the intake kept it)."""

    seq: int
    tenant_id: str
    operation_id: str
    request: dict[str, Any]
    received_at: datetime
    payload_hash: str | None = None


class Intake:
    """The intake file. Writers batch per event-loop iteration (``enable_group_commit``); ``durable()``
    resolves once everything accepted so far is committed."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._batch: CommitBatch | None = None
        with self._write():
            for statement in SCHEMA:
                self._conn.execute(statement)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(intake_items)")}
            if "payload_hash" not in columns:  # a file from before the column: its rows keep NULL
                self._conn.execute("ALTER TABLE intake_items ADD COLUMN payload_hash TEXT")
            self._conn.execute(
                "INSERT INTO intake_meta (key, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
                (uuid.uuid4().hex,),
            )
        self.instance_id = str(self._value("SELECT value FROM intake_meta WHERE key = 'instance_id'"))
        self.wake_address = wake_address(self.path)
        self._notifier: socket.socket | None = None

    def enable_group_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on the writes of one loop iteration commit together (call on the loop's thread)."""
        self._batch = CommitBatch(
            loop,
            begin=lambda: self._conn.execute("BEGIN IMMEDIATE"),
            commit=lambda: self._conn.execute("COMMIT"),
            rollback=lambda: self._conn.execute("ROLLBACK") if self._conn.in_transaction else None,
        )

    async def durable(self) -> None:
        if self._batch is not None:
            await self._batch.durable()

    def claim(
        self,
        tenant_id: str,
        key: str,
        payload_hash: str,
        operation_id: str,
        now: datetime,
        queued: Queued | None = None,
    ) -> Claim:
        """Claim ``key`` for this payload; with ``queued``, also queue the request for the core and keep the
        result for replays, in the same write. A key already claimed is answered from its row (conflict
        when it came with another payload)."""
        with self._write():
            inserted = self._conn.execute(
                "INSERT INTO intake_claims (tenant_id, idempotency_key, payload_hash, operation_id, result,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING operation_id",
                (tenant_id, key, payload_hash, operation_id, queued and queued.result_json, now.isoformat()),
            ).fetchall()
            if inserted:
                if queued is not None:
                    self._conn.execute(
                        "INSERT INTO intake_items (tenant_id, operation_id, request, received_at,"
                        " payload_hash) VALUES (?, ?, ?, ?, ?)",
                        (tenant_id, operation_id, queued.request_json, queued.received_at.isoformat(),
                         payload_hash),
                    )
                return Claim(fresh=True)
            row = self._conn.execute(
                "SELECT payload_hash, result FROM intake_claims WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant_id, key),
            ).fetchone()
        if row[0] != payload_hash:
            raise IdempotencyConflict(key)
        return Claim(fresh=False, result=json.loads(row[1]) if row[1] else None)

    def notify(self) -> None:
        """Tell the core that requests were queued (and committed): one datagram on the wake socket it listens
        on while idle. Best effort, never blocks: no core listening (it reads the queue when it starts), its
        socket full (wakes are waiting for it already) or no abstract sockets here (it polls) are all fine."""
        with contextlib.suppress(OSError, ValueError):
            if self._notifier is None:
                self._notifier = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._notifier.setblocking(False)
            self._notifier.sendto(b"\0", self.wake_address)

    def items_after(self, seq: int, limit: int = 200) -> list[IntakeItem]:
        """Accepted requests after position ``seq``, oldest first (committed ones only)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM intake_items WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [_item(row) for row in rows]

    def pending(self, tenant_id: str, operation_id: str, after_seq: int) -> IntakeItem | None:
        """The accepted request of this operation if it is still waiting after position ``after_seq``."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM intake_items"
                " WHERE seq > ? AND tenant_id = ? AND operation_id = ? ORDER BY seq LIMIT 1",
                (after_seq, tenant_id, operation_id),
            ).fetchone()
        return None if row is None else _item(row)

    def backlog(self, after_seq: int) -> int:
        """How many accepted requests wait after position ``after_seq``."""
        return int(self._value("SELECT COUNT(*) FROM intake_items WHERE seq > ?", (after_seq,)))

    def prune(self, upto_seq: int) -> int:
        """Drop queued requests the core has carried out (claims stay: they answer replays)."""
        with self._write():
            return self._conn.execute("DELETE FROM intake_items WHERE seq <= ?", (upto_seq,)).rowcount

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.close()
        batch, self._batch = self._batch, None
        if batch is not None:
            batch.commit()
        self._conn.close()

    def _value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """A savepoint in the loop iteration's batch, or a transaction of its own without group commit."""
        with self._lock:
            batch = self._batch
            if batch is not None and batch.applies_here():
                batch.join()
                begin, done = "SAVEPOINT w", "RELEASE w"
                undo: tuple[str, ...] = ("ROLLBACK TO w", "RELEASE w")
            else:
                begin, done, undo = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
            self._conn.execute(begin)
            try:
                yield
                self._conn.execute(done)
            except BaseException:
                for statement in undo:
                    self._conn.execute(statement)
                raise


def wake_address(path: str) -> str:
    """The intake's wake socket: a Linux abstract Unix socket named after the intake file (no file to clean
    up, no path length limit), so each intake has its own."""
    digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
    return f"\0xmpp-connect-intake-{digest}"


def _item(row: tuple[Any, ...]) -> IntakeItem:
    return IntakeItem(row[0], row[1], row[2], json.loads(row[3]), datetime.fromisoformat(row[4]), row[5])
