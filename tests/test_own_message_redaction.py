"""The redaction of our own sent messages made from their text (xmpp/own_message_redaction.py) gives the
same bytes, so the same digest, as redaction through the parser, for every shape the send path writes."""

from __future__ import annotations

import hashlib

import pytest

from awkward_messages import AWKWARD, awkward_messages
from xmpp_connect.providers.stanza_builders import OutboundMessage, message_xml
from xmpp_connect.xmpp.own_message_redaction import redact_own_message
from xmpp_connect.xmpp.redaction import UNPARSEABLE, redact_parsed, redact_stanza

MESSAGES = [case.text for case in awkward_messages()]


def test_every_message_the_send_path_writes_is_redacted_to_the_same_bytes_and_digest() -> None:
    taken = 0
    for text in MESSAGES:
        parsed = redact_parsed(text)
        assert redact_stanza(text) == parsed, text
        assert hashlib.sha256(redact_stanza(text).encode()).hexdigest() == hashlib.sha256(
            parsed.encode()).hexdigest()
        fast = redact_own_message(text)
        if fast is not None:
            assert fast == parsed
            taken += 1
    assert 100 < taken < len(MESSAGES) - 100  # both ways were compared, many times each


@pytest.mark.parametrize("body", AWKWARD)
def test_an_ordinary_message_is_redacted_without_the_parser(body: str) -> None:
    text = message_xml(OutboundMessage("bob@localhost", body, markable=True), "xc-0123456789abcdef")
    redacted = redact_own_message(text)
    assert redacted is not None and redacted == redact_parsed(text)
    assert "body" not in redacted


@pytest.mark.parametrize(
    "text",
    [
        # Not our shape, or not well-formed: the parser decides (placeholder, or the general redaction).
        "<message xmlns=\"jabber:client\" to='a' type='chat' id='x'><body>&bogus;</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a' type='chat' id='x'><body>a ]]> b</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a' type='chat' id='x'><body>\x01</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a' type='chat' id='x'><body>b</body><thread></thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a' type='chat' id='x'><body>b</body><thread>a > b</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a\nb' type='chat' id='x'><body>b</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"urn:other\" to='a' type='chat' id='x'><body>b</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        "<message xmlns=\"jabber:client\" to='a' type='headline' id='x'><body>b</body><thread>t</thread>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
        '<message xmlns="jabber:client" to="a" type="chat" id="x"><body>b</body></message>',
    ],
)
def test_other_texts_go_through_the_parser(text: str) -> None:
    assert redact_own_message(text) is None
    assert redact_stanza(text) == (redact_parsed(text) if "\x01" not in text and "&bogus" not in text
                                   and "]]>" not in text else UNPARSEABLE)
