"""The append-only evidence log and the event feed over it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store.chain import INSERT_CHAINED, ChainLinker, Heads
from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.cursor import decode_cursor, encode_cursor
from xmpp_connect.store.errors import InvalidCursor
from xmpp_connect.store.records import (
    AppendResult,
    EventPage,
)
from xmpp_connect.store.rows import event_row, evidence_from_row, where_equal
from xmpp_connect.store.timestamps import to_text

# Only an event id already in the log is a duplicate: a clash of feed positions must raise, not be skipped.
_INSERT_NEW_EVENT = INSERT_CHAINED + " ON CONFLICT (tenant_id, event_id) DO NOTHING"


class EvidenceLog(SqlBase):
    """Append-once evidence entries; reads by message, endpoint and the cursor-paged feed."""

    insert_new_event = _INSERT_NEW_EVENT
    """Inserts one chained row unless its event id is in the log already (the count of rows changed says
    which: nothing returned to fetch)."""
    chain_linker: type[ChainLinker] = ChainLinker
    """Computes each appended row's chain columns (bench/store.py swaps it to measure the chain's cost)."""
    _chain_cache: tuple[int, Heads] | None = None
    """The feed position after this store's last append and the tenant heads it left. Valid while the
    next append's first position follows it: then nobody else appended in between (every append takes
    positions from the locked counter, and a rolled-back one either returns them or clears this)."""

    def append_evidence(self, events: Sequence[EvidenceEvent]) -> AppendResult:
        """Append events once each: an event id already in the log (a duplicate observation) is skipped.

        Feed positions come from the ``evidence_feed`` counter inside the transaction, so they become
        visible in commit order. The insert itself tells a duplicate (no lookup first); the position it
        was given stays unused, a gap in the feed. Each stored entry extends its tenant's hash chain
        (store/chain.py) in that same order.
        """
        if not events:
            return AppendResult((), ())
        recorded_at = self.options.clock()
        recorded_text = to_text(recorded_at)
        stored: list[EvidenceEvent] = []
        fresh, duplicates = _first_of_each(events)
        with self._write() as conn:
            last, counter_head = self._reserve_feed(conn, len(fresh))
            first = last - len(fresh) + 1
            cache, self._chain_cache = self._chain_cache, None
            known = cache[1] if cache is not None and cache[0] == first - 1 else counter_head
            linker = self.chain_linker(
                lambda sql, params: self._exec(conn, sql, params), known, self._raw_digests.get
            )
            for offset, event in enumerate(fresh):
                placed = event.placed(first + offset, recorded_at)
                row = event_row(placed, recorded_text)
                chain = linker.values(row)
                if not self._insert_event(conn, row + chain):
                    duplicates.append(event.event_id)
                else:
                    linker.advance(event.tenant_id, event.event_id, chain)
                    stored.append(placed)
            self._before_commit(conn)
            self._chain_cache = (last, linker.heads)
        if log.isEnabledFor(logging.DEBUG):
            for event in stored:
                log.debug(
                    "evidence appended event_type=%s subclass=%s message_id=%s late=%s",
                    event.event_type,
                    event.assessment.subclass,
                    event.message_id,
                    event.late,
                )
        if duplicates:
            log.info("duplicate evidence ignored count=%d", len(duplicates))
        return AppendResult(tuple(stored), tuple(duplicates))

    def bulk_append(self, events: Iterable[EvidenceEvent], batch: int = 10_000) -> int:
        """Append many events quickly (imports, benchmarks); duplicates are not checked. Returns the count."""
        count = 0
        chunk: list[EvidenceEvent] = []
        for event in events:
            chunk.append(event)
            if len(chunk) >= batch:
                count += self._bulk_chunk(chunk)
                chunk = []
        if chunk:
            count += self._bulk_chunk(chunk)
        return count

    def _bulk_chunk(self, chunk: list[EvidenceEvent]) -> int:
        recorded_at = self.options.clock()
        with self._write() as conn:
            last = self._reserve_positions(conn, len(chunk))
            first = last - len(chunk) + 1
            rows = list(self._chained_rows(conn, chunk, first, recorded_at))  # its reads before the insert
            self._exec_many(conn, INSERT_CHAINED, rows)
        return len(chunk)

    def _chained_rows(
        self, conn: Any, chunk: list[EvidenceEvent], first: int, recorded_at: datetime
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of a bulk chunk with their chain columns, in position order."""
        linker = self.chain_linker(lambda sql, params: self._exec(conn, sql, params))
        for offset, event in enumerate(chunk):
            row = event_row(event.placed(first + offset, recorded_at))
            chain = linker.values(row)
            linker.advance(event.tenant_id, event.event_id, chain)
            yield row + chain

    def _insert_event(self, conn: Any, values: tuple[Any, ...]) -> bool:
        """Insert a chained row (``CHAINED_COLUMNS`` order) unless its event id is in the log already;
        whether it was inserted."""
        return bool(self._exec(conn, self.insert_new_event, values).rowcount > 0)

    def _reserve_feed(self, conn: Any, count: int) -> tuple[int, Heads | None]:
        """Take ``count`` feed positions (the last is returned); where the backend keeps the chain head
        beside the feed counter, also the head of the tenant that appended last (else None)."""
        return self._reserve_positions(conn, count), None

    def _rolled_back(self) -> None:
        """A write scope was rolled back: rows this store appended may be gone, so forget the heads."""
        self._chain_cache = None

    def _before_commit(self, conn: Any) -> None:
        """Hook between inserting events and committing (tests widen this window to provoke races)."""

    def get_event(self, tenant_id: str, event_id: str) -> EvidenceEvent | None:
        row = self._one(
            "SELECT * FROM evidence_events WHERE tenant_id = ? AND event_id = ?", (tenant_id, event_id)
        )
        return evidence_from_row(row) if row else None

    def evidence_for_message(
        self, tenant_id: str, message_id: str, participant_id: str | None = None
    ) -> list[EvidenceEvent]:
        """The message's log in append order (lifecycle.timeline orders it by event time)."""
        where, params = evidence_where(tenant_id, message_id, participant_id=participant_id)
        rows = self._all(f"SELECT * FROM evidence_events WHERE {where} ORDER BY seq", params)
        return [evidence_from_row(row) for row in rows]

    def evidence_for_endpoint(self, tenant_id: str, endpoint: str) -> list[EvidenceEvent]:
        """The log of one endpoint (by endpoint ref) in append order."""
        rows = self._all(
            "SELECT * FROM evidence_events WHERE tenant_id = ? AND endpoint_ref = ? ORDER BY seq",
            (tenant_id, endpoint),
        )
        return [evidence_from_row(row) for row in rows]

    def events_page(
        self,
        tenant_id: str,
        *,
        cursor: str | None = None,
        limit: int = 100,
        case_id: str | None = None,
        participant_id: str | None = None,
        message_id: str | None = None,
        event_types: Sequence[str] | None = None,
        include_internal: bool = False,
    ) -> EventPage:
        """The event feed (``GET /adapter/events``): events after the cursor in feed order.

        Paging with ``next_cursor`` while events are being appended neither skips nor repeats one.
        Internal entries (no normalized event type) are left out unless asked for.
        """
        if limit < 1:
            raise InvalidCursor("limit must be positive")
        after = decode_cursor(cursor)
        where, params = evidence_where(tenant_id, message_id, case_id=case_id, participant_id=participant_id)
        if event_types:
            where += f" AND event_type IN ({', '.join('?' for _ in event_types)})"
            params = [*params, *event_types]
        if not include_internal:
            where += " AND emitted = 1"
        rows = self._all(
            f"SELECT * FROM evidence_events WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
            [*params, after, limit],
        )
        events = tuple(evidence_from_row(row) for row in rows)
        next_position = events[-1].seq if events else after
        return EventPage(events, encode_cursor(next_position or 0))


def _first_of_each(events: Sequence[EvidenceEvent]) -> tuple[Sequence[EvidenceEvent], list[str]]:
    """The events to insert (the first of each event id) and the ids repeated within ``events``."""
    if len(events) == 1:
        return events, []
    fresh: list[EvidenceEvent] = []
    duplicates: list[str] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        if (event.tenant_id, event.event_id) in seen:
            duplicates.append(event.event_id)
        else:
            seen.add((event.tenant_id, event.event_id))
            fresh.append(event)
    return fresh, duplicates


def evidence_where(tenant_id: str, message_id: str | None, **others: str | None) -> tuple[str, list[Any]]:
    """``where_equal`` for evidence_events, searching ``evidence_by_message`` whenever a message is given.

    Without statistics SQLite cannot tell the (tenant, x, seq) indexes apart and may read a whole case or
    participant for one message's entries; ``column || ''`` (the same rows, valid in both dialects) keeps
    the other selectors off their indexes.
    """
    where, params = where_equal(tenant_id, message_id=message_id)
    for column, value in others.items():
        if value is not None:
            where += f" AND {column} || '' = ?" if message_id is not None else f" AND {column} = ?"
            params.append(value)
    return where, params
