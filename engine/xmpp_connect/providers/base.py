"""The §22 provider abstraction: what any XMPP provider (real or simulated) offers the adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from xmpp_connect.config import AccountConfig as ServiceAccount
from xmpp_connect.correlation import OutboundRecord
from xmpp_connect.native import NativeEvent
from xmpp_connect.outbound import OutboundMessage

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
    auto_authorize_subscriptions: bool = True
    discover_capabilities: bool = True

    @classmethod
    def from_account(cls, account: ServiceAccount, **overrides: Any) -> AccountConfig:
        """Settings for an account of the service configuration (``config.AccountConfig``)."""
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
        }
        values.update(overrides)
        return cls(**values)


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


@dataclass(frozen=True)
class RoomJoin:
    """The outcome of joining a MUC room (§18): whether it worked, and the room's kind from disco#info."""

    room_jid: str
    nick: str
    joined: bool
    room_anonymity: str = "unknown"
    features: frozenset[str] = frozenset()
    error_condition: str | None = None


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

    async def join_room(self, room_jid: str, nick: str, password: str | None = None) -> RoomJoin:
        """Join a MUC room (XEP-0045) with a bounded wait; disco#info gives the room's kind."""

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        """Send a groupchat message to a joined room; the room's reflected copy arrives as a native event."""

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None) -> OutboundRecord:
        """Publish one item to a PubSub node (XEP-0060); the iq result or error arrives as a native event."""
