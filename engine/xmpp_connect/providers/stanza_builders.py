"""Outbound stanzas: one-to-one and groupchat messages (a stable id that is also the XEP-0359 origin-id,
receipt request, markable) and PubSub publish requests (an item id that carries the correlation)."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.xmpp.untrusted_xml import parse_xml

CLIENT_NS = "jabber:client"
RECEIPTS_NS = "urn:xmpp:receipts"
MARKERS_NS = "urn:xmpp:chat-markers:0"
SID_NS = "urn:xmpp:sid:0"
PUBSUB_NS = "http://jabber.org/protocol/pubsub"
MESSAGE_TYPES = frozenset({"chat", "normal"})
GROUPCHAT = "groupchat"


@dataclass(frozen=True)
class OutboundMessage:
    """A one-to-one message the adapter is asked to send. ``stanza_id`` is generated when absent."""

    to_jid: str
    body: str
    message_type: str = "chat"
    request_receipt: bool = True
    markable: bool = False
    stanza_id: str | None = None
    thread: str | None = None
    message_id: str | None = None
    attempt_id: str | None = None


def new_stanza_id() -> str:
    """A globally unique id, used both as the stanza ``id`` and as the XEP-0359 origin-id."""
    return f"xc-{uuid.uuid4().hex}"


def endpoint_type_of(jid: str) -> str:
    """``full_jid`` when the address names a resource, else ``bare_jid`` (§9.4)."""
    return "full_jid" if "/" in jid else "bare_jid"


def _opening(to_jid: str, message_type: str, stanza_id: str, sender: str | None, namespace: str) -> str:
    sender_attr = f" from={_quoted(sender)}" if sender else ""
    return (f"<message xmlns={_quoted(namespace)} to={_quoted(to_jid)}{sender_attr} "
            f"type='{message_type}' id={_quoted(stanza_id)}>")


_QUOTEATTR_CHANGES = re.compile('[&<>"\n\r\t]')


def _quoted(value: str) -> str:
    """``quoteattr(value)``, which for a value without a character it escapes or quotes differently is the
    value in double quotes."""
    return quoteattr(value) if _QUOTEATTR_CHANGES.search(value) else f'"{value}"'


def message_xml(message: OutboundMessage, stanza_id: str, *, sender: str | None = None,
                namespace: str = CLIENT_NS) -> str:
    """The <message/> as XML text (what the raw evidence records); the thread defaults to the stanza id so
    replies in that thread correlate. A component passes its ``sender`` JID and its stream ``namespace``."""
    if message.message_type not in MESSAGE_TYPES:
        raise ValueError(f"one-to-one message type must be chat or normal, not {message.message_type!r}")
    parts = [
        _opening(message.to_jid, message.message_type, stanza_id, sender, namespace),
        f"<body>{escape(message.body)}</body>"
        f"<thread>{escape(message.thread or stanza_id)}</thread>"
        f"<origin-id xmlns='{SID_NS}' id={_quoted(stanza_id)}/>",
    ]
    if message.request_receipt:
        parts.append(f"<request xmlns='{RECEIPTS_NS}'/>")
    if message.markable:
        parts.append(f"<markable xmlns='{MARKERS_NS}'/>")
    parts.append("</message>")
    return "".join(parts)


def receipt_answer(request: ET.Element) -> ET.Element | None:
    """XEP-0184 §5: the receipt answering a one-to-one message that asked for one (it has an id and a
    sender, and is neither groupchat nor an error); None when the message asked for none."""
    sender, requested_id = request.get("from"), request.get("id")
    if not sender or not requested_id or request.get("type") in (GROUPCHAT, "error"):
        return None
    if request.find(f"{{{RECEIPTS_NS}}}request") is None:
        return None
    answer = ET.Element(f"{{{CLIENT_NS}}}message", {"to": sender, "id": new_stanza_id()})
    ET.SubElement(answer, f"{{{RECEIPTS_NS}}}received", {"id": requested_id})
    return answer


def groupchat_xml(message: OutboundMessage, stanza_id: str) -> str:
    """A groupchat <message/> to the room ``message.to_jid`` (a bare room JID). No receipt request: XEP-0184
    receipts do not map to occupants; markable when asked (occupants' markers name the room's stanza-id)."""
    if "/" in message.to_jid:
        raise ValueError("a groupchat message goes to the bare room JID, not to an occupant")
    parts = [
        _opening(message.to_jid, GROUPCHAT, stanza_id, None, CLIENT_NS),
        f"<body>{escape(message.body)}</body>"
        f"<thread>{escape(message.thread or stanza_id)}</thread>"
        f"<origin-id xmlns='{SID_NS}' id={_quoted(stanza_id)}/>",
    ]
    if message.markable:
        parts.append(f"<markable xmlns='{MARKERS_NS}'/>")
    parts.append("</message>")
    return "".join(parts)


def message_element(
    message: OutboundMessage, stanza_id: str, *, groupchat: bool = False
) -> ET.Element | None:
    """The tree parsing ``message_xml`` (or ``groupchat_xml``) gives, built without writing and parsing the
    text: the parser's line-end normalisation in element text, the attributes as written (their line ends
    are character references). None when a value holds a character XML cannot carry: only the parser says
    how that fails."""
    thread = message.thread or stanza_id
    if any(_NOT_XML.search(value) for value in (message.to_jid, stanza_id, message.body, thread)):
        return None
    message_type = GROUPCHAT if groupchat else message.message_type
    attributes = {"to": message.to_jid, "type": message_type, "id": stanza_id}
    root = ET.Element(f"{{{CLIENT_NS}}}message", attributes)
    ET.SubElement(root, f"{{{CLIENT_NS}}}body").text = _parsed_text(message.body)
    ET.SubElement(root, f"{{{CLIENT_NS}}}thread").text = _parsed_text(thread)
    ET.SubElement(root, f"{{{SID_NS}}}origin-id", {"id": stanza_id})
    if message.request_receipt and not groupchat:
        ET.SubElement(root, f"{{{RECEIPTS_NS}}}request")
    if message.markable:
        ET.SubElement(root, f"{{{MARKERS_NS}}}markable")
    return root


def message_wire(message: OutboundMessage, stanza_id: str, *, groupchat: bool = False) -> str:
    """The text slixmpp's send loop writes for ``message_element``'s tree (when it is not None) in a stream
    whose default namespace is jabber:client and that writes none of the message's namespaces with a
    prefix: the tree's values escaped as slixmpp escapes them, written without walking the tree."""
    message_type = GROUPCHAT if groupchat else message.message_type
    quoted_id = slixmpp_escape(stanza_id)
    parts = [
        f'<message to="{slixmpp_escape(message.to_jid)}" type="{slixmpp_escape(message_type)}" '
        f'id="{quoted_id}">',
        _text_element("body", message.body),
        _text_element("thread", message.thread or stanza_id),
        f'<origin-id xmlns="{SID_NS}" id="{quoted_id}" />',
    ]
    if message.request_receipt and not groupchat:
        parts.append(f'<request xmlns="{RECEIPTS_NS}" />')
    if message.markable:
        parts.append(f'<markable xmlns="{MARKERS_NS}" />')
    parts.append("</message>")
    return "".join(parts)


