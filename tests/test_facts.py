"""Facts from real stanzas: kind, correlation and sender fields, and every fact valid against the schema."""

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
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
from xmpp_connect.facts.build import NotEvidence, fact_for_event, fact_from_xml
from xmpp_connect.facts.presence import PresenceTracker, is_availability_evidence
from xmpp_connect.model.correlation import CorrelationContext, OutboundRecord, context_from_dict
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.xmpp.stanzas import StanzaRejected

SCHEMA = json.loads((Path(__file__).parents[1] / "spec" / "facts.schema.json").read_text())
COMMANDS = CommandTable.from_mapping(
    {
        "commands": [
            {"keywords": ["ACK", "OK", "CONFIRM", "YES"], "classification": "acknowledgement"},
            {"keywords": ["NO", "DECLINE"], "classification": "decline"},
            {"keywords": ["STOP", "UNSUBSCRIBE"], "classification": "stop"},
        ],
        "otherwise": "free_text",
    }
)

CHAT_OUT = OutboundRecord(
    stanza_id="xc-1", to_jid="bob@localhost", endpoint_type="bare_jid", origin_id="xc-1",
    receipt_requested=True, markable=True,
)
ROOM_OUT = OutboundRecord(
    stanza_id="xc-7", to_jid="ops@conference.localhost", endpoint_type="muc_room_jid",
    message_type="groupchat", origin_id="xc-7", markable=True,
)
# A PubSub publish: the iq id is the stanza id, the item id travels as origin id.
PUBSUB_OUT = OutboundRecord(
    stanza_id="d642", to_jid="pubsub.localhost", endpoint_type="pubsub_node", message_type="normal",
    origin_id="xc-10",
)
CHAT = CorrelationContext(outbound=CHAT_OUT, known_resources=frozenset({"bob@localhost/phone"}))
ROOM = CorrelationContext(outbound=ROOM_OUT)
PUBSUB = CorrelationContext(outbound=PUBSUB_OUT)
NONE = CorrelationContext()

