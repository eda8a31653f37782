"""Stanza parsing: real Prosody/slixmpp stanza shapes, and hostile XML refused quickly."""

from datetime import UTC, datetime

import pytest

from captured_stanzas import (
    BLOCKED,
    DISPLAYED,
    MALFORMED_BOUNCE,
    MUC_ECHO,
    OFFLINE_DELIVERY,
    PRESENCE_AWAY,
    PUBSUB_HEADLINE,
    RECEIPT,
    REPLY,
)
from xmpp_connect.xmpp.stanzas import (
    MucUserView,
    PubSubView,
    StanzaIdView,
    parse_stanza,
)
from xmpp_connect.xmpp.untrusted_xml import MAX_DEPTH, MAX_ELEMENTS, MAX_STANZA_BYTES, StanzaRejected

# Captured from Prosody 0.12.3 through slixmpp 1.17 (str(stanza): no top-level xmlns).
OUTBOUND_AS_DELIVERED = (
    '<message xml:lang="en" type="chat" from="alice@localhost/adapter" to="bob@localhost" id="xc-1">'
    "<body>Please acknowledge incident 42</body><thread>xc-1</thread>"
    '<origin-id xmlns="urn:xmpp:sid:0" id="xc-1" /><request xmlns="urn:xmpp:receipts" />'
    '<markable xmlns="urn:xmpp:chat-markers:0" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="bob@localhost" id="fOmZ7Yi5OrT2-Wxr0tzOKbY1" /></message>'
)
MUC_JOIN_PRESENCE = (
    '<presence to="alice@localhost/adapter" xml:lang="en" from="ops@conference.localhost/bobby">'
    '<occupant-id xmlns="urn:xmpp:occupant-id:0" id="UYTFwkwm9e6zkoLJFsB6LSZwaaORf2b5KJPUyOkPl/g=" />'
    '<x xmlns="http://jabber.org/protocol/muc#user"><item role="participant" jid="bob@localhost/phone"'
    ' affiliation="none" /><status code="110" /></x></presence>'
)
PUBSUB_PUBLISH_RESULT = (
    '<iq to="admin@localhost/x" type="result" id="d642" from="pubsub.localhost">'
    '<pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="incidents"><item id="xc-10" />'
    "</publish></pubsub></iq>"
)
DISCO_RESULT = (
    '<iq to="alice@localhost/adapter" xml:lang="en" type="result" id="c556" from="bob@localhost/phone">'
    '<query xmlns="http://jabber.org/protocol/disco#info"><identity type="bot" category="client" />'
    '<feature var="http://jabber.org/protocol/disco#info" /><feature var="urn:xmpp:receipts" />'
    '<feature var="urn:xmpp:chat-markers:0" /></query></iq>'
)


def test_outbound_as_delivered_carries_ids_and_requests() -> None:
    view = parse_stanza(OUTBOUND_AS_DELIVERED)
    assert (view.name, view.type, view.id) == ("message", "chat", "xc-1")
    assert (view.from_attr, view.to_attr) == ("alice@localhost/adapter", "bob@localhost")
    assert view.body == "Please acknowledge incident 42"
    assert view.thread == "xc-1"
    assert view.origin_id == "xc-1"
    assert view.receipt_requested and view.markable
    assert view.stanza_ids == (StanzaIdView(id="fOmZ7Yi5OrT2-Wxr0tzOKbY1", by="bob@localhost"),)


def test_receipt() -> None:
    view = parse_stanza(RECEIPT)
    assert view.receipt_received and view.receipt_id == "xc-1"
    assert view.type is None and view.body is None


def test_displayed_marker() -> None:
    view = parse_stanza(DISPLAYED)
    assert (view.marker, view.marker_id) == ("displayed", "xc-1")


def test_reply_with_reference_thread_and_chat_state() -> None:
    view = parse_stanza(REPLY)
    assert view.body == "ack"
    assert (view.reply_to, view.reply_id) == ("alice@localhost/adapter", "xc-1")
    assert view.thread == "xc-1"
    assert view.chat_state == "active"
    assert view.origin_id == "reply-1"


def test_bounce_keeps_the_malformed_from() -> None:
    view = parse_stanza(MALFORMED_BOUNCE)
    assert view.from_attr == "bad@@localhost"
    assert view.error is not None
    assert (view.error.type, view.error.condition) == ("modify", "jid-malformed")
    assert view.error.text == "The destination address is invalid: bad@@localhost"
    assert not view.error.blocked


def test_prosody_blocked_error() -> None:
    error = parse_stanza(BLOCKED).error
    assert error is not None
    assert (error.type, error.condition) == ("cancel", "not-acceptable")
    assert error.blocked
    assert error.app_conditions == ("{urn:xmpp:blocking:errors}blocked",)


def test_error_by_attribute() -> None:
    view = parse_stanza(
        '<message type="error" from="missing@conference.localhost" id="xc-8"><error type="cancel"'
        ' by="conference.localhost"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" /></error>'
        "</message>"
    )
    assert view.error is not None and view.error.by == "conference.localhost"


