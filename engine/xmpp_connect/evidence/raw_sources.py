"""Which §30 source a native event's raw stanza came from, as its evidence says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_connect.model.native import NativeEvent

SERVER_KINDS = frozenset({"sm_ack", "send_accepted", "acceptance_unknown", "stanza_error"})
"""Evidence the server gives about our stream or stanzas (a bounce, an ack, our own stanza as written)."""
CLIENT_KINDS = frozenset({"receipt", "marker", "inbound_message", "presence", "chat_state", "capabilities"})
"""Evidence a recipient's client (or its presence) gives."""


def raw_source(fact: Mapping[str, Any], event: NativeEvent) -> str:
    """stream | server | client | muc | pubsub | archive | operator (handed in by an external bridge)."""
    if event.detail.get("authenticated_stream") is False:
        return "operator"
    kind = str(fact.get("kind", ""))
    if kind.startswith("muc_"):
        return "muc"
    if kind.startswith("pubsub_"):
        return "pubsub"
    if kind == "archive_match":
        return "archive"
    if kind in CLIENT_KINDS:
        return "client"
    if kind in SERVER_KINDS:
        return "server"
    return "stream"