# Stanzas captured from Prosody 0.12.3 through slixmpp 1.17 (str(stanza): no top-level xmlns).
COMPOSING = (
    '<message xml:lang="en" type="chat" from="bob@localhost/phone" to="alice@localhost" id="c-1">'
    '<composing xmlns="http://jabber.org/protocol/chatstates" /></message>'
)
NO_SUCH_USER = (
    '<message type="error" from="nobody@localhost" to="alice@localhost/adapter" id="xc-2">'
    '<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" />'
    '</error></message>'
)
MISSING_ROOM = (
    '<message type="error" from="missing@conference.localhost" to="alice@localhost/adapter" id="xc-8">'
    '<error type="cancel" by="conference.localhost">'
    '<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" /></error></message>'
)
MUC_OK = (
    ''
    '<message xml:lang="en" to="alice@localhost/adapter" type="groupchat"'
    ' from="ops@conference.localhost/bobby"'
    ' id="g-2"><body>OK</body>'
    '<occupant-id xmlns="urn:xmpp:occupant-id:0" id="LhqlsYdW0MUg5KUb2EMqm6dt7YYrpNZP7q9A6GlVEpk=" />'
    ''
    '<stanza-id xmlns="urn:xmpp:sid:0" by="ops@conference.localhost" id="2XPk5TrfkrpIcWaf_v_2R4fv" />'
    "</message>"
)
MUC_DISPLAYED = (
    '<message xml:lang="en" to="alice@localhost/adapter" type="groupchat"'
    ' from="ops@conference.localhost/bobby" id="g-3"><displayed xmlns="urn:xmpp:chat-markers:0" id="xc-7" />'
    ''
    '<stanza-id xmlns="urn:xmpp:sid:0" by="ops@conference.localhost" id="KV4sXw6VSb4SPKgKsMlTpOoq" />'
    "</message>"
)
MUC_HISTORY = (
    '<message xml:lang="en" from="ops@conference.localhost/bobby" to="carol@localhost/pc" type="groupchat"'
    ' id="g-2"><body>OK</body>'
    '<delay xmlns="urn:xmpp:delay" from="ops@conference.localhost" stamp="2026-11-22T03:34:05Z" />'
    ''
    '<stanza-id xmlns="urn:xmpp:sid:0" by="ops@conference.localhost" id="2XPk5TrfkrpIcWaf_v_2R4fv" />'
    "</message>"
)
MUC_HISTORY_OWN = (
    '<message xml:lang="en" from="ops@conference.localhost/adapter" to="alice@localhost/adapter"'
    ' type="groupchat" id="xc-7"><body>Incident 42 opened</body>'
    '<origin-id xmlns="urn:xmpp:sid:0" id="xc-7" />'
    '<delay xmlns="urn:xmpp:delay" from="ops@conference.localhost" stamp="2026-11-22T03:34:05Z" /></message>'
)
ROOM_SUBJECT = (
    '<message to="alice@localhost/adapter" from="ops@conference.localhost" type="groupchat">'
    '<subject /></message>'
)
MUC_PRESENCE = (
    '<presence to="alice@localhost/adapter" xml:lang="en" from="ops@conference.localhost/bobby">'
    '<x xmlns="http://jabber.org/protocol/muc#user"><item role="participant" jid="bob@localhost/phone"'
    ' affiliation="none" /></x></presence>'
)
MUC_PRESENCE_ANONYMOUS = (
    '<presence to="bob@localhost/phone" xml:lang="en" from="ops@conference.localhost/carol">'
    '<x xmlns="http://jabber.org/protocol/muc#user"><item role="participant" affiliation="none" /></x>'
    "</presence>"
)
PRESENCE_UNAVAILABLE = (
    '<presence type="unavailable" xml:lang="en" to="alice@localhost" from="bob@localhost/phone" />'
)
PRESENCE_SUBSCRIBED = '<presence type="subscribed" to="alice@localhost" from="bob@localhost" />'
PUBSUB_PUBLISHED = (
    '<iq to="admin@localhost/x" type="result" id="d642" from="pubsub.localhost">'
    '<pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="incidents"><item id="xc-10" />'
    "</publish></pubsub></iq>"
)
PUBSUB_PUBLISH_ERROR = (
    '<iq to="admin@localhost/x" type="error" id="d642" from="pubsub.localhost">'
    '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" /></error></iq>'
)
PUBSUB_ITEMS = (
    '<iq to="bob@localhost/phone" type="result" id="ec89" from="pubsub.localhost">'
    '<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="incidents"><item id="xc-10">'
    '<entry xmlns="http://www.w3.org/2005/Atom"><title>Incident 42</title></entry></item></items>'
    '</pubsub></iq>'
)
CLIENT_DISCO = (
    '<iq to="alice@localhost/adapter" xml:lang="en" type="result" id="c556" from="bob@localhost/phone">'
    '<query xmlns="http://jabber.org/protocol/disco#info"><identity type="bot" category="client" />'
    '<feature var="http://jabber.org/protocol/disco#info" /><feature var="urn:xmpp:receipts" />'
    '<feature var="urn:xmpp:chat-markers:0" /></query></iq>'
)
ROOM_DISCO = (
    '<iq to="alice@localhost/adapter" type="result" id="c26a" from="ops@conference.localhost">'
    '<query xmlns="http://jabber.org/protocol/disco#info"><feature var="muc_open" />'
    '<feature var="muc_semianonymous" /><feature var="http://jabber.org/protocol/muc" />'
    '<feature var="http://jabber.org/protocol/muc#stable_id" /><identity type="text" category="conference" />'
    '<feature var="muc_temporary" /></query></iq>'
)


def fact(raw: str, ctx: CorrelationContext = NONE) -> dict:
    built = fact_from_xml(raw, ctx, COMMANDS)
    jsonschema.validate(built, SCHEMA)
    return built


def test_receipt_from_the_addressee_for_our_stanza() -> None:
    assert fact(RECEIPT, CHAT) == {
        "kind": "receipt",
        "message_type": "normal",
        "endpoint_type": "bare_jid",
        "receipt_requested": True,
        "markable": True,
        "late": False,
        "via_component": False,
        "correlation_ambiguous": False,
        "sender_authenticated": True,
        "sender_is_addressee": True,
        "sender_resource_known": True,
        "delayed": False,
        "correlated": True,
    }


