"""Webhook subscriptions, their delivery positions in the event feed and the deliveries that went dead."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from xmpp_connect.store.connection import Row, SqlBase
from xmpp_connect.store.timestamps import from_text, to_text

CONFIG_ORIGIN, API_ORIGIN = "config", "api"


@dataclass(frozen=True)
class WebhookSubscription:
    """``position``: the last feed position delivered (or given up); ``secret`` is None for a config-file
    subscription, whose secret stays in the config."""

    tenant_id: str
    subscription_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str | None
    origin: str
    position: int
    created_at: datetime


@dataclass(frozen=True)
class DeadDelivery:
    """An event the receiver never took: ``reason`` is ``gave_up`` (retries ran out) or ``refused`` (4xx)."""

    subscription_id: str
    event_id: str
    seq: int
    attempts: int
    reason: str
    last_status: int | None
    dead_at: datetime


def _subscription(row: Row) -> WebhookSubscription:
    return WebhookSubscription(
        row["tenant_id"],
        row["subscription_id"],
        row["url"],
        tuple(json.loads(row["event_types"])),
        row["secret"],
        row["origin"],
        int(row["position"]),
        from_text(row["created_at"]),
    )


class WebhookRecords(SqlBase):
    """Subscriptions per tenant; a position only moves forward, except when a redelivery is asked for."""

    def feed_end(self) -> int:
        """The last feed position in use (a new subscription starts after it)."""
        row = self._one("SELECT COALESCE(MAX(seq), 0) AS last FROM evidence_events")
        return int(row["last"]) if row else 0

    def add_webhook(
        self,
        tenant_id: str,
        subscription_id: str,
        url: str,
        event_types: Sequence[str],
        secret: str | None,
        origin: str,
    ) -> WebhookSubscription | None:
        """Create a subscription starting at the feed's end; None when the id is taken in this tenant."""
        created = self.options.clock()
        with self._write() as conn:
            inserted = self._exec(
                conn,
                "INSERT INTO webhook_subscriptions (tenant_id, subscription_id, url, event_types, secret,"
                " origin, position, created_at)"
                " SELECT ?, ?, ?, ?, ?, ?, COALESCE(MAX(seq), 0), ? FROM evidence_events"
                " WHERE true ON CONFLICT (tenant_id, subscription_id) DO NOTHING RETURNING position",
                (tenant_id, subscription_id, url, json.dumps(list(event_types)), secret, origin,
                 to_text(created)),
            ).fetchone()
        return None if inserted is None else self.get_webhook(tenant_id, subscription_id)

    def update_config_webhook(
        self, tenant_id: str, subscription_id: str, url: str, event_types: Sequence[str]
    ) -> None:
        """A config-file subscription seen again at start: its URL and types follow the file, its position
        is kept."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE webhook_subscriptions SET url = ?, event_types = ? WHERE tenant_id = ?"
                " AND subscription_id = ?",
                (url, json.dumps(list(event_types)), tenant_id, subscription_id),
            )

    def get_webhook(self, tenant_id: str, subscription_id: str) -> WebhookSubscription | None:
        row = self._one(
            "SELECT * FROM webhook_subscriptions WHERE tenant_id = ? AND subscription_id = ?",
            (tenant_id, subscription_id),
        )
        return _subscription(row) if row else None

    def list_webhooks(self, tenant_id: str | None = None) -> list[WebhookSubscription]:
        """A tenant's subscriptions (every tenant's with None), by id."""
        if tenant_id is None:
            rows = self._all("SELECT * FROM webhook_subscriptions ORDER BY tenant_id, subscription_id")
        else:
            rows = self._all(
                "SELECT * FROM webhook_subscriptions WHERE tenant_id = ? ORDER BY subscription_id",
                (tenant_id,),
            )
        return [_subscription(row) for row in rows]

    def delete_webhook(self, tenant_id: str, subscription_id: str) -> bool:
        with self._write() as conn:
            self._exec(
                conn,
                "DELETE FROM webhook_dead_deliveries WHERE tenant_id = ? AND subscription_id = ?",
                (tenant_id, subscription_id),
            )
            gone = self._exec(
                conn,
                "DELETE FROM webhook_subscriptions WHERE tenant_id = ? AND subscription_id = ?"
                " RETURNING subscription_id",
                (tenant_id, subscription_id),
            ).fetchone()
        return gone is not None

    def set_webhook_secret(self, tenant_id: str, subscription_id: str, secret: str) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE webhook_subscriptions SET secret = ? WHERE tenant_id = ? AND subscription_id = ?",
                (secret, tenant_id, subscription_id),
            )

    def advance_webhook(self, tenant_id: str, subscription_id: str, read: int, position: int) -> bool:
        """Record delivery up to ``position`` if the stored one is still ``read`` (the one the delivery
        started from): False after a redelivery rewound it, or once the subscription is gone."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "UPDATE webhook_subscriptions SET position = ? WHERE tenant_id = ? AND subscription_id = ?"
                " AND position = ? RETURNING position",
                (position, tenant_id, subscription_id, read),
            ).fetchone()
        return row is not None

    def rewind_webhook(self, tenant_id: str, subscription_id: str, position: int) -> None:
        """Deliver again everything after ``position`` (a receiver that lost data asked for it)."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE webhook_subscriptions SET position = ? WHERE tenant_id = ? AND subscription_id = ?",
                (position, tenant_id, subscription_id),
            )

    def add_dead_delivery(self, tenant_id: str, dead: DeadDelivery) -> None:
        """Keep an event the receiver never took; recording it again (after a redelivery) replaces it."""
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO webhook_dead_deliveries (tenant_id, subscription_id, event_id, seq, attempts,"
                " reason, last_status, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, subscription_id, event_id) DO UPDATE SET"
                " attempts = excluded.attempts, reason = excluded.reason,"
                " last_status = excluded.last_status, dead_at = excluded.dead_at",
                (tenant_id, dead.subscription_id, dead.event_id, dead.seq, dead.attempts, dead.reason,
                 dead.last_status, to_text(dead.dead_at)),
            )

    def dead_deliveries(self, tenant_id: str, subscription_id: str, limit: int = 500) -> list[DeadDelivery]:
        """A subscription's dead deliveries in feed order."""
        rows = self._all(
            "SELECT * FROM webhook_dead_deliveries WHERE tenant_id = ? AND subscription_id = ?"
            " ORDER BY seq LIMIT ?",
            (tenant_id, subscription_id, limit),
        )
        return [
            DeadDelivery(row["subscription_id"], row["event_id"], int(row["seq"]), int(row["attempts"]),
                         row["reason"], row["last_status"], from_text(row["dead_at"]))
            for row in rows
        ]
