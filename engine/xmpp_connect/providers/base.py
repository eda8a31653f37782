"""The §22 provider abstraction: what any XMPP provider (real or simulated) offers the adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.stanza_builders import OutboundMessage

EventSink = Callable[[NativeEvent], None]
"""Where a provider hands every native event it observes, in the order observed."""


class Feature(StrEnum):
    """§22 supported_features."""

    CLIENT_TO_SERVER = "client_to_server"
    COMPONENT_CONNECTION = "component_connection"
    DELIVERY_RECEIPTS = "delivery_receipts"
    DISPLAYED_MARKERS = "displayed_markers"
    STREAM_MANAGEMENT = "stream_management"
    CHAT_STATE_NOTIFICATIONS = "chat_state_notifications"
    MESSAGE_ARCHIVE_MANAGEMENT = "message_archive_management"
    MULTI_USER_CHAT = "multi_user_chat"
    PUBSUB = "pubsub"
    END_TO_END_ENCRYPTION = "end_to_end_encryption"


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: initial, doubled after each failed attempt, capped at maximum (seconds)."""

    initial: float = 0.2
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.initial * (2 ** max(0, failures)))


@dataclass(frozen=True)
class SessionTuning:
    """How a client provider keeps its session, beyond what the account's configuration says: liveness
    pings, the delay before asking the server for acks, reconnect backoff, disco of contacts."""

    ping_interval: float = 60.0
    ping_timeout: float = 10.0
    ack_request_delay: float = 0.005
    backoff: Backoff = Backoff()
    discover_capabilities: bool = True


@dataclass(frozen=True)
class ChannelHealth:
    """§26 XmppChannelHealth for one account."""

    xmpp_account_ref: str
    server_ref: str | None
    status: str
    stream_status: str
    authentication_status: str
    tls_status: str
    server_reachability: str
    supported_extensions: tuple[str, ...] = ()
    known_degradations: tuple[str, ...] = ()


FEATURE_STABLE_IDS = frozenset({"http://jabber.org/protocol/muc#stable_id", "urn:xmpp:sid:0"})
FEATURE_MAM = "urn:xmpp:mam:2"
ROOM_TYPE_FEATURES = (
    ("muc_passwordprotected", "password_protected"),
    ("muc_membersonly", "members_only"),
    ("muc_fullyanonymous", "anonymous"),
    ("muc_semianonymous", "semi_anonymous"),
    ("muc_public", "public"),
)
"""§18 room_type from disco#info features, the first present wins."""


@dataclass(frozen=True)
class RoomJoin:
    """The outcome of joining a MUC room (§18): whether it worked, and the room's kind from disco#info.

    ``error_condition`` is the snake_case stanza error condition of a refused join (``item_not_found``,
    ``registration_required``, ``not_authorized``, ``forbidden``, ``conflict``, ...), ``timeout`` when no
    answer came within the bound, None when joined. ``created``: this join created the room (and the
    adapter configured it)."""

    room_jid: str
    nick: str
    joined: bool
    room_anonymity: str = "unknown"
    features: frozenset[str] = frozenset()
    error_condition: str | None = None
    created: bool = False

    @property
    def room_type(self) -> str:
        """§18 room_type: password_protected, members_only, anonymous, semi_anonymous, public or unknown."""
        return next((kind for feature, kind in ROOM_TYPE_FEATURES if feature in self.features), "unknown")

    @property
    def occupant_mapping_confidence(self) -> str:
        """§18: high where the room shows every occupant's real JID, low otherwise."""
        return "high" if self.room_anonymity == "non_anonymous" else "low"

    @property
    def expected_evidence(self) -> frozenset[str]:
        """What evidence a message to this room can produce (§12.7), to record with the attempt so that a
        missing signal reads as unsupported rather than pending: ``room_reflection`` always (XEP-0045);
        ``stable_id`` and ``occupant_markers`` (markers name the room's stanza-id; whether occupants send
        them depends on their clients) when the room assigns stable ids; ``occupant_identity`` in a
        non-anonymous room; ``archive`` when the room keeps a MAM archive."""
        expected = {"room_reflection"}
        if self.features & FEATURE_STABLE_IDS:
            expected.update({"stable_id", "occupant_markers"})
        if self.room_anonymity == "non_anonymous":
            expected.add("occupant_identity")
        if FEATURE_MAM in self.features:
            expected.add("archive")
        return frozenset(expected)


class XmppProvider(Protocol):
    """A long-lived connection for one account that sends stanzas and reports native events."""

    provider_name: str
    provider_account_ref: str
    supported_features: frozenset[Feature]

    async def start(self) -> bool:
        """Connect and keep reconnecting until stop(); True once the first session is up, False when it
        failed (authentication, TLS) or did not come up in time (retries go on)."""

    async def stop(self) -> None:
        """Close the stream; unacked stanzas are reported as acceptance-unknown."""

    def send_message(self, message: OutboundMessage) -> OutboundRecord:
        """Queue one message stanza; its evidence arrives later as native events."""

    def send_raw_message(self, xml: str, stanza_id: str, to_jid: str) -> OutboundRecord:
        """Send a prebuilt message stanza as is (e.g. to an address the JID parser refuses)."""

    async def discover(self, jid: str) -> None:
        """Ask a JID for disco#info; the answer arrives as a ``capabilities`` native event."""

    def health(self) -> ChannelHealth:
        """The account's channel health now."""

    def stream_status(self) -> str:
        """``health().stream_status``, without building the rest of the health (a send reads it)."""

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        """Join a MUC room (XEP-0045) with a bounded wait; disco#info gives the room's kind. A room the join
        creates is configured from the account's RoomConfig (or left, when not allowed to create). The
        join presence is recorded as an outbound stanza (with ``message_id``/``attempt_id`` when given), so a
        refusal arrives as a correlated ``stanza_received`` error."""

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        """Send a groupchat message to a joined room; the room's reflected copy arrives as a native event."""

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None, *,
                stanza_id: str | None = None) -> OutboundRecord:
        """Publish one item to a PubSub node (XEP-0060) in an iq with ``stanza_id`` (a new id when None);
        the iq result or error arrives as a native event."""
