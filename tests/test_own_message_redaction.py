"""The redaction of our own sent messages made from their text (xmpp/own_message_redaction.py) gives the
same bytes, so the same digest, as redaction through the parser, for every shape the send path writes."""

from __future__ import annotations

import hashlib
import random

import pytest

from xmpp_connect.providers.stanza_builders import OutboundMessage, groupchat_xml, message_xml
from xmpp_connect.xmpp.own_message_redaction import redact_own_message
from xmpp_connect.xmpp.redaction import UNPARSEABLE, redact_parsed, redact_stanza

AWKWARD = [
    "Incident 42: please acknowledge.",
    "",
    " ",
    "<b>bold</b> & 'quoted' \"double\" ]]> ]] >",
    "&amp; &lt; &#38; &unknown; <![CDATA[x]]> <!-- c --> <?pi x?>",
    "line one\nline two\r\nline three\rend\t\ttab",
    "naïve café – Ünïcödé 日本語 emoji 🚨🔥 \u200b zero-width \u00a0 nbsp",
    "body </body><body>second</body>",
    "x" * 20_000,
    "🚨" * 3_000 + "\n" * 100,
    "C1 \x85 \x9f controls, DEL \x7f",
    "\ufffd replacement",
]
THREADS = [None, "thread-1", "t <&> \"'", "multi\nline\ttab", "cr\r\nlf", "日本語 🧵", " "]
RECIPIENTS = ["bob@localhost", "bob@example.net/phone", "o'brien@example.net", 'quote"d@example.net',
              "bob@example.net/res with spaces", "ünï@example.net/日本", "bob@example.net/a\tb",
              "bob@example.net/a&b", "bob@example.net/<x>", ""]
STANZA_IDS = ["xc-0123456789abcdef0123456789abcdef", "x", "id'with'quotes", 'id"dq', "id&amp", "id\nnl"]


def _messages() -> list[str]:
    texts = []
    for body in AWKWARD:
        for request_receipt, markable in ((True, False), (False, False), (True, True), (False, True)):
            texts.append(message_xml(OutboundMessage("bob@localhost", body, request_receipt=request_receipt,
                                                     markable=markable), "xc-1"))
            texts.append(groupchat_xml(OutboundMessage("room@conference.localhost", body, markable=markable),
                                       "xc-2"))
    choice = random.Random(17)
    for _ in range(600):
        message = OutboundMessage(
            choice.choice(RECIPIENTS), choice.choice(AWKWARD)[:300], choice.choice(("chat", "normal")),
            request_receipt=choice.random() < 0.5, markable=choice.random() < 0.5,
            thread=choice.choice(THREADS),
        )
        sender = choice.choice((None, "notify.example.net", "comp'o\"nent.example.net"))
        namespace = "jabber:component:accept" if sender else "jabber:client"
        texts.append(message_xml(message, choice.choice(STANZA_IDS), sender=sender, namespace=namespace))
    return texts


MESSAGES = _messages()


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
