"""Receipts and markers (§16), inbound messages (§17), presence (§15)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from xmpp_connect.store.connection import SqlBase
from xmpp_connect.store.records import (
    DeliveryReceipt,
    DisplayedMarker,
    InboundMessage,
    PresenceState,
)
from xmpp_connect.store.rows import presence_from_row, where_equal
from xmpp_connect.store.timestamps import from_text, to_text
from xmpp_connect.xmpp import jids


class ObservationRecords(SqlBase):
    """What the recipient side was seen doing, stored beside the evidence log."""

    def record_receipt(self, receipt: DeliveryReceipt) -> bool:
        """Store a receipt once per id; returns False for a duplicate."""
        return self._insert_receipt_marker(
            receipt.tenant_id,
            receipt.receipt_id,
            "receipt",
            None,
            receipt.original_stanza_id,
            receipt.message_id,
            receipt.from_jid,
            receipt.to_jid,
            receipt.resource,
            receipt.received_at,
            receipt.confidence,
            False,
        )

    def record_marker(self, marker: DisplayedMarker) -> bool:
        """Store a marker once per id; returns False for a duplicate."""
        return self._insert_receipt_marker(
            marker.tenant_id,
            marker.marker_id,
            "marker",
            marker.marker_type,
            marker.original_stanza_id,
            marker.message_id,
            marker.from_jid,
            marker.to_jid,
            marker.resource,
            marker.received_at,
            marker.confidence,
            marker.inferred,
        )

    def _insert_receipt_marker(
        self,
        tenant_id: str,
        record_id: str,
        kind: str,
        marker_type: str | None,
        original_stanza_id: str,
        message_id: str | None,
        from_jid: str,
        to_jid: str,
        resource: str | None,
        received_at: datetime,
        confidence: str,
        inferred: bool,
    ) -> bool:
        with self._write() as conn:
            changed = self._exec(
                conn,
                "INSERT INTO receipts_markers (tenant_id, record_id, kind, marker_type, original_stanza_id,"
                " message_id, from_jid, to_jid, resource, received_at, confidence, inferred)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    tenant_id,
                    record_id,
                    kind,
                    marker_type,
                    original_stanza_id,
                    message_id,
                    from_jid,
                    to_jid,
                    resource,
                    to_text(received_at),
                    confidence,
                    int(inferred),
                ),
            ).rowcount
        return bool(changed > 0)

    def list_receipts(self, tenant_id: str, message_id: str) -> list[DeliveryReceipt]:
        rows = self._all(
            "SELECT * FROM receipts_markers WHERE tenant_id = ? AND message_id = ? AND kind = 'receipt'"
            " ORDER BY received_at, record_id",
            (tenant_id, message_id),
        )
        return [
            DeliveryReceipt(
                row["tenant_id"],
                row["record_id"],
                row["original_stanza_id"],
                row["from_jid"],
                row["to_jid"],
                from_text(row["received_at"]),
                row["message_id"],
                row["resource"],
                row["confidence"],
            )
            for row in rows
        ]

    def list_markers(self, tenant_id: str, message_id: str) -> list[DisplayedMarker]:
        rows = self._all(
            "SELECT * FROM receipts_markers WHERE tenant_id = ? AND message_id = ? AND kind = 'marker'"
            " ORDER BY received_at, record_id",
            (tenant_id, message_id),
        )
        return [
            DisplayedMarker(
                row["tenant_id"],
                row["record_id"],
                row["original_stanza_id"],
                row["marker_type"],
                row["from_jid"],
                row["to_jid"],
                from_text(row["received_at"]),
                row["message_id"],
                row["resource"],
                row["confidence"],
                bool(row["inferred"]),
            )
            for row in rows
        ]

    def record_inbound(self, inbound: InboundMessage) -> InboundMessage:
        """Store an inbound message; in metadata-only mode without its body. Returns what was stored."""
        if self.options.metadata_only:
            inbound = replace(inbound, body_text=None)
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO inbound_messages (tenant_id, inbound_message_id, from_jid, to_jid, message_type,"
                " received_at, command_classification, body_text, stanza_id, message_id, raw_ref)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    inbound.tenant_id,
                    inbound.inbound_message_id,
                    inbound.from_jid,
                    inbound.to_jid,
                    inbound.message_type,
                    to_text(inbound.received_at),
                    inbound.command_classification,
                    inbound.body_text,
                    inbound.stanza_id,
                    inbound.message_id,
                    inbound.raw_ref,
                ),
            )
        return inbound

    def list_inbound(
        self, tenant_id: str, message_id: str | None = None, limit: int = 100
    ) -> list[InboundMessage]:
        where, params = where_equal(tenant_id, message_id=message_id)
        rows = self._all(
            f"SELECT * FROM inbound_messages WHERE {where} ORDER BY received_at, inbound_message_id LIMIT ?",
            [*params, limit],
        )
        return [
            InboundMessage(
                row["tenant_id"],
                row["inbound_message_id"],
                row["from_jid"],
                row["to_jid"],
                row["message_type"],
                from_text(row["received_at"]),
                row["command_classification"],
                row["body_text"],
                row["stanza_id"],
                row["message_id"],
                row["raw_ref"],
            )
            for row in rows
        ]

    def record_presence(self, presence: PresenceState) -> None:
        """Keep the newest presence per resource (an older one arriving late does not overwrite it)
        and append to the presence history. A bare-JID ``unavailable`` marks every resource unavailable."""
        bare = jids.bare(presence.bare_jid)
        status = None if self.options.metadata_only else presence.status_text
        observed = to_text(presence.observed_at)
        resource = presence.resource or ""
        with self._write() as conn:
            if presence.availability == "unavailable" and not presence.resource:
                self._exec(
                    conn,
                    "UPDATE presence_current SET availability = 'unavailable', priority = NULL,"
                    " status_text = ?, observed_at = ? WHERE tenant_id = ? AND bare_jid = ? AND"
                    " observed_at <= ?",
                    (status, observed, presence.tenant_id, bare, observed),
                )
            self._exec(
                conn,
                "INSERT INTO presence_current (tenant_id, bare_jid, resource, availability,"
                " priority, status_text,"
                " observed_at, subscription_state, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, bare_jid, resource) DO UPDATE SET availability ="
                " excluded.availability,"
                " priority = excluded.priority, status_text = excluded.status_text,"
                " observed_at = excluded.observed_at, subscription_state = excluded.subscription_state,"
                " confidence = excluded.confidence WHERE presence_current.observed_at <="
                " excluded.observed_at",
                (
                    presence.tenant_id,
                    bare,
                    resource,
                    presence.availability,
                    presence.priority,
                    status,
                    observed,
                    presence.subscription_state,
                    presence.confidence,
                ),
            )
            self._exec(
                conn,
                "INSERT INTO presence_history (tenant_id, bare_jid, resource, availability,"
                " priority, observed_at,"
                " subscription_state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    presence.tenant_id,
                    bare,
                    resource,
                    presence.availability,
                    presence.priority,
                    observed,
                    presence.subscription_state,
                ),
            )

    def presence(self, tenant_id: str, jid: str) -> list[PresenceState]:
        """The current presence of each resource of a bare JID (``GET /xmpp/presence/{jid}``)."""
        rows = self._all(
            "SELECT * FROM presence_current WHERE tenant_id = ? AND bare_jid = ? ORDER BY resource",
            (tenant_id, jids.bare(jid)),
        )
        return [presence_from_row(row) for row in rows]

    def presence_history(self, tenant_id: str, jid: str) -> list[PresenceState]:
        rows = self._all(
            "SELECT tenant_id, bare_jid, resource, availability, priority, NULL AS status_text, observed_at,"
            " subscription_state, 'low' AS confidence FROM presence_history WHERE tenant_id = ?"
            " AND bare_jid = ?"
            " ORDER BY observed_at",
            (tenant_id, jids.bare(jid)),
        )
        return [presence_from_row(row) for row in rows]
