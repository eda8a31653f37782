"""§12.7 and §32.4 against a real Prosody MUC: room acceptance, occupants, occupant markers and replies
(participant evidence only where the room shows real JIDs), room errors, history replay, room kinds."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from adapter import AdapterUnderTest, explain, of_kind, sender_of, subclass
from prosody import MUC_DOMAIN, ProsodyServer, TestUser
from recipients import Recipient

from xmpp_connect.config.settings import RoomConfig, Secret
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.stanza_builders import OutboundMessage


@pytest.fixture
def room() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}"


def groupchat(adapter: AdapterUnderTest, room: str, body: str = "New incident case opened.",
              markable: bool = True):
    return adapter.provider.send_groupchat(OutboundMessage(to_jid=room, body=body, markable=markable))


async def test_room_notification_flow_in_a_non_anonymous_room(
    adapter: AdapterUnderTest, room: str, recipient_user: TestUser, recipient: Callable[..., Recipient],
) -> None:
    joined = await adapter.provider.join_room(room, "ops-bot")
    assert (joined.joined, joined.created, joined.room_anonymity) == (True, True, "non_anonymous")
    assert joined.room_type == "public"
    expected = {"room_reflection", "stable_id", "occupant_markers", "occupant_identity", "archive"}
    assert expected <= joined.expected_evidence

    bob = await recipient(recipient_user).online()
    assert await bob.join_room(room, "bob") == "joined"
    present = await adapter.wait_for(of_kind("muc_occupant", presence_show="available"))
    assert present.fact["occupant_mapping_reliable"] is True
    assert subclass(present) == "success.presence_observed", explain(present)
    assert adapter.pipeline.rooms("notify").real_jid(f"{room}/bob") == bob.full_jid

    sent = groupchat(adapter, room)
    reflected = await adapter.wait_for(of_kind("muc_reflection", sent.stanza_id))
    assert reflected.classification.scenario == "muc_room_accepted", explain(reflected)
    assert subclass(reflected) == "undef.muc_room_message_participant_uncertain"
    assert reflected.classification.events == ("notification.endpoint.accepted",)
    stable_id = adapter.index.lookup(sent.stanza_id).stable_id
    assert stable_id and stable_id != sent.stanza_id, "the room's stanza-id is recorded as the stable id"
    acked = await adapter.wait_for(of_kind("sm_ack", sent.stanza_id))
    assert subclass(acked) == "undef.server_acknowledged_only", explain(acked)

    bob.displayed_in_room(room, stable_id)
    displayed = await adapter.wait_for(of_kind("muc_marker", sent.stanza_id))
    assert displayed.fact["occupant_mapping_reliable"] is True
    assert displayed.classification.scenario == "muc_occupant_displayed", explain(displayed)
    assert subclass(displayed) == "success.displayed_by_client"
    assert displayed.classification.assessment.confidence == "medium"

    bob.say_in_room(room, "Looking into it.", reply_to_id=stable_id)
    reply = await adapter.wait_for(of_kind("muc_message", sent.stanza_id, reply_via="reply_reference"))
    assert subclass(reply) == "success.reply_received", explain(reply)
    assert reply.classification.events == ("interaction.reply_received",)

    bob.say_in_room(room, "Unrelated: lunch at noon?")
    chatter = await adapter.wait_for(of_kind("muc_message", reply_via="none"))
    assert chatter.classification.scenario == "metadata_only", explain(chatter)
    assert chatter.classification.events == ()

    bob.leave_room(room, "bob")
    left = await adapter.wait_for(of_kind("muc_occupant", presence_show="unavailable"))
    assert left.classification.scenario == "muc_participant_left", explain(left)
    assert sender_of(left) == f"{room}/bob"
    assert adapter.pipeline.rooms("notify").occupants(room) == {}
    own = [o for o in adapter.observations
           if o.fact["kind"] == "muc_occupant" and sender_of(o) == f"{room}/ops-bot"]
    assert own == [], "our own occupant presence is never occupant evidence"
    assert any(e.kind == "room_self_presence" for e in adapter.events)


async def test_semi_anonymous_room_keeps_occupant_identity_uncertain(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable,
    room: str, recipient_user: TestUser, recipient: Callable[..., Recipient],
) -> None:
    settings = RoomConfig(room_jid=room, nick="ops-bot", non_anonymous=False, join_at_start=False)
    anonymous = AdapterUnderTest(live_prosody, sender_user, classifier, commands, rooms=(settings,))
    assert await anonymous.start()
    try:
        joined = await anonymous.provider.join_room(room, "ops-bot")
        assert joined.room_anonymity == "semi_anonymous" and joined.room_type == "semi_anonymous"
        assert joined.occupant_mapping_confidence == "low"
        assert "muc_semianonymous" in joined.features
        assert "occupant_identity" not in joined.expected_evidence

        bob = await recipient(recipient_user).online()
        assert await bob.join_room(room, "bob") == "joined"
        occupant = await anonymous.wait_for(of_kind("muc_occupant", presence_show="available"))
        # Even where the room shows its owner (us) Bob's real JID, a semi-anonymous room stays unreliable.
        assert occupant.fact["occupant_mapping_reliable"] is False
        assert occupant.classification.scenario == "muc_occupant_unattributed", explain(occupant)

        sent = groupchat(anonymous, room)
        await anonymous.wait_for(of_kind("muc_reflection", sent.stanza_id))
        stable_id = anonymous.index.lookup(sent.stanza_id).stable_id
        bob.displayed_in_room(room, stable_id)
        marker = await anonymous.wait_for(of_kind("muc_marker", sent.stanza_id))
        assert marker.classification.scenario == "muc_anonymous_identity_uncertain", explain(marker)
        assert subclass(marker) == "undef.identity_uncertain"
        assert marker.classification.assessment.confidence == "low"
    finally:
        await anonymous.stop()


async def test_groupchat_to_a_missing_room_is_room_unavailable(adapter: AdapterUnderTest, room: str) -> None:
    sent = groupchat(adapter, room)
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert error.fact["error_condition"] == "item_not_found"
    assert error.classification.scenario == "muc_room_unavailable", explain(error)
    assert subclass(error) == "fail.muc_room_unavailable"
    assert error.classification.events == ("notification.endpoint.unreachable",)


async def test_joining_a_missing_room_without_leave_to_create_reports_it_missing(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable,
    room: str,
) -> None:
    cautious = AdapterUnderTest(live_prosody, sender_user, classifier, commands,
                                rooms=(RoomConfig(room_jid=room, create=False, join_at_start=False),))
    assert await cautious.start()
    try:
        joined = await cautious.provider.join_room(room, "ops-bot")
        assert (joined.joined, joined.error_condition) == (False, "item_not_found")
        sent = groupchat(cautious, room)
        error = await cautious.wait_for(of_kind("stanza_error", sent.stanza_id))
        assert subclass(error) == "fail.muc_room_unavailable", "the room we created by mistake is gone"
    finally:
        await cautious.stop()


async def test_room_refusals_are_muc_forbidden(
    adapter: AdapterUnderTest, live_prosody: ProsodyServer, classifier: Classifier, commands: CommandTable,
) -> None:
    rooms = {
        "open": RoomConfig(room_jid=f"open-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}"),
        "members": RoomConfig(room_jid=f"members-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}", members_only=True),
        "moderated": RoomConfig(room_jid=f"moderated-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}", moderated=True),
        "secret": RoomConfig(room_jid=f"secret-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}",
                             password=Secret("s3cret")),
    }
    owner = AdapterUnderTest(live_prosody, live_prosody.fresh_user("owner"), classifier, commands,
                             account="owner", rooms=tuple(rooms.values()))
    assert await owner.start()
    try:
        assert set(owner.provider.groups.joined) == {r.room_jid for r in rooms.values()}

        not_joined = groupchat(adapter, rooms["open"].room_jid)
        error = await adapter.wait_for(of_kind("stanza_error", not_joined.stanza_id))
        assert error.fact["error_condition"] == "not_acceptable"
        assert subclass(error) == "fail.muc_forbidden", explain(error)

        refused = await adapter.provider.join_room(rooms["members"].room_jid, "ops-bot", attempt_id="att-1")
        assert (refused.joined, refused.error_condition) == (False, "registration_required")
        member_error = await adapter.wait_for(
            of_kind("stanza_error", error_condition="registration_required"))
        assert member_error.outbound is not None and member_error.outbound.attempt_id == "att-1"
        assert subclass(member_error) == "fail.muc_forbidden", explain(member_error)

        no_password = await adapter.provider.join_room(rooms["secret"].room_jid, "ops-bot")
        assert (no_password.joined, no_password.error_condition) == (False, "not_authorized")
        with_password = await adapter.provider.join_room(rooms["secret"].room_jid, "ops-bot", "s3cret")
        assert with_password.joined and with_password.room_type == "password_protected"

        visitor = await adapter.provider.join_room(rooms["moderated"].room_jid, "ops-bot")
        assert visitor.joined
        voiceless = groupchat(adapter, rooms["moderated"].room_jid)
        no_voice = await adapter.wait_for(of_kind("stanza_error", voiceless.stanza_id))
        assert no_voice.fact["error_condition"] == "forbidden"
        assert subclass(no_voice) == "fail.muc_forbidden", explain(no_voice)
        assert no_voice.classification.events == ("notification.endpoint.rejected_permanent",)
    finally:
        await owner.stop()


async def test_history_replay_after_a_restart_is_history_not_delivery(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable,
    room: str, recipient_user: TestUser, recipient: Callable[..., Recipient],
) -> None:
    settings = RoomConfig(room_jid=room, nick="ops-bot", history_stanzas=20)
    first = AdapterUnderTest(live_prosody, sender_user, classifier, commands, rooms=(settings,))
    assert await first.start()
    bob = await recipient(recipient_user).online()
    assert await bob.join_room(room, "bob") == "joined"
    sent = groupchat(first, room, body="Incident 9 opened.")
    await first.wait_for(of_kind("muc_reflection", sent.stanza_id))
    bob.say_in_room(room, "Seen.")
    await first.wait_for(of_kind("muc_message"))
    await first.stop()

    restarted = AdapterUnderTest(live_prosody, sender_user, classifier, commands, index=first.index,
                                 rooms=(settings,))
    assert await restarted.start()
    try:
        replayed = await restarted.wait_for(of_kind("muc_reflection", sent.stanza_id))
        assert replayed.fact["delayed"] is True
        assert replayed.classification.scenario == "muc_history_replay", explain(replayed)
        assert subclass(replayed) == "undef.delivery_pending"
        assert replayed.classification.events == ()
        others = await restarted.wait_for(of_kind("muc_history"))
        assert others.classification.scenario == "metadata_only", explain(others)
    finally:
        await restarted.stop()
