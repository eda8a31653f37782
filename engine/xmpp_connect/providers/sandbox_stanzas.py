"""The stanzas of the simulated network: what it reads from an outbound stanza, and the answers it writes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from defusedxml.ElementTree import ParseError, fromstring

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
        inner = f"<body>{xml_text(body)}</body>{reference}"
        if thread:
            inner += f"<thread>{xml_text(thread)}</thread>"
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


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
