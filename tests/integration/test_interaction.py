"""Displayed markers (cumulative), replies, ACK commands, chat states and presence through a real Prosody."""

from __future__ import annotations

from collections.abc import Callable

from adapter import AdapterUnderTest, befriend, explain, of_kind, presence_from, subclass
from prosody import TestUser
from recipients import Recipient


async def test_displayed_marker_covers_earlier_markable_messages(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    first, plain, third = (adapter.send(recipient_user.jid, markable=flag) for flag in (True, False, True))
    for sent in (first, plain, third):
        await adapter.wait_for(of_kind("receipt", sent.stanza_id))

    phone.send_displayed(adapter.provider.bound_jid or adapter.user.jid, third.stanza_id)
    named = await adapter.wait_for(of_kind("marker", third.stanza_id))
    assert named.fact["marker_inferred"] is False
    assert subclass(named) == "success.displayed_by_client", explain(named)
    assert "interaction.notification.opened" in named.classification.events

    inferred = await adapter.wait_for(of_kind("marker", first.stanza_id))
    assert inferred.fact["marker_inferred"] is True
    assert inferred.inferred_from == third.stanza_id
    assert inferred.classification.scenario == "displayed_inferred", explain(inferred)
    assert subclass(inferred) == "undef.displayed_but_comprehension_unproven"
    assert adapter.about(plain.stanza_id, "marker") == [], "a message that was not markable is not covered"


async def test_ack_reply_and_free_text_reply_are_interaction_evidence(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    await befriend(adapter, phone)
    alert = adapter.send(recipient_user.jid, body="Incident 7: reply ACK to confirm.")
    await adapter.wait_for(of_kind("receipt", alert.stanza_id))
    to_adapter = adapter.provider.bound_jid or adapter.user.jid

    phone.reply(to_adapter, "ack", reply_to_id=alert.stanza_id)
    ack = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id, command="acknowledgement"))
    assert ack.fact["reply_via"] == "reply_reference"
    assert ack.fact["sender_resource_known"] is True
    assert subclass(ack) == "success.acknowledged_by_client", explain(ack)
    assert "interaction.acknowledgement_recorded" in ack.classification.events
    assert "interaction.authenticated_actor_interaction" in ack.classification.events

    phone.reply(to_adapter, "On my way, ten minutes.", thread=alert.stanza_id)
    text = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id, command="free_text"))
    assert text.fact["reply_via"] == "thread"
    assert subclass(text) == "success.reply_received", explain(text)

    phone.reply(adapter.user.jid, "ok")
    bare = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id, reply_via="conversation"))
    assert bare.fact["command"] == "acknowledgement"
    assert subclass(bare) == "success.acknowledged_by_client", explain(bare)


async def test_ack_from_the_resource_that_sent_the_receipt_is_an_acknowledgement(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    """No presence subscription, but the ACK comes from the very full JID whose receipt the server
    stamped a moment before (the real-client case of issue 13): a known resource."""
    phone = await recipient(recipient_user).online()
    alert = adapter.send(recipient_user.jid)
    await adapter.wait_for(of_kind("receipt", alert.stanza_id))
    phone.reply(adapter.provider.bound_jid or adapter.user.jid, "ACK", reply_to_id=alert.stanza_id)
    ack = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id))
    assert ack.fact["sender_resource_known"] is True
    assert subclass(ack) == "success.acknowledged_by_client", explain(ack)


async def test_free_text_from_a_resource_never_seen_while_presence_is_visible_is_identity_uncertain(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    """With presence visible through the subscription, a resource that never showed itself is unknown:
    its free text is a reply of uncertain identity; its ACK would still be an acknowledgement."""
    phone = await recipient(recipient_user).online()
    await befriend(adapter, phone)
    hidden = await recipient(recipient_user, "tablet").online(presence=False)
    alert = adapter.send(recipient_user.jid)
    await adapter.wait_for(of_kind("receipt", alert.stanza_id))
    to = adapter.provider.bound_jid or adapter.user.jid
    hidden.reply(to, "Not me, ask someone else", reply_to_id=alert.stanza_id)
    text = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id))
    assert text.fact["sender_resource_known"] is False
    assert subclass(text) == "undef.reply_identity_uncertain", explain(text)
    hidden.reply(to, "ACK", reply_to_id=alert.stanza_id)
    ack = await adapter.wait_for(of_kind("inbound_message", alert.stanza_id, command="acknowledgement"))
    assert subclass(ack) == "success.acknowledged_by_client", explain(ack)


async def test_chat_state_is_weak_evidence(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    sent = adapter.send(recipient_user.jid)
    await adapter.wait_for(of_kind("receipt", sent.stanza_id))
    phone.send_chat_state(adapter.provider.bound_jid or adapter.user.jid, "composing")
    state = await adapter.wait_for(of_kind("chat_state", chat_state="composing"))
    assessment = state.classification.assessment
    assert assessment.category != "success" or assessment.confidence == "low", explain(state)


async def test_presence_on_and_off_per_resource(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    await befriend(adapter, phone)
    online = await adapter.wait_for(presence_from(phone.full_jid, "available"))
    assert subclass(online) == "success.presence_observed", explain(online)
    assert "notification.endpoint.accepted" in online.classification.events
    tracker = adapter.pipeline.presence(adapter.settings.ref)
    assert tracker.subscription(recipient_user.jid) == "both"
    assert tracker.available_resources(recipient_user.jid) == {phone.full_jid}

    await phone.offline()
    offline = await adapter.wait_for(presence_from(phone.full_jid, "unavailable"))
    assert offline.fact["cap_offline_storage"] is True, "the server advertises msgoffline"
    assert offline.classification.scenario == "presence_unavailable_deferred", explain(offline)
    assert subclass(offline) == "undef.presence_unavailable"
    assert tracker.is_available(recipient_user.jid) is False
