"""The records the store keeps (§9, §15–§19, §29–§30), each scoped to a tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.model.frozen import dict_init

ATTEMPT_STATES = frozenset(
    {
        "created",
        "rendered",
        "render_failed",
        "send_requested",
        "accepted_by_adapter",
        "rejected_by_adapter",
        "stream_unavailable",
        "sent_to_server",
        "server_acknowledged",
        "route_attempted",
        "endpoint_available",
        "endpoint_unavailable",
        "offline_stored",
        "deferred",
        "delivered_to_client",
        "displayed_by_client",
        "acknowledged_by_client",
        "reply_received",
        "stanza_error_received",
        "failed",
        "expired",
        "unknown",
        "cancelled",
    }
)
ENDPOINT_TYPES = frozenset(
    {"bare_jid", "full_jid", "muc_room_jid", "pubsub_node", "component_jid", "unknown"}
)
VERIFICATION_STATES = frozenset(
    {"unknown", "syntax_validated", "roster_known", "presence_known", "authenticated", "invalid"}
)
SUPPRESSION_STATES = frozenset({"suppressed", "blocked", "unsubscribed"})
TIMER_KINDS = frozenset({"receipt_timeout", "marker_timeout", "expiry", "scheduled_send"})
LATE_AFTER_TIMERS = frozenset({"receipt_timeout", "expiry"})
RAW_SOURCES = frozenset({"stream", "server", "client", "muc", "pubsub", "archive", "operator"})
DEAD_LETTER_STAGES = frozenset({"parse", "correlate", "classify", "map"})


@dict_init
@dataclass(frozen=True)
class XmppMessage:
    """The logical message (§9.1). Bodies are never stored here, only a reference."""

    tenant_id: str
    message_id: str
    created_at: datetime
    case_id: str | None = None
    participant_id: str | None = None
    purpose: str | None = None
    body_ref: str | None = None
    template_ref: str | None = None
    tracking_context: Mapping[str, Any] = field(default_factory=dict)


@dict_init
@dataclass(frozen=True)
class XmppAttempt:
    """One send attempt through one account (§9.2); ``state`` is a §10 attempt state."""

    tenant_id: str
    attempt_id: str
    message_id: str
    account_ref: str
    from_jid: str
    to_jid: str
    to_endpoint_type: str
    created_at: datetime
    updated_at: datetime
    message_type: str = "chat"
    state: str = "created"
    server_ref: str | None = None
    stanza_id: str | None = None
    origin_id: str | None = None
    server_id: str | None = None
    expected_evidence: tuple[str, ...] | None = None
    """What evidence the target can produce, known before sending (a room's disco#info: reflection,
    stable ids, occupant markers and identity, archive), so a missing signal reads as unsupported rather
    than pending; None when not known."""


@dict_init
@dataclass(frozen=True)
class XmppStanza:
    """One protocol-level stanza (§9.3); ``direction`` is ``outbound`` or ``inbound``.

    ``stable_id`` is the server-assigned XEP-0359 stanza-id once known.
    """

    tenant_id: str
    stanza_ref: str
    direction: str
    stanza_type: str
    from_jid: str
    to_jid: str
    message_type: str = "chat"
    endpoint_type: str = "unknown"
    stanza_id: str | None = None
    origin_id: str | None = None
    stable_id: str | None = None
    message_id: str | None = None
    attempt_id: str | None = None
    receipt_requested: bool = False
    markable: bool = False
    payload_ref: str | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    raw_ref: str | None = None


@dataclass(frozen=True)
class XmppEndpoint:
    """A target or sender endpoint (§9.4). ``suppression_state`` is read from the suppression list."""

    tenant_id: str
    endpoint_id: str
    endpoint_type: str
    jid: str
    bare_jid: str | None = None
    resource: str | None = None
    display_name: str | None = None
    verification_state: str = "unknown"
    suppression_state: str = "active"
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suppression:
    """A bare JID the adapter must not send to (§12.1 recipient.suppress)."""

    tenant_id: str
    bare_jid: str
    state: str
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class PresenceState:
    """The last presence of one resource (§15); ``resource`` is None for a bare-JID presence."""

    tenant_id: str
    bare_jid: str
    availability: str
    observed_at: datetime
    resource: str | None = None
    priority: int | None = None
    status_text: str | None = None
    subscription_state: str = "unknown"
    confidence: str = "medium"


@dict_init
@dataclass(frozen=True)
class DeliveryReceipt:
    """A XEP-0184 receipt (§16), correlated to the original stanza and message."""

    tenant_id: str
    receipt_id: str
    original_stanza_id: str
    from_jid: str
    to_jid: str
    received_at: datetime
    message_id: str | None = None
    resource: str | None = None
    confidence: str = "medium"


@dict_init
@dataclass(frozen=True)
class DisplayedMarker:
    """A XEP-0333 marker (§16); ``inferred`` when derived from a later cumulative marker."""

    tenant_id: str
    marker_id: str
    original_stanza_id: str
    marker_type: str
    from_jid: str
    to_jid: str
    received_at: datetime
    message_id: str | None = None
    resource: str | None = None
    confidence: str = "medium"
    inferred: bool = False


@dataclass(frozen=True)
class InboundMessage:
    """An inbound message (§17). ``body_text`` is dropped in metadata-only mode."""

    tenant_id: str
    inbound_message_id: str
    from_jid: str
    to_jid: str
    message_type: str
    received_at: datetime
    command_classification: str = "none"
    body_text: str | None = None
    stanza_id: str | None = None
    message_id: str | None = None
    raw_ref: str | None = None


@dataclass(frozen=True)
class MucRoom:
    """A MUC room (§18)."""

    tenant_id: str
    room_jid: str
    room_type: str = "unknown"
    occupant_mapping_confidence: str = "low"
    room_name: str | None = None
    supports_history: bool | None = None
    supports_markers: bool | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MucEvent:
    """Something that happened in a room (§18)."""

    tenant_id: str
    muc_event_id: str
    room_jid: str
    event_type: str
    occurred_at: datetime
    occupant_jid: str | None = None
    occupant_nick: str | None = None
    participant_id: str | None = None
    message_id: str | None = None
    confidence: str = "low"


@dataclass(frozen=True)
class PubSubNode:
    """A PubSub node (§19)."""

    tenant_id: str
    service_jid: str
    node_id: str
    access_model: str = "unknown"
    publisher_model: str = "unknown"
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PubSubItem:
    """A published PubSub item (§19)."""

    tenant_id: str
    service_jid: str
    node_id: str
    item_id: str
    published_at: datetime
    payload_ref: str | None = None
    publisher_jid: str | None = None
    message_id: str | None = None
    correlation: Mapping[str, Any] = field(default_factory=dict)


@dict_init
@dataclass(frozen=True)
class RawEventRef:
    """A reference to a preserved raw stanza (§30); ``purged_at`` once retention removed its content."""

    tenant_id: str
    raw_event_id: str
    source: str
    received_at: datetime
    redacted: bool
    storage_ref: str | None = None
    purged_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An event that could not be parsed, correlated or classified, kept with the reason."""

    tenant_id: str
    dead_letter_id: str
    stage: str
    reason: str
    created_at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    raw_ref: str | None = None


