"""Scheduled sends (notification.schedule): the held request and its ``scheduled_send`` timer.

Taking a request out (``release_held_request`` to send it, ``cancel_held_request`` to drop it) deletes its
row, and a row is deleted once: of several replicas on one PostgreSQL store, exactly one gets the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from xmpp_connect.store.connection import log
from xmpp_connect.store.records import HeldRequest
from xmpp_connect.store.rows import Row, to_json
from xmpp_connect.store.timer_table import TimerTable
from xmpp_connect.store.timestamps import from_text, to_text

SCHEDULED_SEND = "scheduled_send"
BODY_FIELD = "content"
"""The request field that carries the message body (a template request carries none)."""


class HeldRequests(TimerTable):
    """The held_requests table; the due time is a ``scheduled_send`` timer of the request's message."""

    def hold_request(
        self,
        tenant_id: str,
        operation_id: str,
        message_id: str,
        request: Mapping[str, Any],
        send_at: datetime,
    ) -> HeldRequest:
        """Hold a request until ``send_at`` (holding it again keeps the first). Metadata-only mode stores it
        without its body (``body_kept`` False): only template requests can then be sent when due."""
        body_kept = not self.options.metadata_only or BODY_FIELD not in request
        kept = {k: v for k, v in request.items() if body_kept or k != BODY_FIELD}
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO held_requests (tenant_id, operation_id, message_id, request, body_kept, send_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, operation_id) DO NOTHING",
                (
                    tenant_id,
                    operation_id,
                    message_id,
                    to_json(kept),
                    int(body_kept),
                    to_text(send_at),
                    to_text(self.options.clock()),
                ),
            )
            self.schedule_timer(tenant_id, message_id, SCHEDULED_SEND, send_at)
        held = self._held(tenant_id, operation_id)
        assert held is not None
        return held

    def release_held_request(self, tenant_id: str, operation_id: str) -> HeldRequest | None:
        """Take a due request out for sending; None when it was cancelled or another caller took it."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "DELETE FROM held_requests WHERE tenant_id = ? AND operation_id = ? RETURNING *",
                (tenant_id, operation_id),
            ).fetchone()
        if row is None:
            return None
        log.info("held request released operation_id=%s", operation_id)
        return _held_from_row(row)

    def cancel_held_request(self, tenant_id: str, operation_id: str) -> bool:
        """Drop a held request and its pending timer; False when none was held (sent, cancelled, unknown)."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "DELETE FROM held_requests WHERE tenant_id = ? AND operation_id = ? RETURNING message_id",
                (tenant_id, operation_id),
            ).fetchone()
            if row is not None:
                self.cancel_timer(tenant_id, row["message_id"], SCHEDULED_SEND)
        return row is not None

    def held_request_for_message(self, tenant_id: str, message_id: str) -> HeldRequest | None:
        """The request still held for a message (what a fired ``scheduled_send`` timer sends)."""
        row = self._one(
            "SELECT * FROM held_requests WHERE tenant_id = ? AND message_id = ?", (tenant_id, message_id)
        )
        return _held_from_row(row) if row else None

    def _held(self, tenant_id: str, operation_id: str) -> HeldRequest | None:
        row = self._one(
            "SELECT * FROM held_requests WHERE tenant_id = ? AND operation_id = ?", (tenant_id, operation_id)
        )
        return _held_from_row(row) if row else None


def _held_from_row(row: Row) -> HeldRequest:
    return HeldRequest(
        tenant_id=row["tenant_id"],
        operation_id=row["operation_id"],
        message_id=row["message_id"],
        request=json.loads(row["request"]),
        send_at=from_text(row["send_at"]),
        created_at=from_text(row["created_at"]),
        body_kept=bool(row["body_kept"]),
    )
