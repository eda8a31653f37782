"""The provider's shortcuts give what the paths they replace give: native events, message ids, stanzas."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from slixmpp import ClientXMPP
from slixmpp.stanza import Message

from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.native_events import native_event
from xmpp_connect.providers.slixmpp_messages import chat_message
from xmpp_connect.providers.slixmpp_outbound import message_id
from xmpp_connect.providers.stanza_builders import OutboundMessage, receipt_answer
from xmpp_connect.xmpp.stanzas import parse_stanza


@pytest.mark.parametrize("raw", [None, "<message xmlns='jabber:client' id='a'/>"])
def test_a_native_event_is_the_one_its_constructor_builds(raw: str | None) -> None:
    view = parse_stanza(raw) if raw else None
    event = native_event("stanza_received", "acct", raw, "a", {"k": 1}, view)
    built = NativeEvent(kind="stanza_received", account="acct", observed_at=event.observed_at, raw=raw,
                        stanza_id="a", detail={"k": 1}, view=view)
    assert event == built and vars(event) == vars(built)
    assert list(vars(event)) == [field.name for field in fields(NativeEvent)]
    assert event.observed_at.tzinfo is UTC and event.observed_at <= datetime.now(UTC)
    with pytest.raises(AttributeError):
        event.kind = "other"  # type: ignore[misc]


@pytest.mark.parametrize("xml", [
    "<message xmlns='jabber:client' id='xc-1'/>",
    "<message xmlns='jabber:client' id=''/>",
    "<message xmlns='jabber:client'/>",
    "<message xmlns='jabber:client' id='a&amp;b'><body>x</body></message>",
])
def test_a_message_id_is_what_the_stanza_interface_reads(xml: str) -> None:
    client = ClientXMPP("alice@localhost/adapter", "secret")
    stanza = Message(stream=client, xml=ET.fromstring(xml), recv=True)
    assert message_id(stanza) == stanza["id"]


def test_the_stanzas_the_provider_builds_keep_their_ids() -> None:
    """Message() built without looking the id up (recv=True): the one it would have built."""
    client = ClientXMPP("alice@localhost/adapter", "secret")
    stanza, record, _ = chat_message(OutboundMessage("bob@localhost", "hi", stanza_id="xc-7"),
                                     lambda: client)  # type: ignore[arg-type, return-value]
    assert stanza["id"] == record.stanza_id == "xc-7"
    assert str(stanza) == str(Message(stream=client, xml=stanza.xml))
    request = ET.fromstring("<message xmlns='jabber:client' from='bob@localhost/phone' id='m-1'>"
                            "<request xmlns='urn:xmpp:receipts'/></message>")
    answer = receipt_answer(request)
    assert answer is not None and answer.get("id")
