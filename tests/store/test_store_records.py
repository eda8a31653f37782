"""Records (§9, §15–§19): messages, attempts, stanzas and correlation lookups, presence, MUC, PubSub."""

from __future__ import annotations

import pytest
from store_helpers import T0, minutes

from xmpp_connect.store import NotFound
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.records import (
    DeliveryReceipt,
    DisplayedMarker,
    InboundMessage,
    MucEvent,
    MucRoom,
    PresenceState,
    PubSubItem,
    PubSubNode,
    XmppAttempt,
    XmppEndpoint,
    XmppMessage,
    XmppStanza,
)

ACCOUNT = "adapter@example.org/xc"


def _outbound(tenant: str, ref: str, to: str, minute: int, **kw) -> XmppStanza:
    return XmppStanza(
        tenant, ref, "outbound", "message", ACCOUNT, to, stanza_id=ref, sent_at=T0 + minutes(minute), **kw
    )


def test_message_with_several_attempts_and_stanzas(store, tenant):
    store.create_message(
        XmppMessage(tenant, "m1", T0, "case-1", "p1", "notify", None, "tmpl", {"correlation_id": "corr-1"})
    )
    for n in (1, 2):
        store.create_attempt(
            XmppAttempt(
                tenant,
                f"a{n}",
                "m1",
                "acct",
                ACCOUNT,
                "bob@example.net",
                "bare_jid",
                T0 + minutes(n),
                T0 + minutes(n),
            )
        )
        store.record_stanza(
            _outbound(tenant, f"s{n}", "bob@example.net", n, message_id="m1", attempt_id=f"a{n}")
        )

    message = store.get_message(tenant, "m1")
    assert message.tracking_context == {"correlation_id": "corr-1"} and message.case_id == "case-1"
    assert [a.attempt_id for a in store.list_attempts(tenant, "m1")] == ["a1", "a2"]
    assert [s.stanza_ref for s in store.list_stanzas(tenant, "m1")] == ["s1", "s2"]
    assert [m.message_id for m in store.list_messages(tenant, case_id="case-1")] == ["m1"]
    assert store.list_messages(tenant, participant_id="nobody") == []
    assert store.get_message("other", "m1") is None


def test_attempt_state_updates_and_validation(store, tenant):
    store.create_attempt(
        XmppAttempt(tenant, "a1", "m1", "acct", ACCOUNT, "bob@example.net", "bare_jid", T0, T0)
    )
    updated = store.update_attempt(tenant, "a1", state="sent_to_server", stanza_id="s1", server_id="srv-1")
    assert (updated.state, updated.stanza_id, updated.server_id, updated.origin_id) == (
        "sent_to_server",
        "s1",
        "srv-1",
        None,
    )
    with pytest.raises(ValueError):
        store.update_attempt(tenant, "a1", state="delivered_and_read")
    with pytest.raises(NotFound):
        store.update_attempt(tenant, "missing", state="failed")


def test_outbound_lookup_by_stanza_origin_and_server_id(store, tenant):
    store.record_stanza(
        _outbound(tenant, "s1", "bob@example.net", 0, origin_id="o1", message_id="m1", receipt_requested=True)
    )
    store.set_stable_id(tenant, "s1", "srv-id-9")

    for query in ({"stanza_id": "s1"}, {"origin_id": "o1"}, {"stable_id": "srv-id-9"}):
        [found] = store.find_outbound(tenant, **query)
        assert found.message_id == "m1" and found.receipt_requested and found.sent_at == T0
    assert store.find_outbound(tenant, stanza_id="nope") == []
    assert store.find_outbound("other", stanza_id="s1") == []


def test_markables_before_lists_the_conversation_in_send_order(store, tenant):
    for n, to, markable in [
        (1, "bob@example.net", True),
        (2, "carol@example.net", True),
        (3, "Bob@Example.net/phone", False),
        (4, "bob@example.net", True),
        (5, "bob@example.net", True),
    ]:
        store.record_stanza(_outbound(tenant, f"s{n}", to, n, markable=markable))

    before = store.markables_before(tenant, "bob@example.net", "s5")
    assert [r.stanza_id for r in before] == ["s1", "s4"]
    assert store.markables_before(tenant, "bob@example.net", "unknown") == []
    assert store.latest_outbound(tenant, "bob@example.net").stanza_id == "s5"


def test_store_serves_correlation_outbound_index_protocol(store_factory, tenant):
    from xmpp_connect.model.correlation import OutboundRecord

    index = StoreOutboundIndex(store_factory.open(), tenant, ACCOUNT)
    index.record(
        OutboundRecord("s1", "bob@example.net", "bare_jid", markable=True, origin_id="o1", sent_at=T0)
    )
    index.record(OutboundRecord("s2", "bob@example.net", "bare_jid", markable=True, sent_at=T0 + minutes(1)))
    index.record(OutboundRecord("s2", "bob@example.net", "bare_jid", markable=True, sent_at=T0 + minutes(1)))

    restarted = StoreOutboundIndex(store_factory.open(), tenant, ACCOUNT)
    assert restarted.lookup("o1").stanza_id == "s1"
    assert [r.stanza_id for r in restarted.markables_before("bob@example.net", "s2")] == ["s1"]
    assert restarted.latest("bob@example.net").stanza_id == "s2"