def test_offline_delivery_delay_stamp() -> None:
    view = parse_stanza(OFFLINE_DELIVERY)
    assert view.delayed
    assert view.delay_stamp == datetime(2026, 11, 22, 3, 34, 3, tzinfo=UTC)
    assert view.delay_from == "localhost"


def test_delay_with_bad_stamp_is_still_delayed() -> None:
    view = parse_stanza('<message><body>x</body><delay xmlns="urn:xmpp:delay" stamp="yesterday"/></message>')
    assert view.delayed and view.delay_stamp is None


def test_muc_echo_has_room_stanza_id() -> None:
    view = parse_stanza(MUC_ECHO)
    assert view.type == "groupchat"
    assert view.origin_id == "xc-7"
    assert view.stanza_ids == (StanzaIdView(id="CKoRMF5XzVzpy3Q9FYLbbOLf", by="ops@conference.localhost"),)


def test_muc_user_presence() -> None:
    view = parse_stanza(MUC_JOIN_PRESENCE)
    assert view.muc_user == MucUserView(
        status_codes=(110,), item_jid="bob@localhost/phone", item_role="participant", item_affiliation="none"
    )


def test_pubsub_headline_event() -> None:
    view = parse_stanza(PUBSUB_HEADLINE)
    assert view.type == "headline"
    assert view.pubsub_event == PubSubView(action="items", node="incidents", item_ids=("xc-10",))


def test_pubsub_publish_result() -> None:
    view = parse_stanza(PUBSUB_PUBLISH_RESULT)
    assert (view.name, view.type) == ("iq", "result")
    assert view.pubsub == PubSubView(action="publish", node="incidents", item_ids=("xc-10",))


def test_presence_show_priority_status() -> None:
    view = parse_stanza(PRESENCE_AWAY)
    assert (view.presence_show, view.presence_priority, view.presence_status) == ("away", 5, "at lunch")


@pytest.mark.parametrize("priority", ["high", "200", ""])
def test_unusable_priority_is_none(priority: str) -> None:
    assert parse_stanza(f"<presence><priority>{priority}</priority></presence>").presence_priority is None


def test_disco_features_and_identities() -> None:
    view = parse_stanza(DISCO_RESULT)
    assert "urn:xmpp:receipts" in view.disco_features
    assert "urn:xmpp:chat-markers:0" in view.disco_features
    assert view.disco_identities == (("client", "bot"),)


def test_jabber_client_namespace_and_bytes_input() -> None:
    raw = '<message xmlns="jabber:client" type="chat" id="u1"><body>grüße</body></message>'.encode()
    view = parse_stanza(raw)
    assert (view.name, view.body) == ("message", "grüße")


def test_payload_in_a_foreign_namespace_is_not_read_as_body() -> None:
    assert parse_stanza('<message><body xmlns="urn:example">x</body></message>').body is None


def _rejected_quickly(raw: str | bytes, reason: str) -> None:
    """Quickly: the reason shows that the check which refused it ran before any expansion or full parse
    (a duration would depend on the machine's load; a parser that hangs fails on the per-test timeout)."""
    with pytest.raises(StanzaRejected, match=reason) as caught:
        parse_stanza(raw)
    assert caught.value.reason


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + "]><message><body>&lol9;</body></message>"
)


def test_billion_laughs_is_rejected() -> None:
    _rejected_quickly(BILLION_LAUGHS, "document type declarations")


def test_external_entity_is_rejected() -> None:
    xxe = '<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><message><body>&x;</body></message>'
    _rejected_quickly(xxe, "document type declarations")


def test_ten_megabytes_is_rejected_before_parsing() -> None:
    _rejected_quickly("<message><body>" + "x" * 10_000_000 + "</body></message>", "larger than")
    _rejected_quickly(b"<message>" + b" " * 10_000_000 + b"</message>", "larger than")


def test_size_limit_counts_utf8_bytes() -> None:
    body = "é" * (MAX_STANZA_BYTES // 2 + 1)
    _rejected_quickly(f"<message><body>{body}</body></message>", "larger than")


def test_deep_nesting_is_rejected() -> None:
    _rejected_quickly("<message>" + "<x>" * 10_000 + "</x>" * 10_000 + "</message>", "nested deeper")


def test_depth_limit_is_exact() -> None:
    def nested(levels: int) -> str:
        return "<message>" + "<x>" * (levels - 1) + "</x>" * (levels - 1) + "</message>"

    assert parse_stanza(nested(MAX_DEPTH)).name == "message"
    _rejected_quickly(nested(MAX_DEPTH + 1), "nested deeper")


def test_too_many_elements_is_rejected() -> None:
    _rejected_quickly("<message>" + "<x/>" * MAX_ELEMENTS + "</message>", "more than")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("<message><body>unclosed</message>", "malformed XML"),
        ("", "malformed XML"),
        ("<message/><message/>", "malformed XML"),
        ('<r xmlns="urn:xmpp:sm:3"/>', "not a stanza"),
        ('<message xmlns="urn:example"/>', "not a stanza"),
    ],
)
def test_not_a_stanza(raw: str, reason: str) -> None:
    _rejected_quickly(raw, reason)