def test_receipt_without_context_is_uncorrelated_and_infers_the_endpoint() -> None:
    built = fact(RECEIPT)
    assert built["correlated"] is False
    assert built["endpoint_type"] == "full_jid"
    assert "sender_is_addressee" not in built
    assert "receipt_requested" not in built


def test_receipt_from_someone_else_is_not_from_the_addressee() -> None:
    spoof = RECEIPT.replace("bob@localhost/phone", "mallory@localhost/x")
    built = fact(spoof, CHAT)
    assert built["correlated"] is True
    assert built["sender_is_addressee"] is False
    assert built["sender_resource_known"] is False


def test_receipt_from_an_unseen_resource_of_the_addressee() -> None:
    built = fact(RECEIPT.replace("bob@localhost/phone", "Bob@Localhost/laptop"), CHAT)
    assert built["sender_is_addressee"] is True
    assert built["sender_resource_known"] is False


def test_legacy_receipt_without_id_correlates_by_its_own_id() -> None:
    legacy = '<message from="bob@localhost/phone" id="xc-1"><received xmlns="urn:xmpp:receipts"/></message>'
    assert fact(legacy, CHAT)["correlated"] is True


def test_displayed_marker() -> None:
    built = fact(DISPLAYED, CHAT)
    assert (built["kind"], built["marker"], built["correlated"]) == ("marker", "displayed", True)
    assert built["marker_inferred"] is False
    assert built["message_type"] == "chat"


def test_inferred_marker_is_correlated_with_the_earlier_stanza_it_covers() -> None:
    earlier = OutboundRecord(stanza_id="xc-0", to_jid="bob@localhost", endpoint_type="bare_jid")
    built = fact(DISPLAYED, CorrelationContext(outbound=earlier, marker_inferred=True))
    assert (built["marker_inferred"], built["correlated"]) == (True, True)
    assert fact(DISPLAYED, CorrelationContext(outbound=earlier))["correlated"] is False


def test_chat_state_only() -> None:
    built = fact(COMPOSING, CHAT)
    assert (built["kind"], built["chat_state"]) == ("chat_state", "composing")
    assert "correlated" not in built


def test_reply_with_reference_is_a_correlated_acknowledgement() -> None:
    built = fact(REPLY, CHAT)
    assert built["kind"] == "inbound_message"
    assert built["command"] == "acknowledgement"
    assert (built["reply_via"], built["correlated"]) == ("reply_reference", True)
    assert built["stop_suppression_enabled"] is False
    assert "chat_state" not in built


NO_REFERENCE = '<reply xmlns="urn:xmpp:reply:0" to="alice@localhost/adapter" id="xc-1" />'


def test_reply_tied_by_its_thread() -> None:
    built = fact(REPLY.replace(NO_REFERENCE, ""), CHAT)
    assert (built["reply_via"], built["correlated"]) == ("thread", True)


def test_reply_tied_by_the_correlator_through_the_context() -> None:
    untied = REPLY.replace(NO_REFERENCE, "").replace("<thread>xc-1</thread>", "")
    assert fact(untied, CHAT)["reply_via"] == "none"
    built = fact(untied, CorrelationContext(outbound=CHAT_OUT, reply_via="conversation"))
    assert (built["reply_via"], built["correlated"]) == ("conversation", True)


def test_reply_naming_another_message_is_never_tied_by_thread_or_guess() -> None:
    elsewhere = REPLY.replace('id="xc-1" />', 'id="other" />')
    built = fact(elsewhere, CorrelationContext(outbound=CHAT_OUT, reply_via="conversation"))
    assert (built["reply_via"], built["correlated"]) == ("unknown_reference", False)


def test_reply_without_any_tie_is_uncorrelated() -> None:
    built = fact(REPLY.replace(NO_REFERENCE, ""))
    assert (built["reply_via"], built["correlated"]) == ("none", False)