def test_receipts_and_markers_are_stored_once_per_id(store, tenant):
    receipt = DeliveryReceipt(tenant, "r1", "s1", "bob@example.net/phone", ACCOUNT, T0, "m1", "phone", "high")
    assert store.record_receipt(receipt) is True
    assert store.record_receipt(receipt) is False
    marker = DisplayedMarker(
        tenant, "k1", "s1", "displayed", "bob@example.net/phone", ACCOUNT, T0, "m1", "phone"
    )
    inferred = DisplayedMarker(
        tenant, "k0", "s0", "displayed", "bob@example.net/phone", ACCOUNT, T0, "m1", inferred=True
    )
    assert store.record_marker(marker) and store.record_marker(inferred)
    assert store.list_receipts(tenant, "m1") == [receipt]
    assert {m.marker_id: m.inferred for m in store.list_markers(tenant, "m1")} == {"k0": True, "k1": False}


def test_inbound_messages_keep_body_unless_metadata_only(store, tenant):
    stored = store.record_inbound(
        InboundMessage(
            tenant, "in1", "bob@example.net/phone", ACCOUNT, "chat", T0, "acknowledgement", "ACK", "st1", "m1"
        )
    )
    assert stored.body_text == "ACK"
    [read] = store.list_inbound(tenant, "m1")
    assert read.command_classification == "acknowledgement" and read.body_text == "ACK"


def test_presence_keeps_newest_per_resource_and_history(store, tenant):
    store.record_presence(PresenceState(tenant, "Bob@example.net", "available", T0 + minutes(2), "phone"))
    store.record_presence(
        PresenceState(tenant, "bob@example.net", "away", T0 + minutes(1), "phone")
    )  # late, older
    store.record_presence(
        PresenceState(
            tenant, "bob@example.net", "dnd", T0 + minutes(3), "laptop", 5, subscription_state="both"
        )
    )
    current = {p.resource: p.availability for p in store.presence(tenant, "bob@example.net/any")}
    assert current == {"phone": "available", "laptop": "dnd"}
    assert len(store.presence_history(tenant, "bob@example.net")) == 3

    store.record_presence(PresenceState(tenant, "bob@example.net", "unavailable", T0 + minutes(4)))
    assert {p.availability for p in store.presence(tenant, "bob@example.net")} == {"unavailable"}


def test_endpoints_carry_suppression_state_from_the_list(store, tenant):
    endpoint = store.upsert_endpoint(
        XmppEndpoint(
            tenant,
            "ep1",
            "bare_jid",
            "bob@example.net",
            "bob@example.net",
            verification_state="syntax_validated",
        )
    )
    assert endpoint.suppression_state == "active"
    store.suppress(tenant, "Bob@example.net/phone", reason="STOP received")
    assert store.get_endpoint(tenant, "ep1").suppression_state == "suppressed"
    assert store.suppression(tenant, "bob@example.net").reason == "STOP received"
    assert [s.bare_jid for s in store.list_suppressions(tenant)] == ["bob@example.net"]
    assert store.unsuppress(tenant, "bob@example.net") is True
    assert store.unsuppress(tenant, "bob@example.net") is False
    assert store.get_endpoint(tenant, "ep1").suppression_state == "active"
    with pytest.raises(ValueError):
        store.upsert_endpoint(XmppEndpoint(tenant, "ep2", "email", "x@y"))


def test_muc_and_pubsub_records(store, tenant):
    store.upsert_muc_room(
        MucRoom(tenant, "ops@conference.example.org", "semi_anonymous", "low", "Ops", True, False)
    )
    store.record_muc_event(
        MucEvent(tenant, "e1", "ops@conference.example.org", "message_sent", T0, message_id="m1")
    )
    store.record_muc_event(
        MucEvent(
            tenant,
            "e2",
            "ops@conference.example.org",
            "displayed",
            T0 + minutes(1),
            occupant_nick="bob",
            confidence="low",
        )
    )
    room = store.get_muc_room(tenant, "ops@conference.example.org")
    assert (
        room.room_type == "semi_anonymous"
        and room.supports_history is True
        and room.supports_markers is False
    )
    assert [e.event_type for e in store.list_muc_events(tenant, "ops@conference.example.org")] == [
        "message_sent",
        "displayed",
    ]

    store.upsert_pubsub_node(PubSubNode(tenant, "pubsub.example.org", "alerts", "open", "publishers"))
    store.record_pubsub_item(
        PubSubItem(
            tenant,
            "pubsub.example.org",
            "alerts",
            "item-1",
            T0,
            "payload:1",
            ACCOUNT,
            "m1",
            {"correlation_id": "corr-1"},
        )
    )
    assert store.get_pubsub_node(tenant, "pubsub.example.org", "alerts").access_model == "open"
    [item] = store.list_pubsub_items(tenant, "pubsub.example.org", "alerts")
    assert item.correlation == {"correlation_id": "corr-1"} and item.published_at == T0


def test_a_message_just_created_reads_as_it_was_stored(store_factory, tenant):
    """The store remembers a message it created as a read would return it (the JSON column decoded), so the
    first read needs no statement and gives what another store reads from the row."""
    store = store_factory.open()
    context = {"correlation_id": "corr-1", "registered_at": T0, "tags": ("a", "b")}
    store.create_message(XmppMessage(tenant, "m1", T0, "case-1", "p1", "notify", None, None, context))
    remembered = store.get_message(tenant, "m1")
    assert remembered == store_factory.open().get_message(tenant, "m1")
    assert remembered.tracking_context == {"correlation_id": "corr-1", "registered_at": str(T0),
                                           "tags": ["a", "b"]}


def test_naive_datetimes_are_refused(store, tenant):
    with pytest.raises(ValueError):
        store.create_message(XmppMessage(tenant, "m1", T0.replace(tzinfo=None)))
