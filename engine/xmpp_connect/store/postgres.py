"""The shared backend for several replicas: PostgreSQL through psycopg 3, a connection per thread."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from xmpp_connect.model.chain import GENESIS
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store.chain import CHAINED_COLUMNS, INSERT_CHAINED, Heads
from xmpp_connect.store.connection import StoreOptions
from xmpp_connect.store.sql import SqlStore

_LOCK_COUNTERS = "WITH locked AS (SELECT name FROM counters ORDER BY name FOR UPDATE)"
"""Every counter row locked first, in name order: transactions of several replicas (or threads) that take
different counters in different orders would otherwise deadlock each other."""
_RESERVE_FEED = (
    f"{_LOCK_COUNTERS} UPDATE counters SET last_value = last_value + ? WHERE name = 'evidence_feed'"
    " AND (SELECT count(*) FROM locked) > 0 RETURNING last_value, head_tenant, head_event_id, head_hash"
)
_INSERT_AND_MOVE_HEAD = (
    f"WITH appended AS ({INSERT_CHAINED} ON CONFLICT (tenant_id, event_id) DO NOTHING"
    " RETURNING seq, tenant_id, event_id, chain_hash),"
    " moved AS (UPDATE counters SET head_tenant = appended.tenant_id, head_event_id = appended.event_id,"
    " head_hash = appended.chain_hash FROM appended WHERE counters.name = 'evidence_feed')"
    " SELECT seq FROM appended"
)
_INSERT_NEW_EVENT = INSERT_CHAINED + " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING seq"
"""One entry alone, inside a group-commit batch (the head moves at the commit)."""
_MOVE_HEAD = (
    "UPDATE counters SET head_tenant = ?, head_event_id = ?, head_hash = ? WHERE name = 'evidence_feed'"
)
_LOCK_ALL_COUNTERS = "SELECT name FROM counters ORDER BY name FOR UPDATE"
_MOVE_HEAD_TO_LAST_ENTRY = (
    "UPDATE counters SET head_tenant = last.tenant_id, head_event_id = last.event_id,"
    " head_hash = last.chain_hash FROM (SELECT tenant_id, event_id, chain_hash FROM evidence_events"
    " ORDER BY seq DESC LIMIT 1) AS last WHERE counters.name = 'evidence_feed'"
)
_TENANT, _EVENT_ID = CHAINED_COLUMNS.index("tenant_id"), CHAINED_COLUMNS.index("event_id")
_UNKNOWN = ("", "", "")
"""A batch's pending head move after a part of the batch was rolled back: which of its entries remain is
not tracked, so the commit moves the head to the log's last entry."""