def test_sender_resource_is_unknown_without_visible_presence() -> None:
    built = fact(REPLY, CorrelationContext(outbound=CHAT_OUT))
    assert "sender_resource_known" not in built
    subscribed = fact(REPLY, CorrelationContext(outbound=CHAT_OUT, subscription="both"))
    assert subscribed["sender_resource_known"] is False
    assert fact(REPLY, CHAT)["sender_resource_known"] is True


def test_full_jid_target_names_whether_the_sender_is_that_resource() -> None:
    to_laptop = CorrelationContext(outbound=OutboundRecord(
        stanza_id="xc-1", to_jid="bob@localhost/laptop", endpoint_type="full_jid", receipt_requested=True))
    assert fact(RECEIPT, to_laptop)["sender_is_addressed_resource"] is False
    assert "sender_is_addressed_resource" not in fact(RECEIPT, CHAT)


def test_stop_with_suppression_enabled() -> None:
    stop = REPLY.replace("<body>ack</body>", "<body> Stop! </body>")
    built = fact(stop, CorrelationContext(outbound=CHAT_OUT, stop_suppression_enabled=True))
    assert (built["command"], built["stop_suppression_enabled"]) == ("stop", True)


def test_offline_delivery_is_delayed_free_text() -> None:
    built = fact(OFFLINE_DELIVERY)
    assert (built["kind"], built["delayed"], built["command"]) == ("inbound_message", True, "free_text")


@pytest.mark.parametrize(
    ("raw", "error_type", "condition", "blocked"),
    [
        (NO_SUCH_USER, "cancel", "service_unavailable", False),
        (BLOCKED, "cancel", "not_acceptable", True),
        (MISSING_ROOM, "cancel", "item_not_found", False),
    ],
)
def test_stanza_errors(raw: str, error_type: str, condition: str, blocked: bool) -> None:
    stanza_id = raw.split(' id="')[1].split('"')[0]
    to_jid = raw.split(' from="')[1].split('"')[0]
    outbound = OutboundRecord(stanza_id=stanza_id, to_jid=to_jid, endpoint_type="bare_jid")
    ctx = CorrelationContext(outbound=outbound)
    built = fact(raw, ctx)
    assert built["kind"] == "stanza_error"
    assert built["message_type"] == "error"
    assert built["error_type"] == error_type
    assert built["error_condition"] == condition
    assert built["error_blocked"] is blocked
    assert built["correlated"] is True
    assert built["sender_is_addressee"] is True


def test_bounce_from_a_malformed_address_keeps_its_sender() -> None:
    outbound = OutboundRecord(stanza_id="xc-3", to_jid="bad@@localhost", endpoint_type="unknown")
    ctx = CorrelationContext(outbound=outbound)
    built = fact(MALFORMED_BOUNCE, ctx)
    assert (built["error_type"], built["error_condition"]) == ("modify", "jid_malformed")
    assert built["sender_is_addressee"] is True
    assert built["correlated"] is True


def test_bounce_from_a_malformed_address_without_context() -> None:
    built = fact(MALFORMED_BOUNCE)
    assert built["endpoint_type"] == "unknown"
    assert built["correlated"] is False


def test_error_for_another_stanza_is_uncorrelated() -> None:
    assert fact(NO_SUCH_USER, CHAT)["correlated"] is False


@pytest.mark.parametrize(
    "error",
    [
        '<error type="cancel"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>',
        '<error type="sometimes"><gone-fishing xmlns="urn:example"/></error>',
        "",
    ],
)
def test_undefined_error_shapes_are_unknown(error: str) -> None:
    built = fact(f'<message type="error" from="bob@localhost" id="xc-1">{error}</message>', CHAT)
    assert built["error_condition"] == "unknown"
    assert built["error_type"] in ("cancel", "unknown")


def test_muc_echo_is_a_reflection() -> None:
    built = fact(MUC_ECHO, ROOM)
    assert built["kind"] == "muc_reflection"
    assert (built["endpoint_type"], built["message_type"]) == ("muc_room_jid", "groupchat")
    assert built["correlated"] is True
    assert built["sender_is_addressee"] is True
    assert "command" not in built


