"""Attribution end to end over the HTTP API, on both real servers (Prosody 0.12 and ejabberd 23.01): evidence
tied to the right message, endpoint and actor (§9.4, §12.4, §12.6, §15), recipients that share no presence
subscription with the adapter as well as ones that do, the adapter as a good XMPP citizen (receipts it is
asked for, subscription requests as its account's config says), and inbound messages tied to a registered
tracking context (§4.2). Recipients are real slixmpp clients; each server is started once per session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ejabberd import EjabberdServer
from prosody import ProsodyServer, TestUser
from recipients import Behaviour, Recipient
from test_e2e_prosody import WAIT, Adapter, send, start_service, stop_service, write_config

from xmpp_connect.model.evidence import EvidenceEvent, endpoint_ref

pytestmark = pytest.mark.prosody
Server = ProsodyServer | EjabberdServer


@pytest.fixture
async def adapter(xmpp_server: Server, tmp_path: Path) -> AsyncIterator[Adapter]:
    user = xmpp_server.fresh_user("svc")
    config_path = write_config(tmp_path, xmpp_server, user)
    service, http = await start_service(config_path, user)
    under_test = Adapter(xmpp_server, user, config_path, service, http)
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def recipients(xmpp_server: Server) -> AsyncIterator[Callable[..., Recipient]]:
    made: list[Recipient] = []

    def make(
        behaviour: Behaviour | None = None, user: TestUser | None = None, resource: str = "phone"
    ) -> Recipient:
        account = user or xmpp_server.fresh_user("rcpt")
        client = Recipient(xmpp_server, account, resource, behaviour or Behaviour())
        made.append(client)
        return client

    yield make
    for client in made:
        await client.offline()


async def test_ack_from_addressee_sharing_no_subscription_is_an_acknowledgement(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§12.6/§32.3: the server stamps the addressee's bare JID, so its ACK (no thread, no reference, no
    presence subscription, a resource never seen) is an acknowledgement; and the adapter answers the
    receipt the reply asked for (XEP-0184), as a client does."""
    phone = await recipients().online()
    prompt = send(uuid.uuid4().hex[:8], phone.user.jid, prompt="Incident 7: reply ACK to confirm.")
    prompt.pop("content")
    prompt.update(action_type="interaction.send_command_prompt", expected_keywords=["ACK"])
    message_id = (await adapter.act(prompt))["xmpp_message_id"]
    await phone.next_message(WAIT)
    ack = phone.client.make_message(mto=adapter.user.jid + "/adapter", mbody="  ACK ", mtype="chat")
    ack["request_receipt"] = True
    ack.send()
    recorded = await adapter.wait_for_event(message_id, "interaction.acknowledgement_recorded")
    assert recorded["assessment"]["subclass"] == "success.acknowledged_by_client"
    assert recorded["inferred"] is True, "tied to our message by the conversation, not by a reference"
    assert "interaction.unverified_actor_interaction" not in {
        e["event_type"] for e in await adapter.entries(message_id)
    }
    assert await asyncio.wait_for(phone.receipts.get(), WAIT) == ack["id"]


async def test_receipt_from_another_resource_is_not_delivery_to_a_full_jid(
    adapter: Adapter, recipients: Callable[..., Recipient], xmpp_server: Server
) -> None:
    """§9.4: a message to bob/phone confirmed by bob/laptop is evidence about the account, not delivery to
    the addressed session; the addressed resource's own receipt then is."""
    user = xmpp_server.fresh_user("rcpt")
    phone = await recipients(Behaviour(auto_receipt=False), user).online()
    laptop = await recipients(Behaviour(auto_receipt=False), user, "laptop").online()
    request = send(uuid.uuid4().hex[:8], phone.full_jid)
    request["target_endpoint"] = {"endpoint_type": "full_jid", "value": phone.full_jid}
    message_id = (await adapter.act(request))["xmpp_message_id"]
    stanza_id = (await phone.next_message(WAIT))["id"]
    laptop.send_receipt(adapter.user.jid + "/adapter", stanza_id)

    async def laptop_receipt() -> dict:
        while True:
            for entry in await adapter.entries(message_id):
                if entry["scenario"] == "delivered_to_other_resource":
                    return entry
            await asyncio.sleep(0.02)

    other = await asyncio.wait_for(laptop_receipt(), WAIT)
    assert other["event_type"] == "notification.endpoint.unknown"
    assert other["assessment"]["subclass"] == "undef.resource_unknown"
    assert other["sender"]["full_jid"] == laptop.full_jid
    assert (await adapter.assessment(message_id))["category"] == "undef"
    phone.send_receipt(adapter.user.jid + "/adapter", stanza_id)
    assessment = await adapter.wait_for_subclass(message_id, lambda s: s == "success.delivered_to_client")
    assert assessment["category"] == "success"


