"""Persisted due timers: scheduling, leased claiming, firing marks, lateness."""

from __future__ import annotations

from datetime import datetime, timedelta

from xmpp_connect.store import idempotency
from xmpp_connect.store.connection import SqlBase, StoreOptions
from xmpp_connect.store.recent import Recent
from xmpp_connect.store.records import (
    LATE_AFTER_TIMERS,
    TIMER_KINDS,
    Timer,
)
from xmpp_connect.store.rows import check_allowed, timer_from_row
from xmpp_connect.store.timestamps import from_text, from_text_or_none, to_text

NEXT_DUE_WINDOW = 64
"""Pending timers ``next_due_at`` reads in due order before it aggregates them all instead."""


class TimerTable(SqlBase):
    """Timer rows; xmpp_connect.sending.timers fires them."""

    fired_only_here = False
    """True where the one service on the store is the only one to claim and fire its timers (SQLite): a
    message created by it has then fired no lateness timer until one is claimed here."""

    def __init__(self, options: StoreOptions) -> None:
        super().__init__(options)
        self._not_late: Recent[tuple[str, str], bool] = Recent()
        """(tenant, message id) of messages created here (``fired_only_here``) none of whose lateness
        timers was claimed since: evidence about them is not late, known without a read."""

    def timers_start_here(self, tenant_id: str, message_id: str) -> None:
        """The message was just created by this process, so no timer of it has fired yet."""
        if self.fired_only_here:
            self._not_late.put((tenant_id, message_id), True)

    def schedule_timer(
        self,
        tenant_id: str,
        message_id: str,
        timer: str,
        due_at: datetime,
        attempt_id: str | None = None,
    ) -> Timer:
        """One timer per message and kind; rescheduling moves a pending one, a fired one stays fired."""
        check_allowed(timer, TIMER_KINDS, "timer")
        timer_id = idempotency.timer_id(tenant_id, message_id, timer)
        due_text = to_text(due_at)
        params = (timer_id, tenant_id, message_id, attempt_id, timer, due_text, to_text(self.options.clock()))
        with self._write() as conn:
            # A new timer (a send's first) is inserted without ``RETURNING`` (which costs SQLite more than
            # the insert): the row is what was given. One there already is moved by the upsert, if pending.
            inserted = self._exec(
                conn,
                "INSERT INTO timers (timer_id, tenant_id, message_id, attempt_id, timer, due_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, message_id, timer) DO NOTHING",
                params,
            ).rowcount
            if inserted:
                return Timer(tenant_id, timer_id, message_id, timer, from_text(due_text), attempt_id)
            row = self._exec(
                conn,
                "INSERT INTO timers (timer_id, tenant_id, message_id, attempt_id, timer, due_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, message_id, timer) DO UPDATE SET"
                " due_at = excluded.due_at, attempt_id = excluded.attempt_id WHERE timers.fired_at IS NULL"
                " RETURNING *",
                params,
            ).fetchone()
            # A fired timer is left as it was: read it back (inside the write scope, so the batch stays open).
            row = row or self._exec(conn, "SELECT * FROM timers WHERE timer_id = ?", (timer_id,)).fetchone()
        assert row is not None
        return timer_from_row(row)

    def cancel_timer(self, tenant_id: str, message_id: str, timer: str) -> bool:
        """Drop a pending timer (e.g. the receipt came); False if none was pending."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "DELETE FROM timers WHERE tenant_id = ? AND message_id = ? AND timer = ? AND fired_at IS NULL"
                " RETURNING timer_id",
                (tenant_id, message_id, timer),
            ).fetchone()
        return row is not None

    def claim_due_timers(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Timer]:
        """Lease due timers to this caller (across tenants); a lease that expires unfired is claimable again,
        so a crash between claim and fire loses nothing."""
        text = to_text(now)
        with self._write() as conn:
            rows = self._exec(
                conn,
                "UPDATE timers SET lease_until = ? WHERE timer_id IN (SELECT timer_id FROM timers"
                " WHERE fired_at IS NULL AND due_at <= ? AND (lease_until IS NULL OR lease_until < ?)"
                " ORDER BY due_at LIMIT ?) AND fired_at IS NULL AND (lease_until IS NULL OR lease_until < ?)"
                " RETURNING *",
                (to_text(now + lease), text, text, limit, text),
            ).fetchall()
        claimed = sorted((timer_from_row(row) for row in rows), key=lambda t: (t.due_at, t.timer_id))
        for timer in claimed:
            if timer.timer in LATE_AFTER_TIMERS:
                # It may fire from now on: lateness is read again.
                self._not_late.pop((timer.tenant_id, timer.message_id))
        return claimed

    def mark_timer_fired(self, timer_id: str, fired_at: datetime) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE timers SET fired_at = ?, lease_until = NULL WHERE timer_id = ? AND fired_at IS NULL",
                (to_text(fired_at), timer_id),
            )

    def next_due_at(self) -> datetime | None:
        """When the next pending timer can be claimed (across tenants): its due time, or the end of
        its lease while another claimer holds it. Read in due order along the pending index, stopping at
        the first due time no earlier than the best found (a lease only moves a time later), instead of
        aggregating every pending timer; the aggregate only when a whole window of them is leased."""
        rows = self._all(
            "SELECT due_at, lease_until FROM timers WHERE fired_at IS NULL ORDER BY due_at LIMIT ?",
            (NEXT_DUE_WINDOW,),
        )
        best: str | None = None
        for row in rows:
            due, lease = row["due_at"], row["lease_until"]
            if best is not None and due >= best:
                return from_text(best)
            at = lease if lease is not None and lease > due else due
            best = at if best is None or at < best else best
        if len(rows) < NEXT_DUE_WINDOW:
            return from_text_or_none(best)
        found = self._one(
            "SELECT MIN(CASE WHEN lease_until > due_at THEN lease_until ELSE due_at END) AS due"
            " FROM timers WHERE fired_at IS NULL"
        )
        return from_text_or_none(found["due"]) if found else None

    def timers_for_message(self, tenant_id: str, message_id: str) -> list[Timer]:
        rows = self._all(
            "SELECT * FROM timers WHERE tenant_id = ? AND message_id = ? ORDER BY due_at",
            (tenant_id, message_id),
        )
        return [timer_from_row(row) for row in rows]

    def is_late(self, tenant_id: str, message_id: str) -> bool:
        """Evidence for this message arriving now is late: its receipt timeout or expiry already fired
        (§29)."""
        if self._not_late.get((tenant_id, message_id)):
            return False
        kinds = sorted(LATE_AFTER_TIMERS)
        row = self._one(
            "SELECT COUNT(*) AS n FROM timers WHERE tenant_id = ? AND message_id = ? AND fired_at IS NOT NULL"
            f" AND timer IN ({', '.join('?' for _ in kinds)})",
            (tenant_id, message_id, *kinds),
        )
        return bool(row and row["n"])
