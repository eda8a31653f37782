"""The outbox: each accepted message send and how far it got (accepted -> written -> server_acked).

A row is keyed by tenant and stanza id and carries the account, so one account's outbox can be handed to
another replica. States only move forward; an end state (``unknown``, ``expired``, ``not_sent``) is final.
See spec/outbox.md for how the states map to the §10 attempt states.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from xmpp_connect.store.connection import SqlBase, StoreOptions
from xmpp_connect.store.plain_json import ascii_json
from xmpp_connect.store.recent import Recent
from xmpp_connect.store.rows import Row
from xmpp_connect.store.timestamps import from_text, from_text_or_none, to_text

OUTBOX_ORDER = "outbox_order"
ACCEPTED, WRITTEN, SERVER_ACKED = "accepted", "written", "server_acked"
UNKNOWN, EXPIRED, NOT_SENT = "unknown", "expired", "not_sent"
OPEN_STATES = (ACCEPTED, WRITTEN)
"""States of a send the outbox still owes something (a write, or a server ack) while no end reason is set."""
OPEN_ROWS = "state IN ('accepted', 'written') AND ended_reason IS NULL"
"""The open sends, as the ``outbox_open`` index's WHERE clause says it (migration 10): a query uses that
partial index only when its WHERE clause contains this text (literals, not parameters)."""
BODY_FIELD = "content"


@dataclass(frozen=True)
class OutboxEntry:
    """One send in the outbox. ``request`` is the action request (without its body in metadata-only mode,
    then ``body`` is None and the send cannot be written again after a restart); ``attempt_id`` is the
    current attempt, ``writes`` how many attempts were handed to the transport."""

    tenant_id: str
    stanza_id: str
    account_ref: str
    message_id: str
    attempt_id: str
    state: str
    request: Mapping[str, Any]
    body: str | None
    accepted_at: datetime
    seq: int = 0
    written_at: datetime | None = None
    acked_at: datetime | None = None
    ended_reason: str | None = None
    writes: int = 0
    held: bool = False
    handed_at: datetime | None = None

    @property
    def resendable(self) -> bool:
        return self.body is not None


class Written(NamedTuple):
    """A send moved to ``written``: its current attempt, how many were written, the stored request's JSON
    (parsed only by who needs it)."""

    message_id: str
    attempt_id: str
    writes: int
    request_json: str
    state: str = WRITTEN


class _Kept(NamedTuple):
    """What ``outbox_written`` answers besides the state, as this process last wrote it."""

    message_id: str
    attempt_id: str
    writes: int
    request_json: str


class OutboxRecords(SqlBase):
    """The outbox table."""

    outbox_only_here = False
    """True where the one service on the store is the only writer of its outbox (SQLite): the rows it
    accepted are then known in memory, and moving one to ``written`` needs no ``RETURNING``."""

    def __init__(self, options: StoreOptions) -> None:
        super().__init__(options)
        self._kept: Recent[tuple[str, str], _Kept] = Recent()
        """(tenant, stanza id) -> the open sends this process accepted lately (``outbox_only_here``), with
        their current attempt, writes and stored request."""

    def _forget_recent(self) -> None:
        super()._forget_recent()
        self._kept.clear()

    def outbox_accept(self, entry: OutboxEntry) -> OutboxEntry:
        """Put an accepted send into the outbox (again: keeps the first); returns the stored entry."""
        body_kept = not self.options.metadata_only
        request = {k: v for k, v in entry.request.items() if body_kept or k != BODY_FIELD}
        request_json = ascii_json(request)
        with self._write() as conn:
            seq = self._reserve_positions(conn, 1, OUTBOX_ORDER)
            # The rows changed tell an insert from a key stored before (``RETURNING`` would cost SQLite more
            # than the insert's own work); the stored position is the one reserved.
            inserted = self._exec(
                conn,
                "INSERT INTO outbox (tenant_id, stanza_id, account_ref, seq, message_id, attempt_id, state,"
                " request, body, accepted_at, writes, held, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (tenant_id, stanza_id) DO NOTHING",
                (
                    entry.tenant_id,
                    entry.stanza_id,
                    entry.account_ref,
                    seq,
                    entry.message_id,
                    entry.attempt_id,
                    ACCEPTED,
                    request_json,
                    entry.body if body_kept else None,
                    to_text(entry.accepted_at),
                    int(entry.held),
                    to_text(self.options.clock()),
                ),
            ).rowcount > 0
            if inserted:
                # Any replica accepts; the account's owner is woken when this transaction commits.
                self._notify(conn, entry.account_ref, entry.tenant_id, entry.stanza_id)
        if inserted:
            if self.outbox_only_here:
                self._kept.put(
                    (entry.tenant_id, entry.stanza_id),
                    _Kept(entry.message_id, entry.attempt_id, 0, request_json),
                )
            # The entry as stored, built directly (``replace`` walks the 16 fields' definitions).
            return OutboxEntry(
                tenant_id=entry.tenant_id, stanza_id=entry.stanza_id, account_ref=entry.account_ref,
                message_id=entry.message_id, attempt_id=entry.attempt_id, state=ACCEPTED, request=request,
                body=entry.body if body_kept else None, accepted_at=entry.accepted_at, seq=seq,
                written_at=entry.written_at, acked_at=entry.acked_at, ended_reason=entry.ended_reason,
                writes=entry.writes, held=entry.held, handed_at=entry.handed_at,
            )
        found = self.outbox_entry(entry.tenant_id, entry.stanza_id)
        assert found is not None
        return found

    def outbox_entry(self, tenant_id: str, stanza_id: str) -> OutboxEntry | None:
        row = self._one("SELECT * FROM outbox WHERE tenant_id = ? AND stanza_id = ?", (tenant_id, stanza_id))
        return _entry(row) if row else None

    def outbox_written(self, tenant_id: str, stanza_id: str, at: datetime) -> Written | None:
        """``accepted`` -> ``written`` (the transport took the stanza); what the timers started at the write
        need when it moved, else None (already written or acked, ended, or not in the outbox)."""
        key = (tenant_id, stanza_id)
        kept = self._kept.get(key)
        if kept is not None:
            return self._written_kept(key, kept, at)
        with self._write() as conn:
            row = self._exec(
                conn,
                "UPDATE outbox SET state = ?, written_at = ?, writes = writes + 1, updated_at = ?"
                " WHERE tenant_id = ? AND stanza_id = ? AND state = ? AND ended_reason IS NULL"
                " RETURNING message_id, attempt_id, writes, request",
                (WRITTEN, to_text(at), to_text(self.options.clock()), tenant_id, stanza_id, ACCEPTED),
            ).fetchone()
        if row is None:
            return None
        return Written(row["message_id"], row["attempt_id"], int(row["writes"]), row["request"])

    def _written_kept(self, key: tuple[str, str], kept: _Kept, at: datetime) -> Written | None:
        """``outbox_written`` of a send this process accepted and alone writes: the same statement without
        ``RETURNING`` (which costs SQLite more than the update), the answer from memory."""
        with self._write() as conn:
            moved: int = self._exec(
                conn,
                "UPDATE outbox SET state = ?, written_at = ?, writes = writes + 1, updated_at = ?"
                " WHERE tenant_id = ? AND stanza_id = ? AND state = ? AND ended_reason IS NULL",
                (WRITTEN, to_text(at), to_text(self.options.clock()), *key, ACCEPTED),
            ).rowcount
        if not moved:
            return None
        self._kept.put(key, kept._replace(writes=kept.writes + 1))
        return Written(kept.message_id, kept.attempt_id, kept.writes + 1, kept.request_json)

    def outbox_acked(self, tenant_id: str, stanza_id: str, at: datetime) -> bool:
        """An open send -> ``server_acked`` (a XEP-0198 ack covers it); False when nothing moved."""
        with self._write() as conn:
            moved: int = self._exec(
                conn,
                "UPDATE outbox SET state = ?, acked_at = ?, updated_at = ?"
                " WHERE tenant_id = ? AND stanza_id = ? AND state IN (?, ?) AND ended_reason IS NULL",
                (SERVER_ACKED, to_text(at), to_text(self.options.clock()), tenant_id, stanza_id,
                 *OPEN_STATES),
            ).rowcount
        if moved:
            self._kept.pop((tenant_id, stanza_id))
        return moved > 0

    def outbox_handing(self, tenant_id: str, stanza_id: str, at: datetime) -> None:
        """An accepted send is about to be handed to a transport (commit this before the hand-over)."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE outbox SET handed_at = ? WHERE tenant_id = ? AND stanza_id = ? AND state = ?"
                " AND ended_reason IS NULL",
                (to_text(at), tenant_id, stanza_id, ACCEPTED),
            )

    def outbox_new_attempt(self, tenant_id: str, stanza_id: str, attempt_id: str) -> None:
        """The send goes out again as ``attempt_id``: back to ``accepted`` until that attempt is written."""
        with self._write() as conn:
            moved = self._exec(
                conn,
                "UPDATE outbox SET attempt_id = ?, state = ?, handed_at = NULL, updated_at = ?"
                " WHERE tenant_id = ? AND stanza_id = ? AND state IN (?, ?) AND ended_reason IS NULL",
                (attempt_id, ACCEPTED, to_text(self.options.clock()), tenant_id, stanza_id, *OPEN_STATES),
            ).rowcount
            kept = self._kept.get((tenant_id, stanza_id))
            if moved and kept is not None:
                self._kept.put((tenant_id, stanza_id), kept._replace(attempt_id=attempt_id))
            # Answers to the copy (receipts, markers, errors) correlate to the attempt that carried it.
            self._exec(
                conn,
                "UPDATE stanzas SET attempt_id = ? WHERE tenant_id = ? AND stanza_ref = ?",
                (attempt_id, tenant_id, stanza_id),
            )

    def outbox_hold(self, tenant_id: str, stanza_id: str, held: bool) -> None:
        """Mark an accepted send as held while the stream is down (or no longer held)."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE outbox SET held = ? WHERE tenant_id = ? AND stanza_id = ?",
                (int(held), tenant_id, stanza_id),
            )

    def outbox_end(self, tenant_id: str, stanza_id: str, state: str, reason: str) -> bool:
        """End an open send (``unknown``, ``expired``, ``not_sent``; ``written`` on a stream without acks);
        False when it was not open."""
        with self._write() as conn:
            moved: int = self._exec(
                conn,
                "UPDATE outbox SET state = ?, ended_reason = ?, held = 0, updated_at = ?"
                " WHERE tenant_id = ? AND stanza_id = ? AND state IN (?, ?) AND ended_reason IS NULL",
                (state, reason, to_text(self.options.clock()), tenant_id, stanza_id, *OPEN_STATES),
            ).rowcount
        if moved:
            self._kept.pop((tenant_id, stanza_id))
        return moved > 0

    def outbox_open(self, account_ref: str, limit: int = 10_000) -> list[OutboxEntry]:
        """The account's open sends in acceptance order (what a new session writes, or ends)."""
        rows = self._all(
            f"SELECT * FROM outbox WHERE account_ref = ? AND {OPEN_ROWS} ORDER BY seq LIMIT ?",
            (account_ref, limit),
        )
        return [_entry(row) for row in rows]

    def outbox_entry_for_message(self, tenant_id: str, message_id: str) -> OutboxEntry | None:
        row = self._one(
            "SELECT * FROM outbox WHERE tenant_id = ? AND message_id = ?", (tenant_id, message_id)
        )
        return _entry(row) if row else None


def _entry(row: Row) -> OutboxEntry:
    return OutboxEntry(
        tenant_id=row["tenant_id"],
        stanza_id=row["stanza_id"],
        account_ref=row["account_ref"],
        message_id=row["message_id"],
        attempt_id=row["attempt_id"],
        state=row["state"],
        request=json.loads(row["request"]),
        body=row["body"],
        accepted_at=from_text(row["accepted_at"]),
        seq=int(row["seq"]),
        written_at=from_text_or_none(row["written_at"]),
        acked_at=from_text_or_none(row["acked_at"]),
        ended_reason=row["ended_reason"],
        writes=int(row["writes"]),
        held=bool(row["held"]),
        handed_at=from_text_or_none(row["handed_at"]),
    )