async def test_reply_naming_a_message_never_sent_is_not_attached_to_ours(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """An explicit XEP-0461 reference to another message is never re-attributed to our latest message;
    the displayed marker sent after it on the same stream shows the reply was processed."""
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    delivered = await phone.next_message(WAIT)
    phone.reply(adapter.user.jid + "/adapter", "ACK", reply_to_id="never-sent-by-the-adapter")
    phone.send_displayed(adapter.user.jid + "/adapter", delivered["id"])
    await adapter.wait_for_event(message_id, "interaction.notification.opened")
    kinds = {e["event_type"] for e in await adapter.entries(message_id)}
    assert not kinds & {"interaction.acknowledgement_recorded", "interaction.reply_received"}
    assert (await adapter.assessment(message_id))["subclass"] == "success.displayed_by_client"


async def test_bare_unavailable_while_our_subscription_is_pending_does_not_mark_offline(
    adapter: Adapter, recipients: Callable[..., Recipient], xmpp_server: Server
) -> None:
    """§15: the recipient subscribes to the adapter but ignores the adapter's request back; Prosody then
    sends the adapter a bare unavailable for it. That is not availability evidence: the next send to the
    online recipient is not graded offline, and its receipt is delivery. (ejabberd 23.01 sends no bare
    unavailable there; on it the same steps show the pending subscription alone grades nothing offline.)"""
    phone = await recipients().online()
    phone.client.auto_authorize = None
    first = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    await phone.next_message(WAIT)
    phone.subscribe_to(adapter.user.jid)
    if isinstance(xmpp_server, EjabberdServer):
        await wait_for_rule(adapter, first, "presence.subscription_traffic")
    else:
        bare_unavailable = await wait_for_rule(adapter, first, "presence.not_visible")
        assert bare_unavailable["sender"]["full_jid"] == phone.user.jid
    second = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    await phone.next_message(WAIT)
    delivered = await adapter.wait_for_subclass(second, lambda s: s == "success.delivered_to_client")
    assert delivered["category"] == "success"
    entries = await adapter.entries(second)
    assert "notification.endpoint.deferred" not in {e["event_type"] for e in entries}
    assert "undef.offline_stored" not in {e["assessment"]["subclass"] for e in entries}


async def wait_for_rule(adapter: Adapter, message_id: str, rule_id: str) -> dict[str, Any]:
    """The message's first timeline entry classified by this rule, waiting for it (bounded)."""

    async def scan() -> dict[str, Any]:
        while True:
            for entry in await adapter.entries(message_id):
                if entry.get("rule_id") == rule_id:
                    return entry
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(scan(), WAIT)


@pytest.mark.parametrize(("choice", "visible"), [("approve_and_subscribe", True), ("ignore", False)])
async def test_subscription_requests_follow_the_accounts_choice(
    xmpp_server: Server, tmp_path: Path, recipients: Callable[..., Recipient], choice: str, visible: bool
) -> None:
    """What an account does with a contact's subscription request is its config's choice: approve and ask
    back (the contact then sees our presence and we see theirs), or ignore. The receipt the adapter returns
    for a later message on the same streams shows the request was handled."""
    user = xmpp_server.fresh_user("svc")
    config_path = write_config(tmp_path, xmpp_server, user)
    config_path.write_text(config_path.read_text().replace(
        "    ca_certs:", f"    subscription_requests: {choice}\n    ca_certs:"))
    service, http = await start_service(config_path, user)
    try:
        phone = await recipients().online()
        phone.subscribe_to(user.jid)
        ping = phone.client.make_message(mto=f"{user.jid}/adapter", mbody="hello", mtype="chat")
        ping["request_receipt"] = True
        ping.send()
        assert await asyncio.wait_for(phone.receipts.get(), WAIT) == ping["id"]
        item = phone.client.client_roster[user.jid]
        # "from" or "both" on the contact's side: the adapter subscribed to its presence (asked back).
        assert (item["subscription"] in ("from", "both")) is visible, item["subscription"]
    finally:
        await stop_service(service, http)


# --- §4.2 notification.register_tracking_context -----------------------------------------------------------


def register(jid: str, key: str, expires_at: datetime | None = None) -> dict[str, Any]:
    """A notification.register_tracking_context request for a bare JID."""
    request: dict[str, Any] = {
        "request_id": f"req-ctx-{key}",
        "action_type": "notification.register_tracking_context",
        "idempotency_key": f"ctx:{key}",
        "requested_at": "2026-01-01T12:00:00Z",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": jid},
        "tracking_context": {
            "correlation_id": f"corr-ctx-{key}",
            "coordination_case_id": f"case-ctx-{key}",
            "participant_id": f"participant-ctx-{key}",
        },
    }
    if expires_at is not None:
        request["expires_at"] = expires_at.isoformat()
    return request


async def feed(adapter: Adapter) -> list[dict[str, Any]]:
    """The tenant's whole event feed, page by page."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await adapter.get("/adapter/events", **({"cursor": cursor} if cursor else {}), limit=500)
        events.extend(page["events"])
        if not page["events"] or not page["next_cursor"]:
            return events
        cursor = page["next_cursor"]


async def logged_from(adapter: Adapter, endpoint: str, sender: str) -> EvidenceEvent:
    """The endpoint's first log entry (emitted to the feed or not) whose evidence the sender sent: waits
    until the service recorded the sender's message, so its absence from the feed is a verdict."""
    store = adapter.service.store

    async def scan() -> EvidenceEvent:
        while True:
            for event in store.evidence_for_endpoint("ops", endpoint):
                if event.sender_jid == sender:
                    return event
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(scan(), WAIT)


async def test_unprompted_message_is_tied_to_the_registered_tracking_context(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§4.2: a context registered for a recipient that shares no presence subscription with the adapter
    (and was never sent anything) shows on its endpoint; the recipient's unprompted message then reaches the
    feed with the context's case, participant and correlation ids, as an interaction from its bare JID that
    acknowledges nothing, tied to the context by that JID only (inferred)."""
    phone = await recipients().online()
    key = uuid.uuid4().hex[:8]
    result = await adapter.act(register(phone.user.jid, key))
    assert (result["accepted"], result["action_state"]) == (True, "completed")
    endpoint = await adapter.get(f"/xmpp/endpoints/{phone.user.jid}")
    assert endpoint["tracking_context"]["ids"]["correlation_id"] == f"corr-ctx-{key}"
    assert endpoint["tracking_context"]["live"] is True
    assert endpoint == await adapter.get(f"/xmpp/endpoints/{endpoint['endpoint_ref']}")

    phone.reply(adapter.user.jid + "/adapter", "ACK")

    async def tied() -> dict[str, Any]:
        while True:
            for event in await feed(adapter):
                if event["correlation_id"] == f"corr-ctx-{key}":
                    return event
            await asyncio.sleep(0.05)

    event = await asyncio.wait_for(tied(), WAIT)
    assert event["event_type"] == "interaction.unprompted_message_received"
    assert (event["coordination_case_id"], event["participant_id"]) == (f"case-ctx-{key}",
                                                                       f"participant-ctx-{key}")
    assert event["endpoint_ref"] == endpoint["endpoint_ref"]
    assert event["sender"]["full_jid"] == phone.full_jid
    assert event["assessment"] == {"category": "undef", "subclass": "undef.unprompted_interaction",
                                   "confidence": "medium"}
    assert event["inferred"] is True
    assert event["xmpp_message_id"] is None and event["attempt_state"] is None
    from_phone = [e for e in await feed(adapter) if e["endpoint_ref"] == endpoint["endpoint_ref"]]
    assert [e["event_type"] for e in from_phone] == ["interaction.unprompted_message_received"], (
        "an unprompted ACK acknowledges nothing"
    )


async def test_expired_or_unregistered_context_does_not_tie(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """A context whose expires_at passed, and a JID with none, tie nothing: their messages are recorded
    (the log has them) but reach the feed with no case, participant or correlation id of any context."""
    expired = await recipients().online()
    stranger = await recipients().online()
    key = uuid.uuid4().hex[:8]
    until = datetime.now(UTC) + timedelta(seconds=2)
    assert (await adapter.act(register(expired.user.jid, key, until)))["accepted"] is True

    async def lapsed() -> dict[str, Any]:
        while True:
            endpoint = await adapter.get(f"/xmpp/endpoints/{expired.user.jid}")
            if endpoint["tracking_context"]["live"] is False:
                return endpoint
            await asyncio.sleep(0.1)

    endpoint = await asyncio.wait_for(lapsed(), WAIT)
    assert endpoint["tracking_context"]["expires_at"] == until.isoformat()
    assert (await adapter.http.get(f"/xmpp/endpoints/{stranger.user.jid}")).status_code == 404

    for client in (expired, stranger):
        client.reply(adapter.user.jid + "/adapter", "Is the document still available?")
    assert endpoint["endpoint_ref"] == endpoint_ref("ops", expired.user.jid)
    for client in (expired, stranger):
        ref = endpoint_ref("ops", client.user.jid)
        logged = await logged_from(adapter, ref, client.full_jid)
        assert logged.rule_id == "inbound.not_linked" and logged.fact.get("context_registered") is False
        assert (logged.case_id, logged.participant_id, logged.correlation_id) == (None, None, None)
        assert not [e for e in await feed(adapter) if e["endpoint_ref"] == ref]

