"""The §22 provider abstraction: what any XMPP provider (real or simulated) offers the adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from xmpp_connect.config.settings import AccountConfig as ServiceAccount
from xmpp_connect.config.settings import NodeConfig, RoomConfig
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
class RoomSettings:
    """A MUC room an account uses (§34, e.g. an operations room). Joined at session start when
    ``join_at_start``; when the join creates the room (it did not exist) and ``create`` is set, the adapter
    submits its configuration form from these fields, which unlocks it; without ``create`` it leaves the new
    room again and reports it missing. ``history_stanzas`` is what the join asks the room to replay (None:
    the room's default, 0: none)."""

    room_jid: str
    nick: str = "xmpp-connect"
    password: str | None = field(default=None, repr=False)
    join_at_start: bool = True
    create: bool = True
    non_anonymous: bool = True
    members_only: bool = False
    moderated: bool = False
    persistent: bool = True
    public: bool = True
    history_stanzas: int | None = None


@dataclass(frozen=True)
class NodeSettings:
    """A PubSub node an account uses (§19, §34). ``create``: create it at session start when missing, with
    these access and publisher models (Prosody lets only admins create nodes). ``subscribe``: this account
    subscribes, so the notifications it receives are subscriber-side evidence for items others publish."""

    service_jid: str
    node: str
    create: bool = False
    access_model: str = "open"
    publisher_model: str = "publishers"
    subscribe: bool = False


@dataclass(frozen=True)
class AccountConfig:
    """How a provider connects one configured XMPP account (§34: one account per purpose)."""

    account: str
    jid: str
    password: str = field(repr=False)
    host: str | None = None
    port: int = 5222
    ca_file: Path | None = None
    verify_tls: bool = True
    require_tls: bool = True
    ping_interval: float = 60.0
    ping_timeout: float = 10.0
    ack_request_delay: float = 0.005
    backoff: Backoff = Backoff()
    subscription_requests: str = "approve_and_subscribe"
    """approve_and_subscribe | approve | ignore (config ``accounts[].subscription_requests``)."""
    discover_capabilities: bool = True
    rooms: tuple[RoomSettings, ...] = ()
    nodes: tuple[NodeSettings, ...] = ()
    room_join_timeout: float = 5.0
    iq_timeout: float = 5.0

    def room(self, room_jid: str) -> RoomSettings | None:
        """The configured settings of a room (bare JIDs compared case-insensitively)."""
        wanted = room_jid.split("/", 1)[0].lower()
        return next((room for room in self.rooms if room.room_jid.lower() == wanted), None)

    @classmethod
    def from_account(cls, account: ServiceAccount, **overrides: Any) -> AccountConfig:
        """Settings for a client account of the service configuration (``config.AccountConfig``): connection,
        TLS verification, rooms (passwords revealed here, at the last step), nodes and their timeouts."""
        if account.password is None:
            raise ValueError(f"account {account.ref!r} has no password")
        values: dict[str, Any] = {
            "account": account.ref,
            "jid": account.jid,
            "password": account.password.reveal(),
            "host": account.host,
            "port": account.port,
            "ca_file": Path(account.ca_certs) if account.ca_certs else None,
            "require_tls": account.require_tls,
            "verify_tls": account.verify_tls,
            "rooms": tuple(_room_settings(room) for room in account.rooms),
            "nodes": tuple(_node_settings(node) for node in account.nodes),
            "room_join_timeout": account.room_join_timeout,
            "iq_timeout": account.iq_timeout,
            "subscription_requests": account.subscription_requests,
        }
        values.update(overrides)
        return cls(**values)


def _room_settings(room: RoomConfig) -> RoomSettings:
    return RoomSettings(
        room_jid=room.room_jid,
        nick=room.nick,
        password=None if room.password is None else room.password.reveal(),
        join_at_start=room.join_at_start,
        create=room.create,
        non_anonymous=room.non_anonymous,
        members_only=room.members_only,
        moderated=room.moderated,
        persistent=room.persistent,
        public=room.public,
        history_stanzas=room.history_stanzas,
    )


def _node_settings(node: NodeConfig) -> NodeSettings:
    return NodeSettings(
        service_jid=node.service_jid,
        node=node.node,
        create=node.create,
        access_model=node.access_model,
        publisher_model=node.publisher_model,
        subscribe=node.subscribe,
    )


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

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        """Join a MUC room (XEP-0045) with a bounded wait; disco#info gives the room's kind. A room the join
        creates is configured from the account's RoomSettings (or left, when not allowed to create). The
        join presence is recorded as an outbound stanza (with ``message_id``/``attempt_id`` when given), so a
        refusal arrives as a correlated ``stanza_received`` error."""

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        """Send a groupchat message to a joined room; the room's reflected copy arrives as a native event."""

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None) -> OutboundRecord:
        """Publish one item to a PubSub node (XEP-0060); the iq result or error arrives as a native event."""
