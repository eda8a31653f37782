"""The evidence store: records, the append-only evidence log, idempotency, timers (SQLite or PostgreSQL).

Synchronous (sqlite3 / psycopg connections, one per thread). ``transaction()`` groups the writes of one
action; ``enable_group_commit(loop)`` makes the writes of one event-loop iteration share a commit, and
whoever acknowledges a write awaits ``durable()`` first.
"""

from __future__ import annotations

from pathlib import Path

from xmpp_connect.store.base import EvidenceStore
from xmpp_connect.store.connection import StoreOptions
from xmpp_connect.store.errors import IdempotencyConflict, InvalidCursor, NotFound, StoreError
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.quality import EndpointQuality
from xmpp_connect.store.sqlite import SqliteStore

__all__ = [
    "EndpointQuality",
    "EvidenceStore",
    "IdempotencyConflict",
    "InvalidCursor",
    "NotFound",
    "PostgresStore",
    "SqliteStore",
    "StoreError",
    "StoreOptions",
    "open_store",
]


def open_store(
    kind: str,
    *,
    path: str | Path | None = None,
    dsn: str | None = None,
    schema: str = "public",
    options: StoreOptions | None = None,
) -> EvidenceStore:
    """Open (and migrate) the configured backend: ``sqlite`` with ``path`` or ``postgres`` with ``dsn``."""
    if kind == "sqlite":
        if path is None:
            raise ValueError("sqlite store needs a path")
        return SqliteStore(path, options)
    if kind == "postgres":
        if dsn is None:
            raise ValueError("postgres store needs a dsn")
        return PostgresStore(dsn, options, schema=schema)
    raise ValueError(f"unknown store kind: {kind!r}")
