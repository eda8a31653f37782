"""The sandbox provider: an in-process simulated XMPP network whose magic recipient JIDs pick a behaviour.

Like a payment provider's test card numbers: ``delivered@sandbox.invalid`` sends a receipt,
``error-forbidden@…`` answers with a stanza error, and so on (``BEHAVIOURS``). Every answer is real stanza
XML handed to the same sink the real provider feeds, so it goes through the same parsing, facts, rules and
store. It never replaces the tests against a real Prosody.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.base import ChannelHealth, EventSink, Feature, RoomJoin
from xmpp_connect.providers.sandbox_network import DOMAIN, ROOM_JID, Answer, SandboxNetwork
from xmpp_connect.providers.sandbox_stanzas import (
    NS_CLIENT,
    NS_MARKERS,
    NS_PUBSUB,
    NS_RECEIPTS,
    NS_STANZA_ID,
    xml_text,
)
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    build_message,
    endpoint_type_of,
    new_stanza_id,
    record_for,
)

log = logging.getLogger(__name__)


class SandboxProvider:
    """An XmppProvider (§22) whose server is the ``SandboxNetwork``; native events go to ``sink``."""

    provider_name = "sandbox"
    supported_features = frozenset(
        {
            Feature.CLIENT_TO_SERVER,
            Feature.DELIVERY_RECEIPTS,
            Feature.DISPLAYED_MARKERS,
            Feature.STREAM_MANAGEMENT,
            Feature.MULTI_USER_CHAT,
            Feature.PUBSUB,
        }
    )

    def __init__(
        self, account: str, jid: str, sink: EventSink, network: SandboxNetwork | None = None
    ) -> None:
        self.provider_account_ref = account
        self.jid = jid
        self.sink = sink
        self.network = network or SandboxNetwork()
        self.connected = False
        self._pending: dict[int, asyncio.TimerHandle] = {}
        self._keys = itertools.count()

    async def start(self) -> bool:
        """The simulated session is up at once."""
        self.connected = True
        self._emit(Answer(0, "stream_connected", detail={"tls": "active", "simulated": True}))
        self._emit(Answer(0, "authenticated"))
        for contact in self.network.roster():
            self._emit(Answer(0, "roster", detail={"jid": contact, "subscription": "both"}))
        for raw in self.network.presence_snapshot(self.jid):
            self._emit(Answer(0, "stanza_received", raw=raw))
        return True

    async def stop(self) -> None:
        self.connected = False
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def send_message(self, message: OutboundMessage) -> OutboundRecord:
        stanza_id = message.stanza_id or new_stanza_id()
        stanza = build_message(message, stanza_id)
        stanza.set("from", self.jid)
        self._send(ET.tostring(stanza, encoding="unicode"), stanza_id)
        return record_for(message, stanza_id, datetime.now(UTC))

    def send_raw_message(self, xml: str, stanza_id: str, to_jid: str) -> OutboundRecord:
        """Send prebuilt XML (a groupchat message, a PubSub publish iq) from this account."""
        self._send(xml, stanza_id)
        return OutboundRecord(
            stanza_id=stanza_id,
            to_jid=to_jid,
            endpoint_type=endpoint_type_of(to_jid),
            sent_at=datetime.now(UTC),
        )

    async def join_room(
        self,
        room_jid: str,
        nick: str,
        password: str | None = None,
        *,
        message_id: str | None = None,
        attempt_id: str | None = None,
    ) -> RoomJoin:
        """One room exists, ``ops@conference.sandbox.invalid`` (semi-anonymous); joining others fails."""
        if room_jid != ROOM_JID:
            return RoomJoin(room_jid, nick, joined=False, error_condition="item_not_found")
        return RoomJoin(room_jid, nick, joined=True, room_anonymity="semi_anonymous")

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        stanza_id = message.stanza_id or new_stanza_id()
        xml = (
            f"<message xmlns='{NS_CLIENT}' to={quoteattr(message.to_jid)} from={quoteattr(self.jid)}"
            f" type='groupchat' id={quoteattr(stanza_id)}><body>{xml_text(message.body)}</body>"
            f"<origin-id xmlns='{NS_STANZA_ID}' id={quoteattr(stanza_id)}/></message>"
        )
        self._send(xml, stanza_id)
        return OutboundRecord(
            stanza_id=stanza_id,
            to_jid=message.to_jid,
            endpoint_type="muc_room_jid",
            message_type="groupchat",
            origin_id=stanza_id,
            message_id=message.message_id,
            attempt_id=message.attempt_id,
            sent_at=datetime.now(UTC),
        )

    def publish(
        self,
        service_jid: str,
        node: str,
        item_id: str,
        payload_xml: str,
        message_id: str | None = None,
        attempt_id: str | None = None,
        *,
        stanza_id: str | None = None,
    ) -> OutboundRecord:
        """One node exists: ``events`` on ``pubsub.sandbox.invalid``; publishing elsewhere fails."""
        stanza_id = stanza_id or new_stanza_id()
        xml = (
            f"<iq xmlns='{NS_CLIENT}' type='set' to={quoteattr(service_jid)} from={quoteattr(self.jid)}"
            f" id={quoteattr(stanza_id)}><pubsub xmlns='{NS_PUBSUB}'><publish node={quoteattr(node)}>"
            f"<item id={quoteattr(item_id)}>{payload_xml}</item></publish></pubsub></iq>"
        )
        self._send(xml, stanza_id)
        return OutboundRecord(
            stanza_id=stanza_id,
            to_jid=service_jid,
            endpoint_type="pubsub_node",
            message_type="normal",
            message_id=message_id,
            attempt_id=attempt_id,
            sent_at=datetime.now(UTC),
        )

    async def discover(self, jid: str) -> None:
        """disco#info of a sandbox JID: every client advertises receipts and markers but ``no-receipts@``.
        The answer is a ``capabilities`` native event carrying the disco#info result stanza."""
        features = ["http://jabber.org/protocol/disco#info"]
        if not jid.startswith("no-receipts@"):
            features += [NS_RECEIPTS, NS_MARKERS]
        children = "".join(f"<feature var={quoteattr(f)}/>" for f in features)
        raw = (
            f"<iq xmlns='{NS_CLIENT}' type='result' from={quoteattr(jid)} to={quoteattr(self.jid)}"
            f" id={quoteattr(self.network.writer.next_id('disco'))}>"
            f"<query xmlns='http://jabber.org/protocol/disco#info'>{children}</query></iq>"
        )
        self._emit(Answer(0, "capabilities", raw=raw, detail={"jid": jid, "features": features}))

    def health(self) -> ChannelHealth:
        up = self.connected
        return ChannelHealth(
            xmpp_account_ref=self.provider_account_ref,
            server_ref=DOMAIN,
            status="healthy" if up else "failing",
            stream_status=self.stream_status(),
            authentication_status="authenticated" if up else "unknown",
            tls_status="active" if up else "unknown",
            server_reachability="healthy" if up else "unknown",
            supported_extensions=("xep-0184", "xep-0333", "xep-0198", "xep-0045", "xep-0060", "xep-0461"),
            known_degradations=("simulated network (sandbox provider): evidence is not from a real server",),
        )

    def stream_status(self) -> str:
        return "connected" if self.connected else "disconnected"

    def _send(self, xml: str, stanza_id: str) -> None:
        if not self.connected:
            raise ConnectionError("sandbox provider is not started")
        self._emit(Answer(0, "message_sent", raw=xml, stanza_id=stanza_id))
        loop = asyncio.get_running_loop()
        for answer in self.network.answer(xml, self.jid):
            key = next(self._keys)
            self._pending[key] = loop.call_later(answer.delay, self._fire, key, answer)

    def _fire(self, key: int, answer: Answer) -> None:
        self._pending.pop(key, None)
        self._emit(answer)

    def _emit(self, answer: Answer) -> None:
        event = NativeEvent(
            kind=answer.kind,
            account=self.provider_account_ref,
            observed_at=datetime.now(UTC),
            raw=answer.raw,
            stanza_id=answer.stanza_id,
            detail=dict(answer.detail),
        )
        try:
            self.sink(event)
        except Exception as exc:
            log.error("sandbox: the event sink failed on a %s event (%s)", answer.kind, type(exc).__name__)
