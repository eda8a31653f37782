"""The service's scheduled sends (the actions' PendingSends) kept in the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from xmpp_connect.store.sql import SqlStore


class ScheduledSends:
    """The actions' PendingSends over the store: a held request and its ``scheduled_send`` timer live in the
    store, so they survive a restart and are shared by replicas, and one replica takes a request out."""

    def __init__(self, store: SqlStore, timer_scheduled: Callable[[], None]) -> None:
        self.store = store
        self.holds_bodies = not store.options.metadata_only
        self._timer_scheduled = timer_scheduled

    def hold(
        self,
        tenant_id: str,
        operation_id: str,
        message_id: str,
        request: Mapping[str, Any],
        send_at: datetime,
    ) -> None:
        self.store.hold_request(tenant_id, operation_id, message_id, request, send_at)
        self._timer_scheduled()

    def release(self, tenant_id: str, operation_id: str) -> dict[str, Any] | None:
        held = self.store.release_held_request(tenant_id, operation_id)
        return dict(held.request) if held else None

    def cancel(self, tenant_id: str, operation_id: str) -> bool:
        return self.store.cancel_held_request(tenant_id, operation_id)
