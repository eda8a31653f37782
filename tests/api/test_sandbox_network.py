"""The sandbox network's behaviour table: each magic JID answers with real stanzas the parser reads."""

import asyncio

import pytest

from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.sandbox import SandboxProvider
from xmpp_connect.providers.sandbox_network import (
    NODE,
    PUBSUB_SERVICE,
    ROOM_JID,
    SandboxNetwork,
    SandboxTiming,
)
from xmpp_connect.providers.sandbox_stanzas import ERROR_CONDITIONS
from xmpp_connect.providers.stanza_builders import OutboundMessage, build_message
from xmpp_connect.xmpp.stanzas import parse_stanza

ME = "adapter@sandbox.invalid/service"


def answers_for(to: str, markable: bool = True, receipt: bool = True):
    stanza = build_message(
        OutboundMessage(to_jid=to, body="hi", markable=markable, request_receipt=receipt), "s1"
    )
    import xml.etree.ElementTree as ET

    return SandboxNetwork().answer(ET.tostring(stanza, encoding="unicode"), ME)


def views(answers):
    return [parse_stanza(a.raw) for a in answers if a.raw]


def test_delivered_acks_then_sends_a_receipt_for_the_stanza() -> None:
    answers = answers_for("delivered@sandbox.invalid")
    assert [a.kind for a in answers] == ["sm_ack", "stanza_received"]
    assert answers[0].stanza_id == "s1"
    (receipt,) = views(answers)
    assert receipt.receipt_received and receipt.receipt_id == "s1"
    assert receipt.from_attr == "delivered@sandbox.invalid/phone" and receipt.to_attr == ME


def test_displayed_sends_receipt_then_marker_only_when_markable() -> None:
    kinds = [(v.receipt_received, v.marker) for v in views(answers_for("displayed@sandbox.invalid"))]
    assert kinds == [(True, None), (False, "displayed")]
    assert [v.marker for v in views(answers_for("displayed@sandbox.invalid", markable=False))] == [None]


def test_replies_ack_replies_with_reference_and_thread() -> None:
    reply = views(answers_for("replies-ack@sandbox.invalid"))[-1]
    assert reply.body == "ACK" and reply.reply_id == "s1" and reply.thread == "s1"


def test_no_receipts_gets_only_the_server_ack() -> None:
    assert [a.kind for a in answers_for("no-receipts@sandbox.invalid")] == ["sm_ack"]


def test_offline_comes_online_later_with_a_delayed_receipt() -> None:
    answers = answers_for("offline@sandbox.invalid")
    presence, receipt = views(answers)
    assert presence.name == "presence" and receipt.receipt_id == "s1" and receipt.delayed
    assert min(a.delay for a in answers[1:]) == SandboxTiming().offline_delivery


def test_late_receipt_arrives_after_the_receipt_timeout() -> None:
    answers = SandboxNetwork(SandboxTiming(late_receipt=42.0)).answer(
        "<message xmlns='jabber:client' to='late-receipt@sandbox.invalid' id='x'>"
        "<body>b</body><request xmlns='urn:xmpp:receipts'/></message>",
        ME,
    )
    assert answers[-1].delay == 42.0 and parse_stanza(answers[-1].raw).receipt_id == "x"


def test_two_devices_receipt_per_resource() -> None:
    senders = {v.from_attr for v in views(answers_for("two-devices@sandbox.invalid"))}
    assert senders == {"two-devices@sandbox.invalid/phone", "two-devices@sandbox.invalid/laptop"}


@pytest.mark.parametrize("condition", sorted(ERROR_CONDITIONS))
def test_every_section_24_condition_has_a_magic_jid(condition: str) -> None:
    (error,) = views(answers_for(f"error-{condition}@sandbox.invalid"))
    assert error.type == "error" and error.id == "s1"
    assert error.error is not None and error.error.condition == condition
    assert error.error.type == ERROR_CONDITIONS[condition]


def test_blocked_unknown_and_remote_recipients_fail_like_a_server() -> None:
    (blocked,) = views(answers_for("blocked@sandbox.invalid"))
    assert blocked.error.condition == "not-acceptable" and blocked.error.blocked
    (unknown,) = views(answers_for("nobody@sandbox.invalid"))
    assert unknown.error.condition == "service-unavailable"
    (remote,) = views(answers_for("someone@example.net"))
    assert remote.error.condition == "remote-server-not-found" and remote.from_attr == "example.net"


def test_room_reflects_groupchat_with_same_id() -> None:
    raw = f"<message xmlns='jabber:client' type='groupchat' to='{ROOM_JID}' id='g1'><body>b</body></message>"
    (reflection,) = views(SandboxNetwork().answer(raw, ME))
    assert (
        reflection.type == "groupchat" and reflection.id == "g1" and reflection.from_attr.startswith(ROOM_JID)
    )
    raw_missing = raw.replace(ROOM_JID, "nope@conference.sandbox.invalid")
    assert views(SandboxNetwork().answer(raw_missing, ME))[0].error.condition == "item-not-found"


def test_node_publish_returns_the_item() -> None:
    raw = (
        f"<iq xmlns='jabber:client' type='set' to='{PUBSUB_SERVICE}' id='p1'>"
        f"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{NODE}'><item id='i1'/></publish>"
        "</pubsub></iq>"
    )
    (result,) = views(SandboxNetwork().answer(raw, ME))
    assert result.type == "result" and result.pubsub.node == NODE and result.pubsub.item_ids == ("i1",)
    assert (
        views(SandboxNetwork().answer(raw.replace(NODE, "other"), ME))[0].error.condition == "item-not-found"
    )


async def test_provider_emits_native_events_in_time_order() -> None:
    seen: list[NativeEvent] = []
    provider = SandboxProvider("sandbox", ME, seen.append, SandboxNetwork(SandboxTiming(receipt=0.01)))
    await provider.start()
    assert [e.kind for e in seen[:2]] == ["stream_connected", "authenticated"]
    seen.clear()
    record = provider.send_message(OutboundMessage(to_jid="delivered@sandbox.invalid", body="hello"))
    await asyncio.sleep(0.05)
    assert [e.kind for e in seen] == ["message_sent", "sm_ack", "stanza_received"]
    assert record.receipt_requested and parse_stanza(seen[-1].raw).receipt_id == record.stanza_id
    assert provider.health().stream_status == "connected"
    await provider.stop()
    assert provider.health().status == "failing"
