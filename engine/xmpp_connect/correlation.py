"""What the adapter knows about the outbound side when evidence arrives: the input facts are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class OutboundRecord:
    """One outbound stanza the adapter sent, as correlation needs it."""

    stanza_id: str
    to_jid: str
    endpoint_type: str
    message_type: str = "chat"
    origin_id: str | None = None
    message_id: str | None = None
    attempt_id: str | None = None
    receipt_requested: bool = False
    markable: bool = False
    sent_at: datetime | None = None


@dataclass(frozen=True)
class CorrelationContext:
    """Everything beyond the stanza itself that a fact may depend on. Unknown stays None."""

    outbound: OutboundRecord | None = None
    known_resources: frozenset[str] = frozenset()
    delegates: frozenset[str] = frozenset()
    recipient_available: bool | None = None
    addressee_resource_count: int | None = None
    subscription: str | None = None
    cap_receipts: bool | None = None
    cap_markers: bool | None = None
    cap_offline_storage: bool | None = None
    room_anonymity: str | None = None
    occupant_real_jid: str | None = None
    late: bool = False
    authenticated_stream: bool = True
    via_component: bool = False
    stop_suppression_enabled: bool = False
    reply_via: str | None = None
    marker_inferred: bool = False
    correlation_ambiguous: bool = False
    extra: dict[str, object] = field(default_factory=dict)
