"""Chaining evidence rows as they are appended: each row gets its entry hash and the tenant's chain hash.

The chain follows feed order. Appends already take the ``evidence_feed`` counter row (locked until commit),
so the tenant's previous row, read after taking it, is the one committed last: the chain adds no lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any

from xmpp_connect.model.chain import (
    CHAIN_COLUMNS,
    GENESIS,
    entry_digest,
    link,
    personal_digest,
)
from xmpp_connect.store.rows import EVENT_COLUMNS

CHAINED_COLUMNS = EVENT_COLUMNS + CHAIN_COLUMNS
INSERT_CHAINED = (
    f"INSERT INTO evidence_events ({', '.join(CHAINED_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in CHAINED_COLUMNS)})"
)
_HEAD = "SELECT event_id, chain_hash FROM evidence_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1"
_RAW_DIGEST = "SELECT content_sha256 FROM raw_events WHERE tenant_id = ? AND raw_event_id = ?"

Query = Callable[[str, Sequence[Any]], Any]


class ChainLinker:
    """Chain values for the rows of one write scope; tenant heads are read once, then advanced in memory."""

    def __init__(self, query: Query) -> None:
        self._query = query
        self._heads: dict[str, tuple[str | None, str]] = {}
        self._raw: dict[tuple[str, str], str | None] = {}

    def values(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The chain columns for an event row (``event_row`` order); call ``advance`` once it is inserted."""
        fields = dict(zip(EVENT_COLUMNS, row, strict=True))
        tenant_id = fields["tenant_id"]
        prev_event_id, prev_chain = self._head(tenant_id)
        raw_ref = fields["raw_ref"]
        fields["raw_sha256"] = self._raw_digest(tenant_id, raw_ref) if raw_ref else None
        salt = secrets.token_hex(16)
        fields["personal_sha256"] = personal_digest(salt, fields)
        fields["prev_event_id"] = prev_event_id
        entry_hash = entry_digest(fields)
        return (
            fields["raw_sha256"],
            salt,
            fields["personal_sha256"],
            prev_event_id,
            entry_hash,
            link(prev_chain, entry_hash),
        )

    def advance(self, tenant_id: str, event_id: str, chain: tuple[Any, ...]) -> None:
        self._heads[tenant_id] = (event_id, chain[-1])

    def _head(self, tenant_id: str) -> tuple[str | None, str]:
        head = self._heads.get(tenant_id)
        if head is None:
            row = self._query(_HEAD, (tenant_id,)).fetchone()
            if row is None or row["chain_hash"] is None:
                head = (None, GENESIS)
            else:
                head = (row["event_id"], row["chain_hash"])
            self._heads[tenant_id] = head
        return head

    def _raw_digest(self, tenant_id: str, raw_ref: str) -> str | None:
        key = (tenant_id, raw_ref)
        if key not in self._raw:
            row = self._query(_RAW_DIGEST, key).fetchone()
            self._raw[key] = row["content_sha256"] if row else None
        return self._raw[key]
