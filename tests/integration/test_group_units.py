"""Pure parts of rooms, nodes and archive queries, without a server: stanza building, parsing, room kinds,
stable ids, occupants, and how the pipeline ties room traffic to our messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from xmpp_connect.config.settings import RoomConfig, Secret
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.facts.presence import RoomRoster
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.archive import ArchiveQuery, page_end, query_element
from xmpp_connect.providers.base import RoomJoin
from xmpp_connect.providers.pubsub import node_models
from xmpp_connect.providers.rooms import JoinWaiter, config_query
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    PubSubItem,
    groupchat_record_for,
    groupchat_xml,
    publish_record_for,
    publish_xml,
)
from xmpp_connect.xmpp.stanzas import parse_stanza

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROOM = "ops@conference.localhost"



def test_groupchat_stanza_and_record() -> None:
    message = OutboundMessage(to_jid=ROOM, body="Incident", markable=True)
    view = parse_stanza(groupchat_xml(message, "g-1"))
    assert (view.type, view.id, view.origin_id, view.markable, view.receipt_requested) == (
        "groupchat", "g-1", "g-1", True, False)
    record = groupchat_record_for(message, "g-1", NOW)
    assert (record.endpoint_type, record.message_type, record.receipt_requested) == (
        "muc_room_jid", "groupchat", False)
    with pytest.raises(ValueError, match="bare room JID"):
        groupchat_xml(OutboundMessage(to_jid=f"{ROOM}/bob", body="x"), "g-2")


def test_publish_stanza_carries_the_item_id_and_payload() -> None:
    item = PubSubItem("pubsub.localhost", "events", "corr-1", "<e xmlns='urn:x'><case>7</case></e>")
    view = parse_stanza(publish_xml(item, "p-1"))
    assert view.pubsub is not None
    assert (view.pubsub.action, view.pubsub.node, view.pubsub.item_ids) == ("publish", "events", ("corr-1",))
    record = publish_record_for(item, "p-1", NOW)
    assert (record.stanza_id, record.origin_id, record.endpoint_type) == ("p-1", "corr-1", "pubsub_node")
    for bad in ("<e>no namespace</e>", "not xml", "<?xml version='1.0'?><e xmlns='urn:x'/>"):
        with pytest.raises(ValueError):
            publish_xml(PubSubItem("pubsub.localhost", "events", "i", bad), "p-2")


def test_archive_result_is_parsed_with_its_forwarded_message() -> None:
    view = parse_stanza(
        "<message xmlns='jabber:client' from='a@localhost' to='a@localhost/x'>"
        "<result xmlns='urn:xmpp:mam:2' queryid='q1' id='arch-1'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<delay xmlns='urn:xmpp:delay' stamp='2026-01-01T12:00:00Z'/>"
        "<message xmlns='jabber:client' to='b@localhost' from='a@localhost/x' type='chat' id='m-1'>"
        "<body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='m-1'/></message>"
        "</forwarded></result></message>")
    assert (view.archive_id, view.archive_query_id, view.archive_stamp) == ("arch-1", "q1", NOW)
    assert view.archived is not None and (view.archived.id, view.archived.to_attr) == ("m-1", "b@localhost")


def test_archive_query_and_page_end() -> None:
    query = query_element(ArchiveQuery(with_jid="b@localhost", start=NOW, page_size=2), "q1", "arch-9")
    text = ET.tostring(query, encoding="unicode")
    assert "b@localhost" in text and "2026-01-01T12:00:00Z" in text and "arch-9" in text
    fin = ET.fromstring("<iq xmlns='jabber:client'><fin xmlns='urn:xmpp:mam:2'><set xmlns="
                        "'http://jabber.org/protocol/rsm'><last>arch-2</last><count>5</count></set></fin></iq>")
    end = page_end(fin)
    assert (end.complete, end.last, end.count) == (False, "arch-2", 5)


def test_room_kind_and_expected_evidence_from_disco() -> None:
    members = RoomJoin(ROOM, "bot", True, "non_anonymous",
                       frozenset({"muc_membersonly", "muc_nonanonymous", "urn:xmpp:mam:2"}))
    assert members.room_type == "members_only" and members.occupant_mapping_confidence == "high"
    assert members.expected_evidence == {"room_reflection", "occupant_identity", "archive"}
    bare = RoomJoin(ROOM, "bot", True)
    assert (bare.room_type, bare.occupant_mapping_confidence, bare.expected_evidence) == (
        "unknown", "low", {"room_reflection"})


def test_room_config_form_and_node_models() -> None:
    room = RoomConfig(ROOM, password=Secret("pw"), members_only=True)
    form = ET.tostring(config_query(room), encoding="unicode")
    assert "muc#roomconfig_whois" in form and "muc#roomconfig_roomsecret" in form
    meta = ET.fromstring(
        "<q xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data' type='result'>"
        "<field var='pubsub#access_model'><value>whitelist</value></field>"
        "<field var='pubsub#publish_model'><value>bogus</value></field></x></q>")
    assert node_models(meta) == ("whitelist", "unknown")


async def test_join_waiter_settles_on_self_presence_or_error_only() -> None:
    waiter = JoinWaiter()
    answer = waiter.expect(ROOM)
    other = ET.fromstring(f"<presence from='{ROOM}/bob'><x xmlns='http://jabber.org/protocol/muc#user'/>"
                          "</presence>")
    assert waiter.offer(other) is False and not answer.done()
    error = ET.fromstring(f"<presence from='{ROOM}/bot' type='error'><error type='auth'>"
                          "<registration-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                          "</error></presence>")
    assert waiter.offer(error) is True
    assert (answer.result().joined, answer.result().error_condition) == (False, "registration_required")


def test_stable_id_makes_the_stanza_findable_by_it() -> None:
    index = InMemoryOutboundIndex()
    index.record(groupchat_record_for(OutboundMessage(to_jid=ROOM, body="x"), "g-1", NOW))
    updated = index.set_stable_id("g-1", "room-sid-1")
    assert updated is not None and updated.stable_id == "room-sid-1"
    assert index.lookup("room-sid-1") == updated == index.lookup("g-1") == index.latest(ROOM)
    assert index.set_stable_id("unknown", "s") is None


def test_room_roster_keeps_a_real_jid_and_drops_leavers() -> None:
    roster = RoomRoster()
    roster.observe(f"{ROOM}/bob", "bob@localhost/phone", "participant", "none", True, NOW)
    roster.observe(f"{ROOM}/bob", None, "participant", "none", True, NOW)
    assert roster.real_jid(f"{ROOM}/bob") == "bob@localhost/phone"
    assert roster.anonymity(ROOM) is None
    roster.set_features(ROOM, frozenset({"muc_semianonymous"}))
    assert roster.anonymity(ROOM) == "semi_anonymous"
    roster.observe(f"{ROOM}/bob", None, "none", "none", False, NOW)
    assert roster.occupants(ROOM) == {}


def test_room_chatter_is_not_a_reply_to_the_last_room_message(classifier: Classifier) -> None:
    seen: list[Observation] = []
    index = InMemoryOutboundIndex()
    pipeline = EvidencePipeline(classifier, CommandTable.from_mapping(classifier.policy.commands), index,
                                seen.append)
    record = groupchat_record_for(OutboundMessage(to_jid=ROOM, body="Incident"), "g-1", NOW)

    def received(raw: str) -> list[Observation]:
        return pipeline.handle(NativeEvent("stanza_received", "notify", NOW, raw=raw))

    pipeline.handle(NativeEvent("message_sent", "notify", NOW, stanza_id="g-1", detail={"outbound": record}))
    (reflection,) = received(
        f"<message xmlns='jabber:client' type='groupchat' from='{ROOM}/bot' id='g-1'><body>Incident</body>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' id='sid-9' by='{ROOM}'/></message>")
    assert reflection.classification.scenario == "muc_room_accepted"
    assert index.lookup("sid-9") is not None
    (chatter,) = received(f"<message xmlns='jabber:client' type='groupchat' from='{ROOM}/bob' id='c-1'>"
                          "<body>ok</body></message>")
    assert (chatter.fact["reply_via"], chatter.classification.scenario) == ("none", "metadata_only")
    (reply,) = received(f"<message xmlns='jabber:client' type='groupchat' from='{ROOM}/bob' id='c-2'>"
                        "<body>ok</body><reply xmlns='urn:xmpp:reply:0' id='sid-9'/></message>")
    assert reply.fact["reply_via"] == "reply_reference" and reply.outbound is not None
    assert reply.outbound.stanza_id == "g-1"