def test_own_message_in_history_is_still_a_reflection() -> None:
    built = fact(MUC_HISTORY_OWN, ROOM)
    assert (built["kind"], built["delayed"]) == ("muc_reflection", True)


def test_occupant_message_in_a_semi_anonymous_room() -> None:
    ctx = CorrelationContext(outbound=ROOM_OUT, room_anonymity="semi_anonymous")
    built = fact(MUC_OK, ctx)
    assert built["kind"] == "muc_message"
    assert built["command"] == "acknowledgement"
    assert built["occupant_mapping_reliable"] is False
    assert (built["reply_via"], built["correlated"]) == ("none", False)


def test_occupant_message_in_a_non_anonymous_room_with_known_real_jid() -> None:
    ctx = CorrelationContext(
        outbound=ROOM_OUT, room_anonymity="non_anonymous", occupant_real_jid="bob@localhost/phone"
    )
    assert fact(MUC_OK, ctx)["occupant_mapping_reliable"] is True


def test_muc_displayed_marker() -> None:
    built = fact(MUC_DISPLAYED, ROOM)
    assert (built["kind"], built["marker"], built["correlated"]) == ("muc_marker", "displayed", True)


def test_muc_history_from_another_occupant() -> None:
    built = fact(MUC_HISTORY, ROOM)
    assert (built["kind"], built["delayed"]) == ("muc_history", True)


def test_muc_occupant_presence_with_real_jid() -> None:
    ctx = CorrelationContext(outbound=ROOM_OUT, room_anonymity="non_anonymous")
    built = fact(MUC_PRESENCE, ctx)
    assert (built["kind"], built["presence_show"]) == ("muc_occupant", "available")
    assert built["occupant_mapping_reliable"] is True


def test_muc_occupant_presence_without_real_jid() -> None:
    ctx = CorrelationContext(outbound=ROOM_OUT, room_anonymity="non_anonymous")
    assert fact(MUC_PRESENCE_ANONYMOUS, ctx)["occupant_mapping_reliable"] is False


def test_presence_with_show() -> None:
    ctx = CorrelationContext(outbound=CHAT_OUT, subscription="both", addressee_resource_count=2)
    built = fact(PRESENCE_AWAY, ctx)
    assert (built["kind"], built["presence_show"]) == ("presence", "away")
    assert built["sender_is_addressee"] is True
    assert built["subscription"] == "both"
    assert built["addressee_multi_resource"] is True
    assert "message_type" not in built


def test_presence_unavailable_and_subscription_presence() -> None:
    assert fact(PRESENCE_UNAVAILABLE)["presence_show"] == "unavailable"
    subscribed = fact(PRESENCE_SUBSCRIBED)
    assert subscribed["kind"] == "presence"
    assert "presence_show" not in subscribed


def test_pubsub_notification() -> None:
    built = fact(PUBSUB_HEADLINE, PUBSUB)
    assert (built["kind"], built["message_type"], built["endpoint_type"]) == (
        "pubsub_notification", "headline", "pubsub_node",
    )
    assert built["correlated"] is True


def test_pubsub_iq_results_and_error() -> None:
    assert fact(PUBSUB_PUBLISHED, PUBSUB)["kind"] == "pubsub_published"
    assert fact(PUBSUB_PUBLISHED, PUBSUB)["correlated"] is True
    assert fact(PUBSUB_ITEMS)["kind"] == "pubsub_items_fetched"
    error = fact(PUBSUB_PUBLISH_ERROR, PUBSUB)
    assert (error["kind"], error["error_condition"], error["endpoint_type"]) == (
        "stanza_error", "item_not_found", "pubsub_node",
    )
    assert "message_type" not in error


def test_client_capabilities() -> None:
    built = fact(CLIENT_DISCO)
    assert built["kind"] == "capabilities"
    assert (built["cap_receipts"], built["cap_markers"]) == (True, True)
    assert built["endpoint_type"] == "full_jid"


