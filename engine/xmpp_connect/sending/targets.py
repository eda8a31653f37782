"""Reading a send request: where it goes, as what type, and its timestamps and durations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from xmpp_connect.providers.stanza_builders import endpoint_type_of

TYPED_ENDPOINTS = frozenset({"muc_room_jid", "pubsub_node", "component_jid"})


def target_jid(target: Mapping[str, Any]) -> str:
    """The address a stanza goes to: the PubSub service for a node, else the endpoint's value."""
    field = "service" if target.get("endpoint_type") == "pubsub_node" else "value"
    return (target.get(field) or "").strip()


def endpoint_type(target: Mapping[str, Any], to_jid: str) -> str:
    """A room, node or component as the request names it; else bare or full JID by the address (§9.4)."""
    named = target.get("endpoint_type")
    return named if named in TYPED_ENDPOINTS else endpoint_type_of(to_jid)


def message_type(target: Mapping[str, Any], requested: str) -> str:
    return "groupchat" if target.get("endpoint_type") == "muc_room_jid" else requested


def timestamp(text: str) -> datetime:
    """A schema-checked ISO 8601 timestamp with a zone."""
    return datetime.fromisoformat(text)


def seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
