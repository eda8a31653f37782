"""Chaining evidence rows as they are appended: each row gets its entry hash and the tenant's chain hash.

The chain follows feed order. Appends already take the ``evidence_feed`` counter row (locked until commit),
so the tenant's previous row, read after taking it, is the one committed last: the chain adds no lock.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

import orjson

from xmpp_connect.model.chain import (
    CHAIN_COLUMNS,
    CHAIN_FORMAT,
    CONTENT_COLUMNS,
    GENESIS,
    PERSONAL_COLUMNS,
    SCALARS,
    canonical_json,
)
from xmpp_connect.store.rows import EVENT_COLUMNS

CHAINED_COLUMNS = EVENT_COLUMNS + CHAIN_COLUMNS
INSERT_CHAINED = (
    f"INSERT INTO evidence_events ({', '.join(CHAINED_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in CHAINED_COLUMNS)})"
)
_INDEX = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_TENANT, _RAW_REF = _INDEX["tenant_id"], _INDEX["raw_ref"]
_EXTENDED = {
    name: i
    for i, name in enumerate(("format", "raw_sha256", "prev_event_id", *EVENT_COLUMNS, "personal_sha256"))
}
"""An extended row: the format, the raw stanza's digest and the previous entry's id, the row, then the
personal digest (appended once it is computed)."""
_PERSONAL = itemgetter(*(_EXTENDED[name] for name in PERSONAL_COLUMNS))
_CONTENT = itemgetter(_EXTENDED["format"], *(_EXTENDED[name] for name in CONTENT_COLUMNS))
"""The format and the content columns, from an extended row."""
_PERSONAL_LAYOUT = bytes(_EXTENDED[name] for name in PERSONAL_COLUMNS)
_CONTENT_LAYOUT = bytes(
    255 if name == "personal_sha256" else _EXTENDED[name] for name in ("format", *CONTENT_COLUMNS)
)
"""The personal columns, and the format and the content columns, as indexes into an extended row for the
compiled entry (255: the personal digest, which it computes first)."""
_HEAD = "SELECT event_id, chain_hash FROM evidence_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1"
_RAW_DIGEST = "SELECT content_sha256 FROM raw_events WHERE tenant_id = ? AND raw_event_id = ?"

Query = Callable[[str, Sequence[Any]], Any]


RawKey = tuple[str, str]
"""(tenant id, raw event id)"""
RawDigests = Callable[[RawKey], str | None]
"""The content digest of a raw stanza this store recorded lately, or None."""
Heads = dict[str, tuple[str | None, str]]
"""tenant id -> (event id, chain hash) of its last chained entry."""


class ChainLinker:
    """Chain values for the rows of one write scope; tenant heads are read once (unless ``heads`` already
    holds them), then advanced in memory."""

    def __init__(self, query: Query, heads: Heads | None = None, recent_raw: RawDigests | None = None):
        self._query = query
        self.heads: Heads = dict(heads or {})
        self._raw: dict[RawKey, str | None] = {}
        self._recent_raw = recent_raw or _nothing_recent
        self._last_chain: tuple[str | None, bytes] = (None, b"")
        """The hex and the bytes of the last chain hash ``values`` gave (the next one links its bytes)."""

    def values(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The chain columns for an event row (``event_row`` order); call ``advance`` once it is inserted.

        The values model/chain.py's ``personal_digest``, ``entry_digest`` and ``link`` give, with less work
        per entry: salts taken from blocks of random bytes, then the compiled entry (type check, canonical
        JSON and the three digests in one call); what it declines, or every row where it is not built, the
        interpreted path: the row's types checked once for both digests' canonical JSON (orjson writes it;
        anything else takes ``canonical_json``), the digests linked as bytes.
        """
        tenant_id = row[_TENANT]
        prev_event_id, prev_chain = self.heads.get(tenant_id) or self._head(tenant_id)
        raw_ref = row[_RAW_REF]
        raw_sha256 = self._raw_digest(tenant_id, raw_ref) if raw_ref else None
        salt, salt_hex = _take_salt()
        if _compiled_entry is not None:
            chained = _compiled_entry(
                CHAIN_FORMAT,
                _PERSONAL_LAYOUT,
                _CONTENT_LAYOUT,
                salt,
                salt_hex,
                prev_chain,
                row,
                raw_sha256,
                prev_event_id,
            )
            if chained is not None:
                return chained
        extended = [CHAIN_FORMAT, raw_sha256, prev_event_id, *row]
        encode = _dumps if SCALARS.issuperset(map(type, extended)) else canonical_json
        personal = _sha256(salt + encode(_PERSONAL(extended))).hexdigest()
        extended.append(personal)
        entry = _sha256(encode(_CONTENT(extended))).digest()
        last_hex, last_digest = self._last_chain
        prev = last_digest if prev_chain is last_hex else bytes.fromhex(prev_chain)
        chain = _sha256(prev + entry).digest()
        chain_hex = chain.hex()
        self._last_chain = (chain_hex, chain)
        return (raw_sha256, salt_hex, personal, prev_event_id, entry.hex(), chain_hex)

    def advance(self, tenant_id: str, event_id: str, chain: tuple[Any, ...]) -> None:
        self.heads[tenant_id] = (event_id, chain[-1])

    def _head(self, tenant_id: str) -> tuple[str | None, str]:
        head = self.heads.get(tenant_id)
        if head is None:
            row = self._query(_HEAD, (tenant_id,)).fetchone()
            if row is None or row["chain_hash"] is None:
                head = (None, GENESIS)
            else:
                head = (row["event_id"], row["chain_hash"])
            self.heads[tenant_id] = head
        return head

    def _raw_digest(self, tenant_id: str, raw_ref: str) -> str | None:
        key = (tenant_id, raw_ref)
        recent = self._recent_raw(key)
        if recent is not None:
            return recent
        if key not in self._raw:
            row = self._query(_RAW_DIGEST, key).fetchone()
            self._raw[key] = row["content_sha256"] if row else None
        return self._raw[key]