def _text_element(name: str, text: str) -> str:
    parsed = _parsed_text(text)
    return f"<{name}>{slixmpp_escape(parsed)}</{name}>" if parsed else f"<{name} />"


def slixmpp_escape(text: str) -> str:
    """slixmpp's ``escape`` (the five XML specials, each character on its own), with ``str.replace``."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "'" in text:
        text = text.replace("'", "&apos;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    return text


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _parsed_text(text: str) -> str | None:
    """Element text as the parser gives it back: CR LF and CR read as LF, empty text as None."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text or None


def build_message(message: OutboundMessage, stanza_id: str) -> ET.Element:
    """The <message/> element (parsed from ``message_xml``; ValueError for text XML cannot carry)."""
    try:
        return ET.fromstring(message_xml(message, stanza_id))
    except ET.ParseError as error:
        raise ValueError(f"message cannot be encoded as XML: {error}") from None


def record_for(message: OutboundMessage, stanza_id: str, sent_at: datetime) -> OutboundRecord:
    """What correlation needs to remember about a message once it is handed to the stream."""
    return OutboundRecord(
        stanza_id=stanza_id,
        to_jid=message.to_jid,
        endpoint_type=endpoint_type_of(message.to_jid),
        message_type=message.message_type,
        origin_id=stanza_id,
        message_id=message.message_id,
        attempt_id=message.attempt_id,
        receipt_requested=message.request_receipt,
        markable=message.markable,
        sent_at=sent_at,
    )


def groupchat_record_for(message: OutboundMessage, stanza_id: str, sent_at: datetime) -> OutboundRecord:
    """The record of a groupchat message: the room is the endpoint; no receipt was requested."""
    return OutboundRecord(
        stanza_id=stanza_id,
        to_jid=message.to_jid,
        endpoint_type="muc_room_jid",
        message_type=GROUPCHAT,
        origin_id=stanza_id,
        message_id=message.message_id,
        attempt_id=message.attempt_id,
        receipt_requested=False,
        markable=message.markable,
        sent_at=sent_at,
    )


@dataclass(frozen=True)
class PubSubItem:
    """One item to publish (XEP-0060). ``item_id`` carries the correlation: the subscribers' notifications
    and item fetches name it. ``payload_xml`` is one namespaced element."""

    service_jid: str
    node: str
    item_id: str
    payload_xml: str
    message_id: str | None = None
    attempt_id: str | None = None


def publish_xml(item: PubSubItem, stanza_id: str) -> str:
    """The publish <iq/>; ValueError (StanzaRejected) unless the payload is one namespaced XML element,
    parsed under the stanza parser's limits and then embedded as given."""
    if item.payload_xml.lstrip().startswith("<?"):
        raise ValueError("PubSub payload must be an element, without an XML declaration")
    payload = parse_xml(item.payload_xml)
    if not payload.tag.startswith("{"):
        raise ValueError("PubSub payload element needs a namespace")
    return (
        f"<iq xmlns='{CLIENT_NS}' type='set' to={quoteattr(item.service_jid)} id={quoteattr(stanza_id)}>"
        f"<pubsub xmlns='{PUBSUB_NS}'><publish node={quoteattr(item.node)}>"
        f"<item id={quoteattr(item.item_id)}>{item.payload_xml.strip()}</item>"
        "</publish></pubsub></iq>"
    )


def publish_record_for(item: PubSubItem, stanza_id: str, sent_at: datetime) -> OutboundRecord:
    """The record of a publish request: the iq id answers the result, the item id (as origin id) the
    subscriber-side evidence. The message type is ``normal``: a PubSub item is neither chat nor headline."""
    return OutboundRecord(
        stanza_id=stanza_id,
        to_jid=item.service_jid,
        endpoint_type="pubsub_node",
        message_type="normal",
        origin_id=item.item_id,
        message_id=item.message_id,
        attempt_id=item.attempt_id,
        sent_at=sent_at,
    )