def test_capabilities_override_the_context_and_room_anonymity_is_read() -> None:
    built = fact(ROOM_DISCO, CorrelationContext(cap_receipts=True))
    assert (built["cap_receipts"], built["cap_markers"]) == (False, False)
    assert built["room_anonymity"] == "semi_anonymous"
    assert built["endpoint_type"] == "muc_room_jid"


def test_context_fields_and_delegates() -> None:
    ctx = CorrelationContext(
        outbound=CHAT_OUT, delegates=frozenset({"carol@localhost"}), recipient_available=False,
        cap_offline_storage=True, late=True, authenticated_stream=False, via_component=True,
        correlation_ambiguous=True,
    )
    built = fact(RECEIPT.replace("bob@localhost/phone", "carol@localhost/pc"), ctx)
    assert built["sender_is_delegate"] is True
    assert built["sender_is_addressee"] is False
    assert (built["recipient_available"], built["cap_offline_storage"]) == (False, True)
    assert (built["late"], built["sender_authenticated"]) == (True, False)
    assert (built["via_component"], built["correlation_ambiguous"]) == (True, True)


@pytest.mark.parametrize(
    "raw",
    [
        ROOM_SUBJECT,
        '<message from="bob@localhost/phone"/>',
        '<iq type="get" id="p1" from="localhost"><ping xmlns="urn:xmpp:ping"/></iq>',
        '<iq type="result" id="p1" from="localhost"/>',
        '<message type="groupchat" from="ops@conference.localhost"><body>Room is now public</body></message>',
    ],
)
def test_stanzas_without_evidence(raw: str) -> None:
    with pytest.raises(NotEvidence):
        fact_from_xml(raw, NONE, COMMANDS)


def test_hostile_xml_is_rejected_before_a_fact_exists() -> None:
    with pytest.raises(StanzaRejected):
        fact_from_xml('<!DOCTYPE m [<!ENTITY a "b">]><message><body>&a;</body></message>', NONE, COMMANDS)


def test_context_values_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(ValueError, match="subscription"):
        fact_from_xml(PRESENCE_AWAY, CorrelationContext(subscription="maybe"), COMMANDS)


def test_event_fact_takes_outbound_fields_from_the_context() -> None:
    ctx = CorrelationContext(outbound=CHAT_OUT, recipient_available=False, cap_offline_storage=True)
    built = fact_for_event("sm_ack", ctx)
    jsonschema.validate(built, SCHEMA)
    assert built == {
        "kind": "sm_ack",
        "endpoint_type": "bare_jid",
        "receipt_requested": True,
        "markable": True,
        "message_type": "chat",
        "correlated": True,
        "recipient_available": False,
        "cap_offline_storage": True,
        "late": False,
        "via_component": False,
        "correlation_ambiguous": False,
    }


def test_event_fact_explicit_fields_win_and_none_is_omitted() -> None:
    built = fact_for_event("timer", CorrelationContext(outbound=CHAT_OUT), timer="receipt_timeout", late=True,
                           cap_receipts=None)
    assert (built["timer"], built["late"]) == ("receipt_timeout", True)
    assert "cap_receipts" not in built