def _nothing_recent(_key: RawKey) -> None:
    return None


_sha256 = hashlib.sha256


def _compiled() -> Callable[..., tuple[Any, ...] | None] | None:
    """The compiled entry (store/_chain_entry.c), or None in a checkout run without ``pip install -e .``
    (hatch_build.py compiles it; an install fails if it cannot)."""
    try:
        from xmpp_connect.store._chain_entry import entry
    except ImportError:
        return None
    return entry


_compiled_entry = _compiled()
COMPILED = _compiled_entry is not None
"""Whether this process links entries through the compiled module."""


class SaltSource:
    """16-byte salts sliced from blocks of os.urandom output: one system call per ``block`` salts, not one
    per entry. Each salt is handed out once, also across threads (taking the next pair from the block's
    iterator is one step under the interpreter's lock) and across a fork (the child draws a block of its
    own), so no salt tells anything about another. A block's salts and hexes are cut in one call each."""

    def __init__(self, block: int = 256) -> None:
        if block < 2:
            raise ValueError("a block holds at least two salts")  # one slice would not give a tuple
        self._size = 16 * block
        self._salts = itemgetter(*(slice(i, i + 16) for i in range(0, self._size, 16)))
        self._hexes = itemgetter(*(slice(2 * i, 2 * i + 32) for i in range(0, self._size, 16)))
        self._pairs: Iterator[tuple[bytes, str]] = iter(())
        os.register_at_fork(after_in_child=self._discard)

    def take(self) -> tuple[bytes, str]:
        """A salt and its hex."""
        pair = next(self._pairs, None)
        while pair is None:
            raw = os.urandom(self._size)
            self._pairs = zip(self._salts(raw), self._hexes(raw.hex()), strict=True)
            pair = next(self._pairs, None)
        return pair

    def _discard(self) -> None:
        self._pairs = iter(())


SALTS = SaltSource()
"""The salts of every chain entry this process appends."""
_take_salt = SALTS.take
_dumps = orjson.dumps
