"""MUC rooms and events (§18), PubSub nodes and items (§19)."""

from __future__ import annotations

import json

from xmpp_connect.store.connection import SqlBase
from xmpp_connect.store.records import (
    MucEvent,
    MucRoom,
    PubSubItem,
    PubSubNode,
)
from xmpp_connect.store.rows import bool_to_int, int_to_bool, to_json
from xmpp_connect.store.timestamps import from_text, to_text
from xmpp_connect.xmpp import jids


class GroupRecords(SqlBase):
    """Room and node records."""

    def upsert_muc_room(self, room: MucRoom) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO muc_rooms (tenant_id, room_jid, room_name, room_type,"
                " occupant_mapping_confidence,"
                " supports_history, supports_markers, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, room_jid) DO UPDATE SET room_name = excluded.room_name,"
                " room_type = excluded.room_type,"
                " occupant_mapping_confidence = excluded.occupant_mapping_confidence,"
                " supports_history = excluded.supports_history, supports_markers = excluded.supports_markers,"
                " metadata = excluded.metadata",
                (
                    room.tenant_id,
                    jids.bare(room.room_jid),
                    room.room_name,
                    room.room_type,
                    room.occupant_mapping_confidence,
                    bool_to_int(room.supports_history),
                    bool_to_int(room.supports_markers),
                    to_json(room.metadata),
                ),
            )

    def get_muc_room(self, tenant_id: str, room_jid: str) -> MucRoom | None:
        row = self._one(
            "SELECT * FROM muc_rooms WHERE tenant_id = ? AND room_jid = ?", (tenant_id, jids.bare(room_jid))
        )
        if row is None:
            return None
        return MucRoom(
            row["tenant_id"],
            row["room_jid"],
            row["room_type"],
            row["occupant_mapping_confidence"],
            row["room_name"],
            int_to_bool(row["supports_history"]),
            int_to_bool(row["supports_markers"]),
            json.loads(row["metadata"]),
        )

    def record_muc_event(self, event: MucEvent) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO muc_events (tenant_id, muc_event_id, room_jid, event_type,"
                " occurred_at, occupant_jid,"
                " occupant_nick, participant_id, message_id, confidence) VALUES (?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    event.tenant_id,
                    event.muc_event_id,
                    jids.bare(event.room_jid),
                    event.event_type,
                    to_text(event.occurred_at),
                    event.occupant_jid,
                    event.occupant_nick,
                    event.participant_id,
                    event.message_id,
                    event.confidence,
                ),
            )

    def list_muc_events(self, tenant_id: str, room_jid: str, limit: int = 100) -> list[MucEvent]:
        rows = self._all(
            "SELECT * FROM muc_events WHERE tenant_id = ? AND room_jid = ? ORDER BY"
            " occurred_at, muc_event_id LIMIT ?",
            (tenant_id, jids.bare(room_jid), limit),
        )
        return [
            MucEvent(
                row["tenant_id"],
                row["muc_event_id"],
                row["room_jid"],
                row["event_type"],
                from_text(row["occurred_at"]),
                row["occupant_jid"],
                row["occupant_nick"],
                row["participant_id"],
                row["message_id"],
                row["confidence"],
            )
            for row in rows
        ]

    def upsert_pubsub_node(self, node: PubSubNode) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO pubsub_nodes (tenant_id, service_jid, node_id, access_model,"
                " publisher_model, metadata)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, service_jid, node_id) DO UPDATE SET"
                " access_model = excluded.access_model, publisher_model = excluded.publisher_model,"
                " metadata = excluded.metadata",
                (
                    node.tenant_id,
                    node.service_jid,
                    node.node_id,
                    node.access_model,
                    node.publisher_model,
                    to_json(node.metadata),
                ),
            )

    def get_pubsub_node(self, tenant_id: str, service_jid: str, node_id: str) -> PubSubNode | None:
        row = self._one(
            "SELECT * FROM pubsub_nodes WHERE tenant_id = ? AND service_jid = ? AND node_id = ?",
            (tenant_id, service_jid, node_id),
        )
        if row is None:
            return None
        return PubSubNode(
            row["tenant_id"],
            row["service_jid"],
            row["node_id"],
            row["access_model"],
            row["publisher_model"],
            json.loads(row["metadata"]),
        )

    def record_pubsub_item(self, item: PubSubItem) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO pubsub_items (tenant_id, service_jid, node_id, item_id,"
                " published_at, payload_ref,"
                " publisher_jid, message_id, correlation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON"
                " CONFLICT DO NOTHING",
                (
                    item.tenant_id,
                    item.service_jid,
                    item.node_id,
                    item.item_id,
                    to_text(item.published_at),
                    item.payload_ref,
                    item.publisher_jid,
                    item.message_id,
                    to_json(item.correlation),
                ),
            )

    def list_pubsub_items(
        self, tenant_id: str, service_jid: str, node_id: str, limit: int = 100
    ) -> list[PubSubItem]:
        rows = self._all(
            "SELECT * FROM pubsub_items WHERE tenant_id = ? AND service_jid = ? AND node_id = ?"
            " ORDER BY published_at, item_id LIMIT ?",
            (tenant_id, service_jid, node_id, limit),
        )
        return [
            PubSubItem(
                row["tenant_id"],
                row["service_jid"],
                row["node_id"],
                row["item_id"],
                from_text(row["published_at"]),
                row["payload_ref"],
                row["publisher_jid"],
                row["message_id"],
                json.loads(row["correlation"]),
            )
            for row in rows
        ]
