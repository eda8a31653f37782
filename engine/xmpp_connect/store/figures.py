"""Operational figures read at a metrics scrape: queue depths and ages, pending timers, the feed's tail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from xmpp_connect.store.connection import SqlBase
from xmpp_connect.store.timestamps import from_text_or_none


@dataclass(frozen=True)
class FeedEntry:
    """What a metric needs of one recorded event."""

    seq: int
    event_type: str
    category: str
    subclass: str


class OperationalFigures(SqlBase):
    def held_requests_figures(self) -> tuple[int, datetime | None]:
        """Scheduled sends held (all tenants) and the oldest one's creation time."""
        row = self._one("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM held_requests")
        return (int(row["n"]), from_text_or_none(row["oldest"])) if row else (0, None)

    def timers_pending(self) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM timers WHERE fired_at IS NULL")
        return int(row["n"]) if row else 0

    def feed_tail(self, after: int, limit: int = 1000) -> list[FeedEntry]:
        """Every tenant's emitted events after feed position ``after``, in feed order."""
        rows = self._all(
            "SELECT seq, event_type, category, subclass FROM evidence_events WHERE seq > ? AND emitted = 1"
            " ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [FeedEntry(int(r["seq"]), r["event_type"], r["category"], r["subclass"]) for r in rows]
