"""Outbound message stanzas: a stable id that is also the XEP-0359 origin-id, receipt request, markable."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from xmpp_connect.correlation import OutboundRecord

CLIENT_NS = "jabber:client"
RECEIPTS_NS = "urn:xmpp:receipts"
MARKERS_NS = "urn:xmpp:chat-markers:0"
SID_NS = "urn:xmpp:sid:0"
MESSAGE_TYPES = frozenset({"chat", "normal"})


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


def message_xml(message: OutboundMessage, stanza_id: str) -> str:
    """The <message/> as XML text (what the raw evidence records); the thread defaults to the stanza id so
    replies in that thread correlate."""
    if message.message_type not in MESSAGE_TYPES:
        raise ValueError(f"one-to-one message type must be chat or normal, not {message.message_type!r}")
    parts = [
        f"<message xmlns='{CLIENT_NS}' to={quoteattr(message.to_jid)} type='{message.message_type}' "
        f"id={quoteattr(stanza_id)}><body>{escape(message.body)}</body>"
        f"<thread>{escape(message.thread or stanza_id)}</thread>"
        f"<origin-id xmlns='{SID_NS}' id={quoteattr(stanza_id)}/>"
    ]
    if message.request_receipt:
        parts.append(f"<request xmlns='{RECEIPTS_NS}'/>")
    if message.markable:
        parts.append(f"<markable xmlns='{MARKERS_NS}'/>")
    parts.append("</message>")
    return "".join(parts)


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
