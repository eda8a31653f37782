"""The send path's stanzas: a message to send becomes its record, its text (the raw evidence) and the
slixmpp stanza that is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from slixmpp.stanza import Message
from slixmpp.xmlstream import ET

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.providers.slixmpp_session import AccountClient
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    endpoint_type_of,
    groupchat_record_for,
    groupchat_xml,
    message_element,
    message_wire,
    message_xml,
    new_stanza_id,
    record_for,
)

Queued = tuple[Message, OutboundRecord, str]
"""The stanza to write, its record and its text (the raw evidence)."""


def chat_message(message: OutboundMessage, client: Callable[[], AccountClient]) -> Queued:
    """A one-to-one message."""
    stanza_id = message.stanza_id or new_stanza_id()
    record = record_for(message, stanza_id, datetime.now(UTC))
    raw = message_xml(message, stanza_id)
    element = message_element(message, stanza_id)
    wire = None if element is None else message_wire(message, stanza_id)
    return _stanza(raw, element, wire, client), record, raw


def groupchat_message(message: OutboundMessage, client: Callable[[], AccountClient]) -> Queued:
    """A groupchat message to a room."""
    stanza_id = message.stanza_id or new_stanza_id()
    record = groupchat_record_for(message, stanza_id, datetime.now(UTC))
    raw = groupchat_xml(message, stanza_id)
    element = message_element(message, stanza_id, groupchat=True)
    wire = None if element is None else message_wire(message, stanza_id, groupchat=True)
    return _stanza(raw, element, wire, client), record, raw


class WrittenMessage(Message):
    """A message of the send path with ``wire``, the text slixmpp's send loop writes for it in a stream that
    prefixes none of its namespaces (``message_wire``), or None when only its tree says."""

    wire: str | None = None


def _stanza(raw: str, element: ET.Element | None, wire: str | None,
            client: Callable[[], AccountClient]) -> Message:
    """The stanza of the tree built beside the text (the same tree as the text's: tests/test_send_path.py), or
    of the parsed text when none could be."""
    if element is None:
        try:
            element = ET.fromstring(raw)
        except ET.ParseError as error:
            raise ValueError(f"message cannot be encoded as XML: {error}") from None
    # recv=True: Message() would look the id up to set a new one when there is none; these have theirs.
    stanza = WrittenMessage(stream=client(), xml=element, recv=True)
    stanza.wire = wire
    return stanza


def prebuilt_message(xml: str, stanza_id: str, to_jid: str, client: Callable[[], AccountClient]) -> Queued:
    """A prebuilt <message/> as is: for addresses the JID parser refuses (they need evidence too)."""
    element = ET.fromstring(xml)
    record = OutboundRecord(
        stanza_id=stanza_id,
        to_jid=to_jid,
        endpoint_type=endpoint_type_of(to_jid),
        message_type=element.get("type", "normal"),
        origin_id=stanza_id,
        receipt_requested=element.find("{urn:xmpp:receipts}request") is not None,
        markable=element.find("{urn:xmpp:chat-markers:0}markable") is not None,
        sent_at=datetime.now(UTC),
    )
    return Message(stream=client(), xml=element), record, xml
