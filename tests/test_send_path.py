"""The send path builds each message's tree beside its text instead of parsing the text: the tree, and so
the bytes slixmpp writes, are the ones parsing the text gave."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import pytest
from slixmpp import ClientXMPP
from slixmpp.stanza import Iq, Message
from slixmpp.xmlstream.tostring import tostring

from awkward_messages import AWKWARD, RECIPIENTS, STANZA_IDS, awkward_messages
from xmpp_connect.providers.slixmpp_messages import WrittenMessage, chat_message, groupchat_message
from xmpp_connect.providers.slixmpp_text import as_written
from xmpp_connect.providers.stanza_builders import OutboundMessage, _quoted, message_element

CASES = [case for case in awkward_messages() if case.sender is None]


def _shape(element: ET.Element) -> tuple[object, ...]:
    return (element.tag, list(element.attrib.items()), element.text, element.tail,
            [_shape(child) for child in element])


def _wire(client: ClientXMPP, stanza: Message) -> str:
    """What slixmpp's send loop writes for a stanza."""
    return tostring(stanza.xml, xmlns=client.default_ns, stream=client, top_level=True)


def test_the_built_tree_is_the_parsed_text_for_every_awkward_message() -> None:
    for case in CASES:
        built = message_element(case.message, case.stanza_id, groupchat=case.groupchat)
        assert built is not None
        assert _shape(built) == _shape(ET.fromstring(case.text)), case.text


def test_slixmpp_writes_the_same_bytes_as_for_the_parsed_text() -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    for case in CASES:
        build = groupchat_message if case.groupchat else chat_message
        message = OutboundMessage(case.message.to_jid, case.message.body, case.message.message_type,
                                  case.message.request_receipt, case.message.markable, case.stanza_id,
                                  case.message.thread)
        stanza, record, text = build(message, lambda: client)  # type: ignore[arg-type]
        assert text == case.text and record.stanza_id == case.stanza_id
        assert _wire(client, stanza) == _wire(client, Message(stream=client, xml=ET.fromstring(text)))


@pytest.mark.parametrize("body", ["control \x01 character", "surrogate \ud800", "not a character \uffff"])
def test_a_message_xml_cannot_carry_is_refused_as_before(body: str) -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    message = OutboundMessage("bob@localhost", body, stanza_id="xc-1")
    assert message_element(message, "xc-1") is None
    with pytest.raises(ValueError):
        chat_message(message, lambda: client)  # type: ignore[arg-type]


def test_the_last_filter_writes_what_slixmpps_send_loop_writes() -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    write = as_written(client)
    for case in CASES:
        stanza = Message(stream=client, xml=ET.fromstring(case.text))
        assert write(stanza) == _wire(client, stanza), case.text
    receipt = Message(stream=client, xml=ET.fromstring(
        "<message xmlns='jabber:client' to='bob@localhost/phone' id='r1'>"
        "<received xmlns='urn:xmpp:receipts' id='xc-1'/></message>"))
    assert write(receipt) == _wire(client, receipt)


def test_other_stanzas_are_left_to_slixmpp() -> None:
    client, other = ClientXMPP("alice@localhost/adapter", "secret"), ClientXMPP("bob@localhost/x", "secret")
    write = as_written(client)
    iq = Iq(stream=client, stype="get", sto="localhost")
    foreign = Message(stream=other, xml=ET.fromstring(CASES[0].text))
    assert write(iq) is iq and write(foreign) is foreign


def test_attribute_values_are_quoted_as_quoteattr_quotes_them() -> None:
    values = [*RECIPIENTS, *STANZA_IDS, *AWKWARD, "a'b\"c", "'", '"', "\r\n\t", "jabber:client"]
    for value in values:
        assert _quoted(value) == quoteattr(value)


def test_a_send_path_message_is_written_as_its_wire_text_which_is_what_slixmpp_writes() -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    write = as_written(client)
    for case in CASES:
        build = groupchat_message if case.groupchat else chat_message
        message = OutboundMessage(case.message.to_jid, case.message.body, case.message.message_type,
                                  case.message.request_receipt, case.message.markable, case.stanza_id,
                                  case.message.thread)
        stanza, _, _ = build(message, lambda: client)  # type: ignore[arg-type]
        assert isinstance(stanza, WrittenMessage) and stanza.wire is not None
        assert write(stanza) is stanza.wire
        assert stanza.wire == _wire(client, stanza), case.text


def test_a_stream_that_prefixes_a_message_namespace_gets_slixmpps_text() -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    client.namespace_map["urn:xmpp:receipts"] = "receipts"
    stanza, _, _ = chat_message(OutboundMessage("bob@localhost", "hi", stanza_id="xc-1"),
                                lambda: client)  # type: ignore[arg-type]
    assert as_written(client)(stanza) == _wire(client, stanza) != stanza.wire  # type: ignore[attr-defined]