class PostgresStore(SqlStore):
    """All tables live in ``schema``; migrations are serialised by an advisory lock on that schema.

    Several writers (threads, replicas) append to one feed: each append locks the feed counter's row, and
    that row also holds the chain head of the tenant that appended last (moved by the same statement that
    inserts an entry, or once per group-commit batch just before its COMMIT), so a writer appending after
    another one learns the head from the counter it takes anyway instead of reading the log
    (spec/audit.md)."""

    backend = "postgres"
    db_now = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
    share_lock = " FOR SHARE"
    take_counter = (
        f"{_LOCK_COUNTERS} UPDATE counters SET last_value = last_value + ? WHERE name = ?"
        " AND (SELECT count(*) FROM locked) > 0 RETURNING last_value"
    )
    insert_new_event = _INSERT_AND_MOVE_HEAD

    def __init__(
        self,
        dsn: str,
        options: StoreOptions | None = None,
        *,
        schema: str = "public",
        migrate: bool = True,
    ) -> None:
        super().__init__(options or StoreOptions())
        self._dsn = dsn
        self.schema = schema
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._dsn, autocommit=True, row_factory=dict_row)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    @contextmanager
    def _scope(self, conn: psycopg.Connection[Any], depth: int) -> Iterator[None]:
        """Depth 0: BEGIN ... COMMIT. Deeper: a savepoint, released lazily: a scope that succeeds leaves its
        RELEASE to go out with the next sibling's SAVEPOINT, one round trip instead of two (the enclosing
        scope's release or the COMMIT releases it otherwise). A send costs some thirty store scopes."""
        if depth == 0:
            self._local.unreleased = None
            with conn.transaction():
                yield
            return
        name = f"xc_{depth}"
        unreleased = getattr(self._local, "unreleased", None)
        release = f"RELEASE SAVEPOINT {unreleased}; " if unreleased else ""
        conn.execute(f"{release}SAVEPOINT {name}", prepare=False)
        self._local.unreleased = None
        try:
            yield
        except BaseException:
            self._local.unreleased = None
            if not conn.closed:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}", prepare=False)
            raise
        self._local.unreleased = name

    def _begin_batch(self, conn: psycopg.Connection[Any]) -> None:
        self._local.unreleased = None
        self._local.head_move = None
        super()._begin_batch(conn)

    def _commit_batch(self, conn: psycopg.Connection[Any]) -> None:
        """Move the chain head to the batch's last entry, then commit. The batch's first append locked the
        counter's row until this commit, so no other writer appended in between: one head move per batch
        instead of one per append. After a rolled-back part the row is locked anew first (that part may
        have been the batch's only lock on it) and the head read from the log."""
        move, self._local.head_move = getattr(self._local, "head_move", None), None
        if move is _UNKNOWN:
            self._exec(conn, _LOCK_ALL_COUNTERS)
            self._exec(conn, _MOVE_HEAD_TO_LAST_ENTRY)
        elif move is not None:
            self._exec(conn, _MOVE_HEAD, move)
        super()._commit_batch(conn)

    def _abandon_batch(self, conn: psycopg.Connection[Any]) -> None:
        self._local.head_move = None
        super()._abandon_batch(conn)

    def _rolled_back(self) -> None:
        super()._rolled_back()
        if getattr(self._local, "head_move", None) is not None:
            self._local.head_move = _UNKNOWN

    def _insert_event(self, conn: psycopg.Connection[Any], values: tuple[Any, ...]) -> bool:
        """Inside a group-commit batch the entry is inserted alone and the head move left to the commit."""
        if not self._local.batched:
            return self._exec(conn, self.insert_new_event, values).fetchone() is not None
        inserted = self._exec(conn, _INSERT_NEW_EVENT, values).fetchone() is not None
        if inserted:
            self._local.head_move = (values[_TENANT], values[_EVENT_ID], values[-1])
        return inserted

    def _abandon(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("ROLLBACK")

    def _exec(self, conn: psycopg.Connection[Any], text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(_placeholders(text), tuple(params))

    def _exec_many(self, conn: psycopg.Connection[Any], text: str, rows: Iterable[Sequence[Any]]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(_placeholders(text), list(rows))

    @property
    def outbox_channel(self) -> str:
        """The NOTIFY channel that wakes an account's owner: one per schema; the payload is the JSON list
        ``[account, tenant, stanza id]`` of the accepted entry."""
        return outbox_channel(self.schema)

    def connect_listener(self) -> psycopg.Connection[Any]:
        """A connection of its own (autocommit) for LISTEN: notifications arrive between transactions."""
        return psycopg.connect(self._dsn, autocommit=True)

    def _notify(
        self, conn: psycopg.Connection[Any], account_ref: str, tenant_id: str, stanza_id: str
    ) -> None:
        payload = json.dumps([account_ref, tenant_id, stanza_id])
        conn.execute("SELECT pg_notify(%s, %s)", (self.outbox_channel, payload))

    def _broken(self, conn: psycopg.Connection[Any]) -> bool:
        return bool(conn.closed)

    def _lock_migrations(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"xmpp-connect:{self.schema}".encode()),)
        )

    def _reserve_feed(self, conn: psycopg.Connection[Any], count: int) -> tuple[int, Heads | None]:
        """The counter's head, unless this batch already appended: then its own pending move is newer."""
        row = self._exec(conn, _RESERVE_FEED, (count,)).fetchone()
        move = getattr(self._local, "head_move", None) if self._local.batched else None
        if move is not None:
            return int(row["last_value"]), None if move is _UNKNOWN else {move[0]: (move[1], move[2])}
        tenant = row["head_tenant"]
        if tenant is None:
            return int(row["last_value"]), None
        head = (row["head_event_id"], row["head_hash"]) if row["head_hash"] is not None else (None, GENESIS)
        return int(row["last_value"]), {tenant: head}

    def _bulk_chunk(self, chunk: list[EvidenceEvent]) -> int:
        """COPY instead of INSERT: bulk loads run an order of magnitude faster."""
        recorded_at = self.options.clock()
        with self._write() as conn:
            last = self._reserve_positions(conn, len(chunk))
            first = last - len(chunk) + 1
            copy = sql.SQL("COPY evidence_events ({}) FROM STDIN").format(
                sql.SQL(", ").join(map(sql.Identifier, CHAINED_COLUMNS))
            )
            rows = list(self._chained_rows(conn, chunk, first, recorded_at))
            with conn.cursor() as cursor, cursor.copy(copy) as writer:
                for row in rows:
                    writer.write_row(row)
            head = (rows[-1][_TENANT], rows[-1][_EVENT_ID], rows[-1][-1])
            if self._local.batched:
                self._local.head_move = head
            else:
                self._exec(conn, _MOVE_HEAD, head)
        return len(chunk)


def outbox_channel(schema: str) -> str:
    return f"xmpp_connect_outbox.{schema}"


@lru_cache(maxsize=512)
def _placeholders(text: str) -> str:
    """``?`` placeholders (shared SQL) -> psycopg's ``%s``."""
    return text.replace("?", "%s")
