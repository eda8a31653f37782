"""Undo without savepoints inside a SQLite group-commit batch: the batch's writes are logged and, when one
write scope fails, the batch goes back to its start and the writes before that scope run again."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("xmpp_connect.store")


class ReplayDiverged(RuntimeError):
    """A write run again during an undo answered differently than the first time."""


class BatchLog:
    """The writes of one open batch, in order, each with its answer (the rows it returned, or how many rows
    it changed).

    A batch holds SQLite's write lock from its ``BEGIN IMMEDIATE`` to its ``COMMIT`` and the store's writes
    take every value from their parameters, so rolling the batch back and running the writes before a
    failed scope again rebuilds the database as it was when that scope began: the same rows, the same
    rowids, the same answers. That holds if no other connection committed between the ``ROLLBACK`` and the
    new ``BEGIN IMMEDIATE`` (``PRAGMA data_version`` tells), and each answer is checked; otherwise (or if
    a write reading the database's clock, like a lease's expiry, answers differently) the batch cannot be
    restored and fails at its commit instead. This spares a savepoint (SAVEPOINT and RELEASE) per write
    scope, a dozen statements per send, and the statement-journal copy of every page each one touches; a
    savepoint held open across the whole batch instead cost SQLite more than the per-scope ones (a replay
    of a traced run: ~770 against ~720 µs per send, ~685 with none). A failure costs the replay."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Sequence[Any], object, bool]] = []
        """(statement, parameters, answer, whether the parameters are the rows of an ``executemany``)."""
        self.broken: Exception | None = None
        """Set when an undo could not restore the batch: its commit raises this instead."""

    def __len__(self) -> int:
        return len(self.writes)

    def add(self, sql: str, params: Sequence[Any], answer: object, many: bool = False) -> None:
        self.writes.append((sql, params, answer, many))

    def undo_to(self, conn: sqlite3.Connection, length: int) -> None:
        """Undo every write after the first ``length``; on failure the batch is marked broken."""
        kept = self.writes[:length]
        self.writes = kept
        if self.broken is not None:
            return
        try:
            if not conn.in_transaction:
                raise ReplayDiverged("SQLite rolled the whole batch back")
            version = data_version(conn)
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            if data_version(conn) != version:
                raise ReplayDiverged("another connection wrote between the rollback and the replay")
            for sql, params, answer, many in kept:
                cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
                if answer_of(cursor, "RETURNING" in sql) != answer:
                    raise ReplayDiverged(f"a write answered differently when run again: {sql[:60]}")
        except Exception as exc:
            log.error("group commit batch could not be restored after a failed write scope (%s)", exc)
            self.broken = exc
            if not conn.in_transaction:  # the rest of the batch must not commit statement by statement
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("BEGIN IMMEDIATE")


def batch_broken(cause: Exception) -> ReplayDiverged:
    """The error for any statement in a batch that could not be restored: its counters and memories
    describe rows that are gone, so a statement now could only fail misleadingly (a repeated feed position)
    or read what will not commit."""
    error = ReplayDiverged("this group-commit batch could not be restored after a failed write scope")
    error.__cause__ = cause
    return error


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the database (SQLite's ``PRAGMA data_version``)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def answer_of(cursor: sqlite3.Cursor, returning: bool) -> object:
    """What a write told its caller: the rows it returned, else how many rows it changed."""
    return [tuple(row) for row in cursor.fetchall()] if returning else cursor.rowcount