def test_event_fact_without_context() -> None:
    assert fact_for_event("stream_connected") == {"kind": "stream_connected"}
    assert fact_for_event("request_rejected", reject_reason="invalid_jid") == {
        "kind": "request_rejected", "reject_reason": "invalid_jid",
    }


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("sm_ack", {"delivered": True}, "unknown fact field 'delivered'"),
        ("timer", {"timer": "forever"}, "'timer'"),
        ("sm_ack", {"late": "yes"}, "is not a bool"),
        ("delivered", {}, "'kind'"),
    ],
)
def test_event_fact_refuses_what_the_vocabulary_does_not_allow(kind: str, fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fact_for_event(kind, **fields)


def test_context_from_dict() -> None:
    ctx = context_from_dict(
        {
            "outbound": {
                "stanza_id": "xc-1", "to_jid": "bob@localhost", "endpoint_type": "bare_jid",
                "origin_id": "xc-1", "receipt_requested": True, "sent_at": "2026-01-01T12:00:00Z",
            },
            "known_resources": ["bob@localhost/phone"],
            "delegates": [],
            "late": True,
            "reply_via": "thread",
        }
    )
    assert ctx.outbound == OutboundRecord(
        stanza_id="xc-1", to_jid="bob@localhost", endpoint_type="bare_jid", origin_id="xc-1",
        receipt_requested=True, sent_at=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )
    assert ctx.known_resources == frozenset({"bob@localhost/phone"})
    assert ctx.delegates == frozenset()
    assert (ctx.late, ctx.reply_via) == (True, "thread")
    assert context_from_dict({}) == CorrelationContext()


OUTBOUND_MIN = {"stanza_id": "a", "to_jid": "b", "endpoint_type": "bare_jid"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outbund": {}}, r"context: unknown keys \['outbund'\]"),
        ({"outbound": {**OUTBOUND_MIN, "to": "x"}}, r"outbound: unknown keys \['to'\]"),
        ({"outbound": {"stanza_id": "a"}}, "outbound: .*to_jid"),
        ({"outbound": "xc-1"}, "outbound: expected a mapping"),
        ({"outbound": {**OUTBOUND_MIN, "sent_at": "2026-01-01T12:00"}}, "no time zone"),
        ({"outbound": {**OUTBOUND_MIN, "sent_at": "noon"}}, "not an ISO 8601"),
        ({"known_resources": "bob@localhost/phone"}, "expected a list"),
        ({"extra": []}, "expected a mapping"),
    ],
)
def test_context_from_dict_refuses_unclear_input(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        context_from_dict(data)


ALL_STANZAS = [
    value
    for name, value in sorted(globals().items())
    if name.isupper() and isinstance(value, str) and value.startswith(("<message", "<presence", "<iq"))
]
RICH = CorrelationContext(
    outbound=ROOM_OUT,
    known_resources=frozenset({"bob@localhost/phone"}),
    delegates=frozenset({"carol@localhost"}),
    recipient_available=True,
    addressee_resource_count=1,
    subscription="to",
    cap_receipts=False,
    cap_markers=True,
    cap_offline_storage=True,
    room_anonymity="fully_anonymous",
    occupant_real_jid="bob@localhost/phone",
    late=True,
    reply_via="conversation",
    marker_inferred=True,
    stop_suppression_enabled=True,
)
CONTEXTS = {"none": NONE, "chat": CHAT, "room": ROOM, "pubsub": PUBSUB, "rich": RICH}


@pytest.mark.parametrize("ctx", CONTEXTS.values(), ids=CONTEXTS.keys())
@pytest.mark.parametrize("raw", ALL_STANZAS)
def test_every_fact_fits_the_schema(raw: str, ctx: CorrelationContext) -> None:
    try:
        built = fact_from_xml(raw, ctx, COMMANDS)
    except NotEvidence:
        return
    jsonschema.validate(built, SCHEMA)
    assert built["kind"] in SCHEMA["properties"]["kind"]["enum"]


def test_the_broad_set_covers_the_stanza_kinds() -> None:
    kinds = set()
    for raw in ALL_STANZAS:
        for ctx in (NONE, CHAT, ROOM, PUBSUB):
            try:
                kinds.add(fact_from_xml(raw, ctx, COMMANDS)["kind"])
            except NotEvidence:
                continue
    assert kinds == {
        "receipt", "marker", "chat_state", "inbound_message", "stanza_error", "presence",
        "muc_occupant", "muc_reflection", "muc_message", "muc_marker", "muc_history",
        "pubsub_notification", "pubsub_published", "pubsub_items_fetched", "capabilities",
    }


def test_bare_unavailable_without_visible_presence_is_not_availability() -> None:
    tracker = PresenceTracker()
    pending = "none"
    assert not is_availability_evidence("bob@localhost", "unavailable", pending)
    assert is_availability_evidence("bob@localhost", "unavailable", "both")
    assert is_availability_evidence("bob@localhost/phone", "unavailable", pending), "a resource going away"
    tracker.note_seen("bob@localhost/profanity")
    assert tracker.known_resources("bob@localhost") == {"bob@localhost/profanity"}
    assert tracker.is_available("bob@localhost") is None, "a receipt is no presence"
