"""The SQL store's base: options, per-thread connections, transactions, migrations, counters."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.store.errors import TransactionMisuse
from xmpp_connect.store.group_commit import CommitBatch
from xmpp_connect.store.migrations import CREATE_VERSION_TABLE, MIGRATIONS, Migration
from xmpp_connect.store.recent import Recent
from xmpp_connect.store.records import RawEventRef, XmppMessage
from xmpp_connect.store.timestamps import to_text, utc_now

log = logging.getLogger("xmpp_connect.store")

Row = Mapping[str, Any]
EVIDENCE_FEED = "evidence_feed"
STANZA_ORDER = "stanza_send_order"


@dataclass(frozen=True)
class StoreOptions:
    """Privacy and clock settings (§28). Redaction of raw stanzas is on unless turned off explicitly;
    metadata-only mode stores no message body anywhere (it implies redaction)."""

    metadata_only: bool = False
    redact_raw: bool = True
    clock: Callable[[], datetime] = utc_now


class SqlBase:
    """Connections and schema; subclasses (the backends) provide the connection hooks."""

    backend = "sql"
    begin_write = "BEGIN"
    """The statement that opens a write transaction (SQLite takes the write lock at once with IMMEDIATE)."""
    take_counter = "UPDATE counters SET last_value = last_value + ? WHERE name = ? RETURNING last_value"
    """Advance one counter and return its new value (the row stays locked until commit)."""
    counters_in_batch = False
    """True where a group-commit batch holds the whole database's write lock from begin to commit (SQLite):
    its counters are then read once, handed out from memory and written back just before the COMMIT."""
    statement_undoes_itself = False
    """True where a statement that fails undoes only its own changes and leaves the transaction usable
    (SQLite). A store call nested in another write scope then joins it without a savepoint of its own."""

    def __init__(self, options: StoreOptions) -> None:
        self.options = options
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()
        self._batch: CommitBatch | None = None
        self._batch_counters: dict[str, int] = {}
        self._raw_digests: Recent[tuple[str, str], str] = Recent()
        """(tenant, raw event id) -> content sha256 of the raw stanzas recorded lately: chaining the
        evidence that cites them needs no lookup."""
        self._known_messages: Recent[tuple[str, str], XmppMessage] = Recent()
        """(tenant, message id) -> the message (a message row never changes once written)."""
        self._recorded_stanzas: Recent[tuple[str, str], bool] = Recent()
        """(tenant, stanza ref) of stanzas recorded lately: recording one again is a no-op anyway."""
        self._known_endpoints: Recent[tuple[str, str], bool] = Recent()
        """(tenant, endpoint ref) of endpoints written or found lately (no endpoint row is ever deleted):
        remembering one again is a no-op anyway."""
        self._offered_raw: Recent[tuple[str, str, str], tuple[RawEventRef, str]] = Recent()
        """(tenant, source, stanza text) -> the raw stanza kept for it and its stored content's sha256, for
        sent messages kept lately when written: their ack (the same text) takes (and drops) the entry and
        references that row instead of keeping a second copy."""

    def _connect(self) -> Any:
        raise NotImplementedError

    def _scope(self, conn: Any, depth: int) -> AbstractContextManager[None]:
        """Depth 0: a write transaction that commits on success. Deeper: a savepoint inside it."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction for every store write made in the block on this thread: nested store calls
        join it and everything commits together at the end of the outermost block (with group commit on,
        the block becomes one part of the loop iteration's batch instead, undone alone if it fails: a
        savepoint, or on SQLite a replay of the batch's earlier writes). A nested ``transaction()``
        is a savepoint: when it fails, only its own writes are undone. A failed nested store call undoes at
        least its failed statement (SQLite: only that; PostgreSQL: the whole call, as a savepoint); its
        earlier statements go when the enclosing block fails. Never ``await`` inside it: the connection is
        the thread's, so another task's statements would land in this transaction (raises
        TransactionMisuse)."""
        return self._write_scope(savepoint=True)

    def _write(self) -> AbstractContextManager[Any]:
        """A write transaction on this thread's connection, or a part of the one already open (a savepoint
        unless a failed statement undoes itself: most store calls are one statement; then the part is the
        scope's ``_Joined``, no new context manager per call)."""
        joined = getattr(self._local, "joined", None)
        if joined is not None:
            return joined  # type: ignore[no-any-return]
        return self._write_scope(savepoint=not self.statement_undoes_itself)

    @contextmanager
    def _write_scope(self, savepoint: bool) -> Iterator[Any]:
        local = self._local
        depth = getattr(local, "depth", 0)
        conn = self._conn()
        if depth == 0:
            local.loop, local.owner = _running()
            local.batched = self._join_batch()
            if not local.batched:
                self._began()
        mark = self._batch_mark() if local.batched else None
        local.depth = depth + 1
        if depth == 0 and self.statement_undoes_itself:
            local.joined = _Joined(self, conn, local.loop, local.owner)
        try:
            if mark is None:
                with self._scope(conn, depth + local.batched):
                    yield conn
            else:
                yield conn
        except BaseException:
            self._forget_recent()
            self._rolled_back()
            if mark is not None:
                self._batch_undo(conn, mark)
            raise
        finally:
            local.depth = depth
            if depth == 0:
                local.joined = None

    def _batch_mark(self) -> int | None:
        """Where a scope inside the open group-commit batch is undone without a savepoint (SQLite: by
        replaying the batch's earlier writes, store/batch_log.py), the mark to undo back to; else None."""
        return None

    def _batch_undo(self, conn: Any, mark: int) -> None:
        """Undo the batch's writes made after ``mark`` (see ``_batch_mark``)."""

    def _forget_recent(self) -> None:
        """Rows written in a rolled-back scope are gone: forget what memory says about recent rows."""
        self._raw_digests.clear()
        self._known_messages.clear()
        self._recorded_stanzas.clear()
        self._known_endpoints.clear()
        self._offered_raw.clear()
        self._local.fenced = set()

    def _rolled_back(self) -> None:
        """Hook: a write scope (or savepoint) ended in an exception and was rolled back."""

    def enable_group_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Call on the loop's thread: from now on the writes of one loop iteration on that thread commit
        together (each write scope a part that fails alone, one COMMIT after the callbacks already
        queued). Whoever acknowledges a write to the outside must ``await durable()`` first; reads outside
        a write scope commit the open batch before they run, so nothing outside the store ever sees
        uncommitted writes."""
        conn = self._conn()
        self._batch = CommitBatch(
            loop,
            begin=lambda: self._begin_batch(conn),
            commit=lambda: self._commit_batch(conn),
            rollback=lambda: self._abandon_batch(conn),
        )

    def _begin_batch(self, conn: Any) -> None:
        """Open a group-commit batch's transaction."""
        self._began()
        self._exec(conn, self.begin_write)

    def _began(self) -> None:
        """A transaction starts on this thread: nothing is fenced in it yet."""
        self._local.fenced = set()

    def _in_transaction(self) -> bool:
        """Whether this thread is inside an open write transaction (a write scope or its open batch)."""
        batch = self._batch
        open_batch = batch is not None and batch.is_open and batch.applies_here()
        return bool(getattr(self._local, "depth", 0)) or open_batch

    def _abandon_batch(self, conn: Any) -> None:
        """A failed group commit: roll back, and forget what memory says about the rows that are gone."""
        self._forget_recent()
        self._abandon(conn)

    def _commit_batch(self, conn: Any) -> None:
        """Write the counters handed out from memory back, then commit. They leave memory first, so after a
        failed (rolled-back) commit the next batch reads them from the database again."""
        counters, self._batch_counters = self._batch_counters, {}
        for name, last_value in counters.items():
            self._exec(conn, "UPDATE counters SET last_value = ? WHERE name = ?", (last_value, name))
        self._exec(conn, "COMMIT")

    def disable_group_commit(self) -> None:
        """Commit the open batch (on the loop's thread) and go back to one transaction per write scope."""
        batch, self._batch = self._batch, None
        if batch is not None and batch.applies_here():
            batch.commit()

    async def durable(self) -> None:
        """Return once every write made so far on this thread is committed (at once without group commit);
        raises the error of a failed group commit."""
        batch = self._batch
        if batch is not None and batch.applies_here():
            await batch.durable()

    def _join_batch(self) -> int:
        """1 when this outermost write scope runs inside the thread's group-commit batch, else 0."""
        batch = self._batch
        if batch is None or not batch.applies_here():
            return 0
        batch.join()
        return 1

    def _abandon(self, conn: Any) -> None:
        """Roll back whatever transaction is still open after a failed commit."""
        raise NotImplementedError

    def _exec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _exec_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _notify(self, conn: Any, account_ref: str, tenant_id: str, stanza_id: str) -> None:
        """Wake the account's owner replica for this outbox entry when the transaction commits (PostgreSQL
        NOTIFY); SQLite has one replica, which owns every account."""

    def _broken(self, conn: Any) -> bool:
        """Whether this connection can no longer be used (the backend says)."""
        return False

    def _lock_migrations(self, conn: Any) -> None:
        """Serialise schema migration between processes sharing the database."""

    def _conn(self) -> Any:
        local = self._local
        if getattr(local, "depth", 0) and local.owner is not _task_now(local.loop):
            raise TransactionMisuse("a store transaction was held across an await")
        conn = getattr(local, "conn", None)
        if conn is not None and not getattr(local, "depth", 0) and self._broken(conn):
            # The server ended this connection (a restart, a partition): the next call gets a fresh one.
            with self._connections_lock:
                self._connections.remove(conn)
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _read_conn(self) -> Any:
        """This thread's connection for a read; outside a write scope an open batch is committed first."""
        joined = getattr(self._local, "joined", None)
        if joined is not None:
            return joined.__enter__()
        batch = self._batch
        outside_writes = not getattr(self._local, "depth", 0)
        if batch is not None and batch.is_open and outside_writes and batch.applies_here():
            batch.commit()
        return self._conn()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._exec(self._read_conn(), sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self._exec(self._read_conn(), sql, params).fetchall())

    def close(self) -> None:
        """Close every connection this store opened (on every thread); this thread's open batch commits."""
        self.disable_group_commit()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
        """Apply the migrations not applied yet, in version order; returns the versions applied now."""
        applied_now: list[int] = []
        with self._write() as conn:
            self._lock_migrations(conn)
            self._exec(conn, CREATE_VERSION_TABLE)
            done = {row["version"] for row in self._exec(conn, "SELECT version FROM schema_migrations")}
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    self._exec(conn, statement)
                self._exec(
                    conn,
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, to_text(self.options.clock())),
                )
                applied_now.append(migration.version)
        if applied_now:
            log.info("schema migrated backend=%s versions=%s", self.backend, applied_now)
        return applied_now

    def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row["v"]) if row and row["v"] is not None else 0

    def _reserve_positions(self, conn: Any, count: int, counter: str = EVIDENCE_FEED) -> int:
        """Take ``count`` positions of a counter; returns the last. The row stays locked until commit.

        Inside a SQLite group-commit batch the counter is read once per batch and advanced in memory (the
        batch holds the write lock until its COMMIT, which writes the counter back first). Positions taken
        by a write scope that is rolled back stay taken: the feed may have gaps, never repeats."""
        batch = self._batch
        if self.counters_in_batch and batch is not None and batch.is_open and batch.applies_here():
            last = self._batch_counters.get(counter)
            if last is None:
                row = self._exec(conn, "SELECT last_value FROM counters WHERE name = ?", (counter,))
                last = int(row.fetchone()["last_value"])
            last += count
            self._batch_counters[counter] = last
            return last
        row = self._exec(conn, self.take_counter, (count, counter)).fetchone()
        return int(row["last_value"])


