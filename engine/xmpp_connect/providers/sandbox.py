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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from defusedxml.ElementTree import ParseError, fromstring

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.base import ChannelHealth, EventSink, Feature, RoomJoin
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    build_message,
    endpoint_type_of,
    new_stanza_id,
    record_for,
)

DOMAIN = "sandbox.invalid"
ROOM_SERVICE = f"conference.{DOMAIN}"
PUBSUB_SERVICE = f"pubsub.{DOMAIN}"
ROOM_JID = f"ops@{ROOM_SERVICE}"
NODE = "events"

NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DELAY = "urn:xmpp:delay"
NS_STANZA_ID = "urn:xmpp:sid:0"
NS_CLIENT = "jabber:client"

# §24: every defined stanza error condition with the type a server typically sends it with.
ERROR_CONDITIONS: dict[str, str] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "payment-required": "auth",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}

# The magic recipients and what each does; the README's table is this text.
BEHAVIOURS: dict[str, str] = {
    "delivered": "online; the server acks, the client returns a XEP-0184 receipt",
    "displayed": "online; receipt, then a XEP-0333 displayed marker",
    "replies-ack": "online; receipt, then replies 'ACK' (XEP-0461 reply to the message)",
    "replies-text": "online; receipt, then replies with free text",
    "offline": "offline: the server stores it; the recipient comes online later and sends a delayed receipt",
    "blocked": "the server refuses: cancel/not-acceptable with urn:xmpp:blocking:errors",
    "no-receipts": "online, but its client never sends receipts or markers (server ack only)",
    "late-receipt": "online; the receipt arrives only after the adapter's receipt timeout",
    "two-devices": "online on two resources (phone, laptop); each returns its own receipt",
    "error-<condition>": "the server answers with that §24 stanza error, e.g. error-item-not-found",
    "anything-else": "no such account: cancel/service-unavailable (as Prosody answers for unknown users)",
}
ONLINE_RESOURCES: dict[str, tuple[str, ...]] = {
    "delivered": ("phone",),
    "displayed": ("phone",),
    "replies-ack": ("phone",),
    "replies-text": ("phone",),
    "no-receipts": ("legacy",),
    "late-receipt": ("phone",),
    "two-devices": ("phone", "laptop"),
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxTiming:
    """Seconds between the adapter's send and each simulated answer."""

    ack: float = 0.001
    receipt: float = 0.005
    displayed: float = 0.02
    reply: float = 0.03
    offline_delivery: float = 2.0
    late_receipt: float = 310.0


@dataclass(frozen=True)
class Outbound:
    """What the sandbox reads from an outbound stanza."""

    kind: str
    stanza_id: str
    to: str
    sender: str
    message_type: str
    receipt_requested: bool
    markable: bool
    thread: str | None
    node: str | None = None
    item_id: str | None = None


def parse_outbound(xml: str) -> Outbound | None:
    """The fields the simulated network answers from; None for XML it cannot read."""
    try:
        root = fromstring(xml)
    except ParseError:
        return None
    kind = root.tag.rpartition("}")[2]
    node = item_id = None
    if kind == "iq":
        publish = root.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
        if publish is not None:
            node = publish.get("node")
            item = publish.find(f"{{{NS_PUBSUB}}}item")
            item_id = None if item is None else item.get("id")
    thread = next((c.text for c in root if c.tag.rpartition("}")[2] == "thread"), None)
    return Outbound(
        kind=kind,
        stanza_id=root.get("id", ""),
        to=root.get("to", ""),
        sender=root.get("from", ""),
        message_type=root.get("type", "normal"),
        receipt_requested=root.find(f"{{{NS_RECEIPTS}}}request") is not None,
        markable=root.find(f"{{{NS_MARKERS}}}markable") is not None,
        thread=thread,
        node=node,
        item_id=item_id,
    )


class StanzaWriter:
    """Builds the inbound stanzas the simulated recipients and servers send."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"sbx-{prefix}-{next(self._ids)}"

    def receipt(self, sender: str, to: str, original_id: str, delay_from: str | None = None) -> str:
        inner = f"<received xmlns='{NS_RECEIPTS}' id={quoteattr(original_id)}/>" + self._delay(delay_from)
        return self._message(sender, to, self.next_id("rcpt"), "chat", inner)

    def displayed(self, sender: str, to: str, original_id: str) -> str:
        inner = f"<displayed xmlns='{NS_MARKERS}' id={quoteattr(original_id)}/>"
        return self._message(sender, to, self.next_id("mark"), "chat", inner)

    def reply(self, sender: str, to: str, original_id: str, body: str, thread: str | None) -> str:
        reference = f"<reply xmlns='{NS_REPLY}' to={quoteattr(to)} id={quoteattr(original_id)}/>"
        inner = f"<body>{_text(body)}</body>{reference}"
        if thread:
            inner += f"<thread>{_text(thread)}</thread>"
        inner += f"<markable xmlns='{NS_MARKERS}'/>"
        return self._message(sender, to, self.next_id("reply"), "chat", inner)

    def error(
        self, kind: str, sender: str, to: str, original_id: str, condition: str, blocked: bool = False
    ) -> str:
        error_type = ERROR_CONDITIONS[condition]
        extra = f"<blocked xmlns='{NS_BLOCKING_ERRORS}'/>" if blocked else ""
        return (
            f"<{kind} xmlns='jabber:client' type='error' from={quoteattr(sender)} to={quoteattr(to)}"
            f" id={quoteattr(original_id)}><error type='{error_type}'><{condition} xmlns='{NS_STANZAS}'/>"
            f"{extra}</error></{kind}>"
        )

    def presence(self, sender: str, to: str, available: bool) -> str:
        kind = "" if available else " type='unavailable'"
        return f"<presence xmlns='jabber:client' from={quoteattr(sender)} to={quoteattr(to)}{kind}/>"

    def room_reflection(self, room: str, nick: str, to: str, original_id: str, body_xml: str) -> str:
        stanza_id = self.next_id("room")
        inner = (
            f"{body_xml}<stanza-id xmlns='{NS_STANZA_ID}' by={quoteattr(room)} id={quoteattr(stanza_id)}/>"
        )
        return self._message(f"{room}/{nick}", to, original_id, "groupchat", inner)

    def publish_result(self, service: str, to: str, original_id: str, node: str, item_id: str) -> str:
        return (
            f"<iq xmlns='jabber:client' type='result' from={quoteattr(service)} to={quoteattr(to)}"
            f" id={quoteattr(original_id)}><pubsub xmlns='{NS_PUBSUB}'><publish node={quoteattr(node)}>"
            f"<item id={quoteattr(item_id)}/></publish></pubsub></iq>"
        )

    def _message(self, sender: str, to: str, stanza_id: str, message_type: str, inner: str) -> str:
        return (
            f"<message xmlns='jabber:client' from={quoteattr(sender)} to={quoteattr(to)}"
            f" id={quoteattr(stanza_id)} type='{message_type}'>{inner}</message>"
        )

    def _delay(self, delay_from: str | None) -> str:
        if delay_from is None:
            return ""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"<delay xmlns='{NS_DELAY}' from={quoteattr(delay_from)} stamp='{stamp}'/>"


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Answer:
    """One simulated observation, ``delay`` seconds after the send."""

    delay: float
    kind: str
    raw: str | None = None
    stanza_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


class SandboxNetwork:
    """The behaviour table: an outbound stanza in, the answers the simulated network gives out."""

    def __init__(self, timing: SandboxTiming | None = None) -> None:
        self.timing = timing or SandboxTiming()
        self.writer = StanzaWriter()

    def roster(self) -> list[str]:
        """The sandbox account's contacts: every recipient that has presence, mutually subscribed."""
        return [*(f"{local}@{DOMAIN}" for local in ONLINE_RESOURCES), f"offline@{DOMAIN}"]

    def presence_snapshot(self, account_jid: str) -> list[str]:
        """The presence the sandbox roster sends when a session starts."""
        out = [
            self.writer.presence(f"{local}@{DOMAIN}/{resource}", account_jid, True)
            for local, resources in ONLINE_RESOURCES.items()
            for resource in resources
        ]
        out.append(self.writer.presence(f"offline@{DOMAIN}", account_jid, False))
        return out

    def answer(self, xml: str, account_jid: str) -> list[Answer]:
        """The answers to one outbound stanza sent by ``account_jid``."""
        out = parse_outbound(xml)
        if out is None or not out.stanza_id:
            return []
        if not out.sender:
            out = replace(out, sender=account_jid)
        answers = [Answer(self.timing.ack, "sm_ack", stanza_id=out.stanza_id)]
        if out.kind == "iq":
            return answers + self._pubsub(out)
        local, _, rest = out.to.partition("@")
        domain = rest.partition("/")[0] if rest else local.partition("/")[0]
        if not rest:
            local = ""
        if domain == ROOM_SERVICE:
            return answers + self._room(out, out.to.partition("/")[0])
        if domain != DOMAIN:
            return [*answers, self._error(out, "remote-server-not-found", sender=domain)]
        return answers + self._recipient(out, local)

    def _recipient(self, out: Outbound, local: str) -> list[Answer]:
        bare = f"{local}@{DOMAIN}"
        t = self.timing
        if local.startswith("error-") and local[6:] in ERROR_CONDITIONS:
            return [self._error(out, local[6:], sender=bare)]
        if local == "blocked":
            return [self._error(out, "not-acceptable", sender=bare, blocked=True)]
        if local == "offline":
            return self._receipts(out, bare, ("phone",), t.offline_delivery, delayed=True, comes_online=True)
        if local == "late-receipt":
            return self._receipts(out, bare, ("phone",), t.late_receipt)
        if local not in ONLINE_RESOURCES:
            return [self._error(out, "service-unavailable", sender=bare)]
        if local == "no-receipts":
            return []
        answers = self._receipts(out, bare, ONLINE_RESOURCES[local], t.receipt)
        full = f"{bare}/{ONLINE_RESOURCES[local][0]}"
        if local == "displayed" and out.markable:
            answers.append(self._inbound(t.displayed, self.writer.displayed(full, out.sender, out.stanza_id)))
        if local in ("replies-ack", "replies-text"):
            body = "ACK" if local == "replies-ack" else "Thanks, I will look at it tomorrow."
            answers.append(
                self._inbound(t.reply, self.writer.reply(full, out.sender, out.stanza_id, body, out.thread))
            )
        return answers

    def _receipts(
        self,
        out: Outbound,
        bare: str,
        resources: tuple[str, ...],
        delay: float,
        delayed: bool = False,
        comes_online: bool = False,
    ) -> list[Answer]:
        answers = []
        if comes_online:
            presence = self.writer.presence(f"{bare}/{resources[0]}", out.sender, True)
            answers.append(self._inbound(delay, presence))
        if out.receipt_requested:
            for resource in resources:
                stanza = self.writer.receipt(
                    f"{bare}/{resource}", out.sender, out.stanza_id, delay_from=DOMAIN if delayed else None
                )
                answers.append(self._inbound(delay, stanza))
        return answers

    def _room(self, out: Outbound, room: str) -> list[Answer]:
        if room != ROOM_JID:
            return [self._error(out, "item-not-found", sender=room)]
        if out.message_type != "groupchat":
            return [self._error(out, "not-acceptable", sender=room)]
        body = f"<body>{_text('(room copy)')}</body>"
        reflection = self.writer.room_reflection(room, "adapter", out.sender, out.stanza_id, body)
        return [self._inbound(self.timing.receipt, reflection)]

    def _pubsub(self, out: Outbound) -> list[Answer]:
        if out.to != PUBSUB_SERVICE or out.node is None:
            return [self._error(out, "service-unavailable", sender=out.to or DOMAIN)]
        if out.node != NODE:
            return [self._error(out, "item-not-found", sender=out.to)]
        item_id = out.item_id or self.writer.next_id("item")
        result = self.writer.publish_result(out.to, out.sender, out.stanza_id, out.node, item_id)
        return [self._inbound(self.timing.receipt, result)]

    def _error(self, out: Outbound, condition: str, sender: str, blocked: bool = False) -> Answer:
        raw = self.writer.error(out.kind, sender, out.sender, out.stanza_id, condition, blocked=blocked)
        return self._inbound(self.timing.receipt, raw)

    def _inbound(self, delay: float, raw: str) -> Answer:
        return Answer(delay, "stanza_received", raw=raw)


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
            f" type='groupchat' id={quoteattr(stanza_id)}><body>{_text(message.body)}</body>"
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
    ) -> OutboundRecord:
        """One node exists: ``events`` on ``pubsub.sandbox.invalid``; publishing elsewhere fails."""
        stanza_id = new_stanza_id()
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
            stream_status="connected" if up else "disconnected",
            authentication_status="authenticated" if up else "unknown",
            tls_status="active" if up else "unknown",
            server_reachability="healthy" if up else "unknown",
            supported_extensions=("xep-0184", "xep-0333", "xep-0198", "xep-0045", "xep-0060", "xep-0461"),
            known_degradations=("simulated network (sandbox provider): evidence is not from a real server",),
        )

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
