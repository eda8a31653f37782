"""The embedded default backend: one SQLite file in WAL mode, a connection per thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xmpp_connect.store.batch_log import BatchLog, answer_of, batch_broken
from xmpp_connect.store.connection import StoreOptions
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.wal import WalCheckpointer

AUTO_CHECKPOINT_PAGES = 1000
"""SQLite's default ``wal_autocheckpoint``: every connection but the group-commit one keeps it."""


def _null(value: None) -> None:
    """NULL's adapter: ``None`` binds as NULL either way, but without an adapter registered for its type
    the sqlite3 module (Python 3.11) first looks for ``__adapt__`` on its protocol type and ``__conform__``
    on ``None``, raising and clearing an AttributeError for the first: ~2.5k instructions per NULL
    parameter (an evidence row binds several). Registered for the whole process; the value bound is the
    same, and an adapter registered for ``None`` before (by whoever) is kept."""
    return value


if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), _null)


_KINDS: dict[str, tuple[bool, bool]] = {}
"""statement -> (whether it returns rows from a write, whether it is a SELECT): the store's statements
are few fixed texts, each searched once instead of at every call."""
_KINDS_LIMIT = 4096


def _kind(sql: str) -> tuple[bool, bool]:
    """``_KINDS``' entry for a statement, remembered (statements built with variable parts, e.g. ``IN``
    lists, are many: past the limit the memory starts over)."""
    kind = ("RETURNING" in sql, sql.startswith("SELECT"))
    if len(_KINDS) >= _KINDS_LIMIT:
        _KINDS.clear()
    _KINDS[sql] = kind
    return kind


class _Rows:
    """A fully read result, so a RETURNING statement never stays open across COMMIT."""

    def __init__(self, rows: list[sqlite3.Row]) -> None:
        self._rows = rows

    def fetchone(self) -> sqlite3.Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[sqlite3.Row]:
        return self._rows

    def __iter__(self) -> Iterator[sqlite3.Row]:
        return iter(self._rows)


class SqliteStore(SqlStore):
    """Writers are serialised by ``BEGIN IMMEDIATE``; readers never block them (WAL)."""

    backend = "sqlite"
    begin_write = "BEGIN IMMEDIATE"
    counters_in_batch = True
    statement_undoes_itself = True
    fired_only_here = True
    outbox_only_here = True

    def __init__(
        self, path: str | Path, options: StoreOptions | None = None, *, migrate: bool = True
    ) -> None:
        super().__init__(options or StoreOptions())
        if str(path) == ":memory:":
            raise ValueError("SQLite store needs a file: every thread opens its own connection")
        self.path = str(path)
        self._checkpointer: tuple[WalCheckpointer, sqlite3.Connection] | None = None
        self._batch_log: BatchLog | None = None
        """The open group-commit batch's writes (store/batch_log.py), None while no batch is open."""
        self._batch_conn: sqlite3.Connection | None = None
        if migrate:
            self.migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=1073741824")
        return conn

    def enable_group_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Group commit, and the loop's connection no longer checkpoints the WAL: a background thread
        (xmpp_connect.store.wal) does, until ``disable_group_commit()`` or ``close()``."""
        super().enable_group_commit(loop)
        if self._checkpointer is None:
            conn = self._conn()
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = (WalCheckpointer(self._connect), conn)
            self._checkpointer[0].start()

    def disable_group_commit(self) -> None:
        """Commit the open batch, stop the checkpoint thread; the loop's connection checkpoints again."""
        checkpointer, self._checkpointer = self._checkpointer, None
        super().disable_group_commit()
        if checkpointer is not None:
            thread, conn = checkpointer
            thread.stop()
            conn.execute(f"PRAGMA wal_autocheckpoint={AUTO_CHECKPOINT_PAGES}")

    def _begin_batch(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``; the batch's writes are logged, to undo a failed scope without a savepoint."""
        super()._begin_batch(conn)
        self._batch_log, self._batch_conn = BatchLog(), conn

    def _batch_mark(self) -> int | None:
        batch_log = self._batch_log
        return None if batch_log is None else len(batch_log)

    def _batch_undo(self, conn: sqlite3.Connection, mark: int) -> None:
        if self._batch_log is not None:
            self._batch_log.undo_to(conn, mark)

    def _abandon_batch(self, conn: sqlite3.Connection) -> None:
        self._batch_log = None
        super()._abandon_batch(conn)

    def _commit_batch(self, conn: sqlite3.Connection) -> None:
        batch_log, self._batch_log = self._batch_log, None
        if batch_log is not None and batch_log.broken is not None:
            self._batch_counters = {}
            raise batch_log.broken
        super()._commit_batch(conn)
        if self._checkpointer is not None:
            self._checkpointer[0].after_commit(conn)

    @contextmanager
    def _scope(self, conn: sqlite3.Connection, depth: int) -> Iterator[None]:
        begin, commit, undo = (
            ("BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
            if depth == 0
            else (f"SAVEPOINT s{depth}", f"RELEASE s{depth}", (f"ROLLBACK TO s{depth}", f"RELEASE s{depth}"))
        )
        conn.execute(begin)
        try:
            yield
            conn.execute(commit)
        except BaseException:
            if conn.in_transaction:
                for statement in undo:
                    conn.execute(statement)
            raise

    def _abandon(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _exec(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        if type(params) is not tuple:
            params = tuple(params)
        batch_log = self._batch_log
        if batch_log is not None and batch_log.broken is not None and conn is self._batch_conn:
            raise batch_broken(batch_log.broken)
        cursor = conn.execute(sql, params)
        kind = _KINDS.get(sql)
        if kind is None:
            kind = _kind(sql)
        returning, select = kind
        if batch_log is None or conn is not self._batch_conn or select:
            return _Rows(cursor.fetchall()) if returning else cursor
        if returning:
            rows = cursor.fetchall()
            batch_log.add(sql, params, [tuple(row) for row in rows])
            return _Rows(rows)
        batch_log.add(sql, params, cursor.rowcount)
        return cursor

    def _exec_many(self, conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch_log = self._batch_log
        if batch_log is None or conn is not self._batch_conn:
            conn.executemany(sql, rows)
            return
        if batch_log.broken is not None:
            raise batch_broken(batch_log.broken)
        params = [tuple(row) for row in rows]
        batch_log.add(sql, params, answer_of(conn.executemany(sql, params), returning=False), many=True)