class _Joined:
    """A store call inside the thread's open write scope where a failed statement undoes itself (SQLite):
    what ``_write_scope`` does for it (the owner check; on failure, memory of recent rows forgotten) without
    a generator per call. Made once per outermost scope."""

    __slots__ = ("_conn", "_loop", "_owner", "_store")

    def __init__(
        self,
        store: SqlBase,
        conn: Any,
        loop: asyncio.AbstractEventLoop | None,
        owner: asyncio.Task[Any] | None,
    ) -> None:
        self._store = store
        self._conn = conn
        self._loop = loop
        self._owner = owner

    def __enter__(self) -> Any:
        if self._owner is not _task_now(self._loop):
            raise TransactionMisuse("a store transaction was held across an await")
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._store._forget_recent()
            self._store._rolled_back()


def _running() -> tuple[asyncio.AbstractEventLoop | None, asyncio.Task[Any] | None]:
    """The loop running on this thread and the task it runs now (None, None outside a loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None, None
    return loop, asyncio.current_task(loop)


def _task_now(loop: asyncio.AbstractEventLoop | None) -> asyncio.Task[Any] | None:
    """The task running now, for a scope that began while ``loop`` ran on this thread: asked of that loop
    (loops do not nest, so while the scope's code runs that loop is this thread's running loop), without
    ``asyncio.current_task()`` finding the running loop first: on Python 3.11 that is a ``getpid`` system
    call, and this check runs at every store call in a scope. A scope that began outside a loop asks as
    before."""
    if loop is None:
        return _current_task()
    return asyncio.current_task(loop)


def _current_task() -> asyncio.Task[Any] | None:
    """The running asyncio task, or None outside an event loop."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