@dataclass(frozen=True)
class IdempotentOperation:
    """The one operation an idempotency key stands for (§29, §36.3).

    ``replayed`` is True when the key was seen before with the same payload: do not send again.
    ``result`` is None until the first caller completed the operation.
    """

    tenant_id: str
    idempotency_key: str
    payload_hash: str
    operation_id: str
    stanza_id: str
    created_at: datetime
    replayed: bool
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Timer:
    """A persisted due time: a receipt/marker timeout or an expiry for one message."""

    tenant_id: str
    timer_id: str
    message_id: str
    timer: str
    due_at: datetime
    attempt_id: str | None = None
    fired_at: datetime | None = None


@dataclass(frozen=True)
class HeldRequest:
    """A notification.schedule request held until ``send_at`` (its ``scheduled_send`` timer).

    ``request`` is the action request as accepted; in metadata-only mode without ``content`` (the body):
    then ``body_kept`` is False and only a template request (``template_ref`` + ``variables``) can be sent.
    """

    tenant_id: str
    operation_id: str
    message_id: str
    request: Mapping[str, Any]
    send_at: datetime
    created_at: datetime
    body_kept: bool = True


@dataclass(frozen=True)
class EventPage:
    """One page of the event feed; pass ``next_cursor`` back to continue (it is valid even when empty)."""

    events: tuple[EvidenceEvent, ...]
    next_cursor: str


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of dead letters, oldest first."""

    dead_letters: tuple[DeadLetter, ...]
    next_cursor: str | None


@dict_init
@dataclass(frozen=True)
class AppendResult:
    """What an append stored: new events (with feed position and ``recorded_at``) and duplicate ids."""

    stored: tuple[EvidenceEvent, ...]
    duplicates: tuple[str, ...]


@dataclass(frozen=True)
class PurgeReport:
    """What a retention purge removed."""

    raw_events_purged: int
    presence_history_deleted: int
