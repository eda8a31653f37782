"""The SQL store's base: options, per-thread connections, transactions, migrations, counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.store.migrations import CREATE_VERSION_TABLE, MIGRATIONS, Migration
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

    def __init__(self, options: StoreOptions) -> None:
        self.options = options
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()

    def _connect(self) -> Any:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        """A write transaction on this thread's connection; commits on success."""
        raise NotImplementedError

    def _exec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _exec_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _lock_migrations(self, conn: Any) -> None:
        """Serialise schema migration between processes sharing the database."""

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._exec(self._conn(), sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self._exec(self._conn(), sql, params).fetchall())

    def close(self) -> None:
        """Close every connection this store opened (on every thread)."""
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
        """Take ``count`` positions of a counter; returns the last. The row stays locked until commit."""
        row = self._exec(
            conn,
            "UPDATE counters SET last_value = last_value + ? WHERE name = ? RETURNING last_value",
            (count, counter),
        ).fetchone()
        return int(row["last_value"])
