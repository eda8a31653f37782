"""XEP-0184 receipts through a real Prosody: per resource, late, missing support, from a stranger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from adapter import AdapterUnderTest, befriend, explain, of_kind, sender_of, subclass
from prosody import ProsodyServer, TestUser
from recipients import Behaviour, Recipient

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy.commands import CommandTable


async def test_receipt_from_the_addressee_is_client_delivery(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    sent = adapter.send(recipient_user.jid)

    receipt = await adapter.wait_for(of_kind("receipt", sent.stanza_id))
    assert subclass(receipt) == "success.delivered_to_client", explain(receipt)
    assert "notification.endpoint.accepted" in receipt.classification.events
    assert receipt.fact["sender_is_addressee"] is True
    assert sender_of(receipt) == phone.full_jid

    written = await adapter.wait_for(of_kind("send_accepted", sent.stanza_id))
    assert subclass(written) == "undef.sent_to_server_only", explain(written)
    acked = await adapter.wait_for(of_kind("sm_ack", sent.stanza_id))
    assert subclass(acked) == "undef.server_acknowledged_only", explain(acked)
    assert "notification.attempt.accepted_by_provider" in acked.classification.events


async def test_two_resources_each_send_a_receipt_and_both_are_kept(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user, "phone").online()
    laptop = await recipient(recipient_user, "laptop").online()
    await befriend(adapter, phone, laptop)
    sent = adapter.send(recipient_user.jid)

    await adapter.wait_for(lambda o: len(adapter.about(sent.stanza_id, "receipt")) == 2)
    receipts = adapter.about(sent.stanza_id, "receipt")
    senders = {sender_of(r) for r in receipts}
    assert senders == {phone.full_jid, laptop.full_jid}
    for receipt in receipts:
        assert receipt.classification.scenario == "delivered_to_client_resource_scoped", explain(receipt)
        assert subclass(receipt) == "success.delivered_to_client"
        assert receipt.fact["addressee_multi_resource"] is True
        assert receipt.fact["sender_resource_known"] is True


async def test_message_stored_offline_then_a_late_receipt_is_kept(
    live_prosody: ProsodyServer, sender_user: TestUser, recipient_user: TestUser, classifier: Classifier,
    commands: CommandTable, recipient: Callable[..., Recipient],
) -> None:
    adapter = AdapterUnderTest(live_prosody, sender_user, classifier, commands,
                               receipt_timeout=timedelta(milliseconds=300))
    assert await adapter.start()
    try:
        phone = await recipient(recipient_user).online()
        await befriend(adapter, phone)
        await phone.offline()
        await adapter.wait_for(of_kind("presence", presence_show="unavailable"))

        sent = adapter.send(recipient_user.jid)
        acked = await adapter.wait_for(of_kind("sm_ack", sent.stanza_id))
        assert acked.fact["recipient_available"] is False
        assert subclass(acked) == "undef.offline_stored", explain(acked)
        await asyncio.sleep(0.5)  # past the 300 ms receipt timeout (a sleep never ends early)

        later = await recipient(recipient_user, "phone-again").online()
        delivered = await later.next_message()
        assert delivered["delay"]["stamp"] is not None, "offline delivery carries a XEP-0203 delay"
        receipt = await adapter.wait_for(of_kind("receipt", sent.stanza_id))
        kinds = [o.fact["kind"] for o in adapter.about(sent.stanza_id)]
        assert [k for k in kinds if k in ("receipt", "stanza_error")] == ["receipt"], kinds
        assert receipt.fact["late"] is True
        assert receipt.classification.scenario == "receipt_late", explain(receipt)
        assert subclass(receipt) == "success.delivered_to_client"
    finally:
        await adapter.stop()


async def test_client_without_receipt_support_is_classified_as_such(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    mute = await recipient(recipient_user, behaviour=Behaviour(auto_receipt=False, advertise_receipts=False,
                                                                advertise_markers=False)).online()
    await befriend(adapter, mute)
    capabilities = await adapter.wait_for(
        lambda o: of_kind("capabilities")(o) and sender_of(o) == mute.full_jid
    )
    assert capabilities.fact["cap_receipts"] is False
    assert subclass(capabilities) == "undef.no_receipt_requested", explain(capabilities)

    sent = adapter.send(recipient_user.jid)
    acked = await adapter.wait_for(of_kind("sm_ack", sent.stanza_id))
    assert acked.fact["cap_receipts"] is False
    assert subclass(acked) == "undef.server_acknowledged_only", explain(acked)
    # The phone got the message and then says something: anything it sent about the message came first.
    assert (await mute.next_message())["id"] == sent.stanza_id
    mute.reply(adapter.provider.bound_jid or adapter.user.jid, "unrelated note")
    await adapter.wait_for(of_kind("inbound_message"))
    assert adapter.about(sent.stanza_id, "receipt") == []


async def test_receipt_from_someone_else_is_kept_and_flagged(
    adapter: AdapterUnderTest, recipient_user: TestUser, live_prosody: ProsodyServer,
    recipient: Callable[..., Recipient],
) -> None:
    await recipient(recipient_user, behaviour=Behaviour(auto_receipt=False)).online()
    stranger = await recipient(live_prosody.fresh_user("stranger")).online()
    sent = adapter.send(recipient_user.jid)
    await adapter.wait_for(of_kind("sm_ack", sent.stanza_id))

    stranger.send_receipt(adapter.provider.bound_jid or adapter.user.jid, sent.stanza_id)
    receipt = await adapter.wait_for(of_kind("receipt", sent.stanza_id))
    assert receipt.fact["sender_is_addressee"] is False
    assert subclass(receipt) == "undef.identity_uncertain", explain(receipt)
