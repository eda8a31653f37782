"""The embedded default backend: one SQLite file in WAL mode, a connection per thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xmpp_connect.store.connection import StoreOptions
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.wal import WalCheckpointer

AUTO_CHECKPOINT_PAGES = 1000
"""SQLite's default ``wal_autocheckpoint``: every connection but the group-commit one keeps it."""


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

    def __init__(
        self, path: str | Path, options: StoreOptions | None = None, *, migrate: bool = True
    ) -> None:
        super().__init__(options or StoreOptions())
        if str(path) == ":memory:":
            raise ValueError("SQLite store needs a file: every thread opens its own connection")
        self.path = str(path)
        self._checkpointer: tuple[WalCheckpointer, sqlite3.Connection] | None = None
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
        (xmpp_connect.store.wal) does, until ``disable_group_commit()`` or ``close()``.

        The loop's connection also keeps its statement journal in memory (``temp_store=MEMORY``): a batch
        holds savepoints for most of its life, and every page a savepoint's writes touch is copied there
        first; past 64 KiB SQLite spills it to a temporary file, two ``pwrite`` calls per page copied (some
        50 per send through Prosody, measured with strace)."""
        super().enable_group_commit(loop)
        if self._checkpointer is None:
            conn = self._conn()
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute("PRAGMA temp_store=MEMORY")
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
            conn.execute("PRAGMA temp_store=DEFAULT")

    def _commit_batch(self, conn: sqlite3.Connection) -> None:
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
        cursor = conn.execute(sql, tuple(params))
        return _Rows(cursor.fetchall()) if "RETURNING" in sql else cursor

    def _exec_many(self, conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)
