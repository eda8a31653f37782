"""The one evidence path, end to end over HTTP against a real Prosody (issue 11, "Why"): what the units
promise is what the running service tells. Recipients are real slixmpp clients; every assertion reads the
API a coordination engine reads (message, timeline, assessment, feed, dead letters, endpoint quality)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prosody import ProsodyServer
from recipients import RECEIPTS_NS, Behaviour, Recipient
from slixmpp.xmlstream import ET
from test_e2e_prosody import (
    WAIT,
    Adapter,
    adapter,
    recipients,
    send,
    start_service,
    stop_service,
    write_config,
)

pytestmark = pytest.mark.prosody
__all__ = ["adapter", "recipients"]  # fixtures, used by name
DELAY_NS = "urn:xmpp:delay"
RECEIVED = "notification.endpoint.accepted"
GRADE_DIMENSIONS = {
    "strength", "actor_certainty", "authority_certainty", "payload_certainty", "interaction_certainty",
    "timing_certainty", "channel_certainty", "non_repudiation_strength",
}


async def feed(adapter: Adapter, message_id: str | None = None) -> list[dict[str, Any]]:
    """The tenant's whole event feed (paged with the cursor), or the part about one message."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await adapter.get("/adapter/events", limit=500, **({"cursor": cursor} if cursor else {}))
        events += page["events"]
        if not page["events"]:
            break
        cursor = page["next_cursor"]
    return [e for e in events if message_id in (None, e["xmpp_message_id"])]


async def wait_for_feed(adapter: Adapter, message_id: str, event_type: str) -> list[dict[str, Any]]:
    """The message's feed once it carries an event of this type (bounded)."""

    async def scan() -> list[dict[str, Any]]:
        while True:
            events = await feed(adapter, message_id)
            if any(e["event_type"] == event_type for e in events):
                return events
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(scan(), WAIT)
    except TimeoutError:
        seen = [e["event_type"] for e in await feed(adapter, message_id)]
        raise AssertionError(f"no {event_type} on the feed for {message_id}: {seen}") from None


async def attempt_state(adapter: Adapter, message_id: str) -> str:
    return str((await adapter.get(f"/xmpp/messages/{message_id}"))["attempts"][0]["state"])


async def wait_for_state(adapter: Adapter, message_id: str, state: str) -> None:
    async def scan() -> None:
        while await attempt_state(adapter, message_id) != state:
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(scan(), WAIT)
    except TimeoutError:
        found = await attempt_state(adapter, message_id)
        raise AssertionError(f"attempt state {found}, not {state}") from None


def receipt_with_fresh_id(client: Recipient, to: str, message_id: str, stamp: str | None = None) -> None:
    """A XEP-0184 receipt in its own stanza with a new id (as clients and carbons send them), optionally
    carrying a XEP-0203 delay stamp."""
    receipt = client.client.make_message(mto=to)
    receipt["id"] = uuid.uuid4().hex
    receipt.append(ET.Element(f"{{{RECEIPTS_NS}}}received", {"id": message_id}))
    if stamp is not None:
        receipt.append(ET.Element(f"{{{DELAY_NS}}}delay", {"stamp": stamp, "from": client.full_jid}))
    receipt.send()


async def sent_to(adapter: Adapter, client: Recipient, **extra: Any) -> tuple[str, str]:
    """Send one message to the client's bare JID; its message id and the stanza id the client got."""
    result = await adapter.act(send(uuid.uuid4().hex[:8], client.user.jid, **extra))
    delivered = await client.next_message(WAIT)
    return result["xmpp_message_id"], delivered["id"]


async def test_the_attempt_state_follows_the_evidence(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """The mappings' attempt_state reaches the record: delivered, then displayed, and a bounce."""
    phone = await recipients().online()
    message_id, stanza_id = await sent_to(adapter, phone)
    await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    await wait_for_state(adapter, message_id, "delivered_to_client")
    phone.send_displayed(adapter.user.jid + "/adapter", stanza_id)
    await adapter.wait_for_event(message_id, "interaction.notification.opened")
    await wait_for_state(adapter, message_id, "displayed_by_client")

    nobody = f"nobody-{uuid.uuid4().hex[:8]}@localhost"
    bounced = (await adapter.act(send(uuid.uuid4().hex[:8], nobody)))["xmpp_message_id"]
    rejected = await adapter.wait_for_event(bounced, "notification.endpoint.rejected_permanent")
    await wait_for_state(adapter, bounced, rejected["attempt_state"])
    assert rejected["attempt_state"] not in (None, "accepted_by_adapter")


async def test_an_unparsable_provider_event_is_a_listed_dead_letter(adapter: Adapter) -> None:
    """A bridged `<not-xml` is kept: GET /adapter/dead-letters names the reason and the raw reference,
    and pages with its cursor."""
    for _ in range(3):
        response = await adapter.http.post("/adapter/events/provider", json={"raw": "<not-xml"})
        assert response.status_code == 202, response.text
        assert response.json()["observations"] == []
    first = await adapter.get("/adapter/dead-letters", limit=2)
    rest = await adapter.get("/adapter/dead-letters", limit=2, cursor=first["next_cursor"])
    letters = first["dead_letters"] + rest["dead_letters"]
    assert len(letters) == 3 and rest["next_cursor"] is None
    assert len({d["dead_letter_id"] for d in letters}) == 3
    for letter in letters:
        assert letter["stage"] == "parse" and letter["reason"]
        assert letter["raw_event_ref"] and letter["detail"]["native_kind"] == "stanza_received"
    bad = await adapter.http.get("/adapter/dead-letters", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400


async def test_a_delay_stamp_is_the_time_the_evidence_happened(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """XEP-0203: a receipt stamped 2020-01-01 occurred then; it was recorded on arrival."""
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    message_id, stanza_id = await sent_to(adapter, phone)
    receipt_with_fresh_id(phone, adapter.user.jid + "/adapter", stanza_id, stamp="2020-01-01T00:00:00Z")
    receipt = await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    assert datetime.fromisoformat(receipt["occurred_at"]) == datetime(2020, 1, 1, tzinfo=UTC)
    recorded = datetime.fromisoformat(receipt["recorded_at"])
    assert datetime.now(UTC) - recorded < timedelta(hours=1), "recorded when it arrived"


async def test_the_assessment_names_its_participant(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    phone = await recipients().online()
    message_id, _ = await sent_to(adapter, phone)
    await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    assessment = await adapter.assessment(message_id)
    assert assessment["participant_id"] == "participant_456"
    assert assessment["subclass"] == "success.delivered_to_client"


async def test_each_receipt_says_which_resource_sent_it(
    adapter: Adapter, recipients: Callable[..., Recipient], prosody: ProsodyServer
) -> None:
    """§12.4 resource-scoped: two resources of one account each confirm; the timeline and the feed say
    which full JID and resource sent which, and carry the full §14 grade."""
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    laptop = Recipient(prosody, phone.user, "laptop", Behaviour(auto_receipt=False))
    await laptop.online()
    try:
        message_id, stanza_id = await sent_to(adapter, phone)
        for client in (phone, laptop):
            receipt_with_fresh_id(client, adapter.user.jid + "/adapter", stanza_id)

        async def both() -> list[dict[str, Any]]:
            while True:
                receipts = [e for e in await adapter.entries(message_id)
                            if e["event_type"] == RECEIVED]
                if len(receipts) == 2:
                    return receipts
                await asyncio.sleep(0.05)

        receipts = await asyncio.wait_for(both(), WAIT)
        senders = {(e["sender"]["full_jid"], e["sender"]["resource"]) for e in receipts}
        assert senders == {(phone.full_jid, "phone"), (laptop.full_jid, "laptop")}
        on_feed = [e for e in await feed(adapter, message_id) if e["event_type"] == RECEIVED]
        assert {e["sender"]["resource"] for e in on_feed} == {"phone", "laptop"}
        for event in receipts + on_feed:
            assert event["grade"]["id"] == "delivery_receipt"
            assert set(event["grade"]) >= GRADE_DIMENSIONS, "every §14 dimension, not a label"
            assert event["grade"]["strength"] == "strong"
            assert event["xmpp_attempt_id"] and event["participant_id"] == "participant_456"
            assert event["coordination_case_id"] == "case_123" and event["raw_event_ref"]
            assert event["rule_id"] and event["policy_version"] and event["recorded_at"]
            assert event["assessment"]["subclass"] == "success.delivered_to_client"
    finally:
        await laptop.offline()


async def test_a_repeated_receipt_is_one_event(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """The same resource confirming three times (fresh receipt ids) is one notification.endpoint.accepted;
    the displayed marker sent after them shows all three were processed."""
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    message_id, stanza_id = await sent_to(adapter, phone)
    for _ in range(3):
        receipt_with_fresh_id(phone, adapter.user.jid + "/adapter", stanza_id)
    phone.send_displayed(adapter.user.jid + "/adapter", stanza_id)
    events = await wait_for_feed(adapter, message_id, "interaction.notification.opened")
    receipts = [e for e in events if e["event_type"] == RECEIVED]
    assert len(receipts) == 1, receipts
    timeline = [e for e in await adapter.entries(message_id) if e["event_type"] == RECEIVED]
    assert len(timeline) == 1


async def test_a_receipt_timeout_is_on_the_feed_and_every_type_is_declared(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """The timeout that changes the assessment is a feed event; nothing on the feed or in the timeline
    has an event type the descriptor does not declare."""
    silent = await recipients(Behaviour(auto_receipt=False)).online()
    message_id, _ = await sent_to(adapter, silent, options={"receipt_timeout_s": 0.5})
    events = await wait_for_feed(adapter, message_id, "notification.attempt.timed_out")
    timed_out = next(e for e in events if e["event_type"] == "notification.attempt.timed_out")
    assert timed_out["assessment"]["category"] == "undef"
    assessment = await adapter.assessment(message_id)
    assert assessment["subclass"] == timed_out["assessment"]["subclass"]
    declared = set((await adapter.get("/adapter/descriptor"))["emitted_event_types"])
    seen = {e["event_type"] for e in await feed(adapter)}
    seen |= {e["event_type"] for e in await adapter.entries(message_id)}
    assert seen <= declared, seen - declared


async def test_a_cancelled_scheduled_send_ends_cancelled(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """A scheduled send cancelled before its time: an explicit, declared cancelled event in the timeline
    and on the feed, a fail.cancelled assessment, a cancelled attempt, and nothing sent."""
    phone = await recipients().online()
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    request = send(uuid.uuid4().hex[:8], phone.user.jid, send_at=send_at)
    request["action_type"] = "notification.schedule"
    scheduled = await adapter.act(request)
    message_id = scheduled["xmpp_message_id"]
    assert await attempt_state(adapter, message_id) == "deferred"
    cancel = {
        "request_id": f"req-cancel-{message_id}",
        "action_type": "notification.cancel",
        "idempotency_key": f"cancel:{message_id}",
        "operation_id": scheduled["adapter_operation_id"],
    }
    cancelled = await adapter.act(cancel)
    assert cancelled["accepted"] is True
    assert [e["event_type"] for e in cancelled["initial_events"]] == ["notification.attempt.cancelled"]
    entry = await adapter.wait_for_event(message_id, "notification.attempt.cancelled")
    assert entry["assessment"]["subclass"] == "fail.cancelled"
    assessment = await adapter.assessment(message_id)
    assert (assessment["category"], assessment["subclass"]) == ("fail", "fail.cancelled")
    assert await attempt_state(adapter, message_id) == "cancelled"
    assert "notification.attempt.cancelled" in {e["event_type"] for e in await feed(adapter, message_id)}
    declared = (await adapter.get("/adapter/descriptor"))["emitted_event_types"]
    assert "notification.attempt.cancelled" in declared


async def test_an_endpoint_answers_by_its_reference_and_by_its_jid(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    phone = await recipients().online()
    message_id, _ = await sent_to(adapter, phone)
    receipt = await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    ref = receipt["endpoint_ref"]
    assert ref.startswith("ep_")
    by_ref = await adapter.get(f"/xmpp/endpoints/{ref}/quality")
    by_jid = await adapter.get(f"/xmpp/endpoints/{phone.user.jid}/quality")
    assert by_ref == by_jid
    assert by_ref["last_delivery_receipt_at"] is not None
    unknown = await adapter.http.get("/xmpp/endpoints/ep_00000000000000000000/quality")
    assert unknown.status_code == 404


async def test_with_jids_hidden_the_sender_is_a_reference_that_still_tells_resources_apart(
    prosody: ProsodyServer, tmp_path: Path, recipients: Callable[..., Recipient]
) -> None:
    """Metadata-only mode (§28): no sender JID in the timeline or the feed, but two resources stay two."""
    user = prosody.fresh_user("svc")
    config_path = write_config(tmp_path, prosody, user)
    config_path.write_text(config_path.read_text() + "privacy: {metadata_only: true}\n")
    service, http = await start_service(config_path, user)
    private = Adapter(prosody, user, config_path, service, http)
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    laptop = Recipient(prosody, phone.user, "laptop", Behaviour(auto_receipt=False))
    await laptop.online()
    try:
        result = await private.act(send(uuid.uuid4().hex[:8], phone.user.jid))
        message_id, stanza_id = result["xmpp_message_id"], (await phone.next_message(WAIT))["id"]
        for client in (phone, laptop):
            receipt_with_fresh_id(client, user.jid + "/adapter", stanza_id)
        phone.send_displayed(user.jid + "/adapter", stanza_id)
        await wait_for_feed(private, message_id, "interaction.notification.opened")
        receipts = [e for e in await private.entries(message_id) if e["event_type"] == RECEIVED]
        assert len(receipts) == 2
        assert all(e["sender"]["full_jid"] is None for e in receipts)
        assert len({e["sender"]["resource"] for e in receipts}) == 2
        shown = repr(receipts) + repr(await feed(private, message_id))
        assert phone.user.jid not in shown and "laptop" not in shown
    finally:
        await laptop.offline()
        await stop_service(service, http)
