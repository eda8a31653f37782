"""End to end over the HTTP API against a real Prosody: the service runs from a config file with the account
password in an environment variable; recipients are real slixmpp clients. Each test asserts what a
coordination engine reads: the action result, the timeline's events, the assessment (§36, §32)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import LiveApp, default_policy
from prosody import PUBSUB_DOMAIN, ProsodyServer, TestUser
from recipients import Behaviour, Recipient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import load_config
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.store.sqlite import SqliteStore

pytestmark = pytest.mark.prosody
WAIT = 30.0
TOKEN = "e2e-token-5d2c9a"
CONFIG = """\
data_dir: data
storage: {{kind: sqlite, path: store.sqlite3}}
policy_dir: {policy_dir}
timers: {{receipt_timeout_s: 30}}
accounts:
  - ref: notify
    provider: slixmpp
    jid: {jid}/adapter
    password_env: XC_E2E_PASSWORD
    host: 127.0.0.1
    port: {port}
    ca_certs: {ca}
tenants:
  - {{id: ops, token_env: XC_E2E_TOKEN, accounts: [notify]}}
"""


class Adapter(LiveApp):
    """The service under test and an HTTP client of its app, for one fresh sender account."""

    def __init__(self, server: ProsodyServer, user: TestUser, config_path: Path, service: AdapterService,
                 http: httpx.AsyncClient) -> None:
        super().__init__(service, http, WAIT)
        self.server = server
        self.user = user
        self.config_path = config_path

    async def stanza_id(self, message_id: str) -> str:
        return (await self.get(f"/xmpp/messages/{message_id}"))["attempts"][0]["stanza_id"]

    async def befriend(self, client: Recipient) -> None:
        """Mutual presence subscription (the adapter authorizes and subscribes back), so the recipient's
        resource is known; returns once the adapter saw the client available."""
        client.subscribe_to(self.user.jid)
        presence = self.service.pipelines["ops"].presence("notify")

        async def seen() -> None:
            while not presence.is_available(client.full_jid):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(seen(), WAIT)

    async def wait_for_subclass(self, message_id: str, accepted: Callable[[str], bool]) -> dict:
        async def scan() -> dict:
            while True:
                result = await self.assessment(message_id)
                if accepted(result["subclass"]):
                    return result
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(scan(), WAIT)


def write_config(tmp_path: Path, server: ProsodyServer, user: TestUser) -> Path:
    path = tmp_path / "xmpp-connect.yaml"
    repo = Path(__file__).resolve().parents[2]
    path.write_text(CONFIG.format(policy_dir=repo, jid=user.jid, port=server.port, ca=server.cert_path))
    return path


async def start_service(config_path: Path, user: TestUser) -> tuple[AdapterService, httpx.AsyncClient]:
    config = load_config(config_path, env={"XC_E2E_PASSWORD": user.password, "XC_E2E_TOKEN": TOKEN})
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path), default_policy())
    await service.start()
    transport = httpx.ASGITransport(app=build_app(service))
    http = httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return service, http


async def stop_service(service: AdapterService, http: httpx.AsyncClient) -> None:
    await http.aclose()
    await service.stop()


@pytest.fixture
async def adapter(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Adapter]:
    user = prosody.fresh_user("svc")
    config_path = write_config(tmp_path, prosody, user)
    service, http = await start_service(config_path, user)
    under_test = Adapter(prosody, user, config_path, service, http)
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def recipients(prosody: ProsodyServer) -> AsyncIterator[Callable[..., Recipient]]:
    made: list[Recipient] = []

    def make(behaviour: Behaviour | None = None, user: TestUser | None = None) -> Recipient:
        client = Recipient(prosody, user or prosody.fresh_user("rcpt"), "phone", behaviour or Behaviour())
        made.append(client)
        return client

    yield make
    for client in made:
        await client.offline()


def send(key: str, to: str, **extra: Any) -> dict[str, Any]:
    """A §21.1 notification.send request."""
    return {
        "request_id": f"req-{key}",
        "action_type": "notification.send",
        "coordination_case_id": "case_123",
        "participant_id": "participant_456",
        "channel": "xmpp",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": to},
        "content": {"body": "A document is available: https://portal.example/access/abc"},
        "tracking_context": {
            "correlation_id": f"corr-{key}",
            "coordination_case_id": "case_123",
            "participant_id": "participant_456",
            "notification_id": key,
        },
        "idempotency_key": f"case_123:participant_456:xmpp:{key}",
        "requested_at": "2026-01-01T12:00:00Z",
        **extra,
    }


async def _next_is_a_later_send(adapter: Adapter, phone: Recipient) -> None:
    """A replay sent nothing: a later send to the same phone is the next message it gets (the service's
    stanzas to one recipient travel one stream, in order)."""
    later = send(uuid.uuid4().hex[:8], phone.user.jid, content={"body": "A later notification."})
    assert (await adapter.act(later))["accepted"] is True
    assert (await phone.next_message(WAIT))["body"] == "A later notification."


async def test_secure_document_notification_steps_4_to_9(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§32.1 4–9 and §36 1–6, 9–11: accepted, sent, server acceptance apart from client delivery."""
    phone = await recipients().online()
    request = send(uuid.uuid4().hex[:8], phone.user.jid)
    result = await adapter.act(request)
    assert result["accepted"] is True and result["action_state"] == "accepted"
    assert [e["event_type"] for e in result["initial_events"]] == ["notification.attempt.accepted_by_adapter"]
    message_id = result["xmpp_message_id"]
    delivered = await phone.next_message(WAIT)
    assert delivered["id"] == await adapter.stanza_id(message_id)
    accepted = await adapter.wait_for_event(message_id, "notification.attempt.accepted_by_provider")
    assert accepted["assessment"]["category"] == "undef", "server acceptance is not delivery"
    receipt = await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    assert receipt["assessment"]["subclass"] == "success.delivered_to_client"
    assert (
        receipt["coordination_case_id"] == "case_123"
        and receipt["correlation_id"] == request["tracking_context"]["correlation_id"]
    )
    timeline = [e["event_type"] for e in await adapter.entries(message_id)]
    assert timeline.index("notification.attempt.accepted_by_adapter") < timeline.index(
        "notification.endpoint.accepted"
    )
    assessment = await adapter.assessment(message_id)
    assert assessment["subclass"] == "success.delivered_to_client", "delivery, not reading"
    assert "interaction.notification.opened" not in timeline
    replay = await adapter.act(request)
    assert replay["idempotent_replay"] is True
    assert replay["adapter_operation_id"] == result["adapter_operation_id"]
    await _next_is_a_later_send(adapter, phone)


async def test_displayed_marker_is_opened_not_comprehension(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§32.2: a displayed marker -> interaction.notification.opened; reading is not comprehension."""
    phone = await recipients().online()
    result = await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid))
    message_id = result["xmpp_message_id"]
    delivered = await phone.next_message(WAIT)
    phone.send_displayed(adapter.user.jid + "/adapter", delivered["id"])
    opened = await adapter.wait_for_event(message_id, "interaction.notification.opened")
    assert opened["assessment"]["subclass"] == "success.displayed_by_client"
    assessment = await adapter.wait_for_subclass(message_id, lambda s: s == "success.displayed_by_client")
    assert assessment["category"] == "success"
    assert "interaction.acknowledgement_recorded" not in {
        e["event_type"] for e in await adapter.entries(message_id)
    }


async def test_ack_reply_and_free_text_reply(adapter: Adapter, recipients: Callable[..., Recipient]) -> None:
    """§32.3 and §36.7: an ACK reply is an acknowledgement, free text a reply; both interaction evidence."""
    phone = await recipients().online()
    await adapter.befriend(phone)
    prompt = send(uuid.uuid4().hex[:8], phone.user.jid, prompt="Incident 42: reply ACK to confirm.")
    prompt.pop("content")
    prompt.update(action_type="interaction.send_command_prompt", expected_keywords=["ACK", "DECLINE"])
    ack_id = (await adapter.act(prompt))["xmpp_message_id"]
    first = await phone.next_message(WAIT)
    phone.reply(adapter.user.jid + "/adapter", "ack", reply_to_id=first["id"])
    recorded = await adapter.wait_for_event(ack_id, "interaction.acknowledgement_recorded")
    assert recorded["assessment"]["subclass"] == "success.acknowledged_by_client"
    text_id = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    second = await phone.next_message(WAIT)
    phone.reply(adapter.user.jid + "/adapter", "I will look at it tomorrow", reply_to_id=second["id"])
    reply = await adapter.wait_for_event(text_id, "interaction.reply_received")
    assert reply["assessment"]["category"] in ("success", "undef")
    assert (await adapter.assessment(text_id))["subclass"] != "success.acknowledged_by_client"


async def test_missing_receipt_is_unresolved_not_failure(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§36.8: no receipt within the timeout -> undef, never fail."""
    silent = await recipients(Behaviour(auto_receipt=False)).online()
    request = send(uuid.uuid4().hex[:8], silent.user.jid, options={"receipt_timeout_s": 0.5})
    message_id = (await adapter.act(request))["xmpp_message_id"]
    await silent.next_message(WAIT)
    result = await adapter.wait_for_subclass(
        message_id,
        lambda s: s in ("undef.receipt_requested_no_response", "undef.presence_available_but_no_receipt"),
    )
    assert result["category"] == "undef"


async def test_stanza_error_for_unknown_account(adapter: Adapter) -> None:
    """§36.11 basic stanza error classification: Prosody's cancel/service-unavailable for a missing user."""
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@localhost"
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], nobody)))["xmpp_message_id"]
    rejected = await adapter.wait_for_event(message_id, "notification.endpoint.rejected_permanent")
    assert rejected["assessment"]["category"] == "fail"


async def test_presence_is_observed_as_reachability_only(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """§36 basic presence observation: presence is reachability context, never reading."""
    phone = await recipients(Behaviour(auto_receipt=False)).online()
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    await phone.next_message(WAIT)
    phone.subscribe_to(adapter.user.jid)

    async def presence_seen() -> None:
        while not any(e["scenario"].startswith("presence") for e in await adapter.entries(message_id)):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(presence_seen(), WAIT)
    assessment = await adapter.assessment(message_id)
    assert assessment["subclass"] not in ("success.delivered_to_client", "success.displayed_by_client")


async def test_restart_mid_flow_recovers_evidence_and_keeps_idempotency(
    adapter: Adapter, recipients: Callable[..., Recipient]
) -> None:
    """Evidence that arrived while the service was down is recovered; a resend returns the operation."""
    later = recipients()
    request = send(uuid.uuid4().hex[:8], later.user.jid)
    first = await adapter.act(request)
    message_id = first["xmpp_message_id"]
    await adapter.wait_for_event(message_id, "notification.attempt.accepted_by_provider")
    await stop_service(adapter.service, adapter.http)
    await later.online()
    await later.next_message(WAIT)
    await later.round_trip()  # Prosody has its receipt before the service comes back
    adapter.service, adapter.http = await start_service(adapter.config_path, adapter.user)
    receipt = await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    assert receipt["assessment"]["subclass"] == "success.delivered_to_client"
    replay = await adapter.act(request)
    assert replay["idempotent_replay"] is True
    assert replay["adapter_operation_id"] == first["adapter_operation_id"]
    await _next_is_a_later_send(adapter, later)


async def test_health_reports_the_real_stream(adapter: Adapter) -> None:
    health = await adapter.get("/adapter/health")
    (account,) = health["accounts"]
    assert account["stream_status"] == "connected" and account["authentication_status"] == "authenticated"
    assert account["tls_status"] == "active" and account["tls_verification"] is True


needs_rooms_and_nodes = pytest.mark.skipif(
    not hasattr(SlixmppProvider, "publish"),
    reason="the slixmpp provider has no room/node methods yet (issue 6)",
)


@needs_rooms_and_nodes
async def test_publish_to_a_missing_node_is_a_feed_failure(adapter: Adapter) -> None:
    """§32.5 (failure side): Prosody answers item-not-found for a node that does not exist."""
    body = {"idempotency_key": uuid.uuid4().hex, "service": PUBSUB_DOMAIN, "item": {"title": "New event"}}
    result = await adapter.act(body, path=f"/xmpp/pubsub/missing-{uuid.uuid4().hex[:6]}/publish")
    failed = await adapter.wait_for_subclass(result["xmpp_message_id"], lambda s: s.startswith("fail."))
    assert failed["subclass"] in ("fail.pubsub_node_unavailable", "fail.authorization_failed"), (
        "Prosody refuses a non-admin's publish to a missing node (auto-create) with forbidden"
    )
    assert "feed.item.published" not in {
        e["event_type"] for e in await adapter.entries(result["xmpp_message_id"])
    }


@needs_rooms_and_nodes
async def test_publish_to_a_configured_node_is_publication_not_awareness(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    """§32.5: the service's account creates its configured node at start (Prosody lets only admins create
    nodes), then a publish over HTTP is evidenced as published: feed-level, no subscriber's awareness."""
    node = f"events-{uuid.uuid4().hex[:8]}"
    user = prosody.admin_user()
    path = write_config(tmp_path, prosody, user)
    path.write_text(path.read_text().replace(
        f"    jid: {user.jid}/adapter\n",
        f"    jid: {user.jid}/e2e-feed\n"
        f"    nodes: [{{service_jid: {PUBSUB_DOMAIN}, node: {node}, create: true,"
        " access_model: open, publisher_model: publishers}]\n",
    ))
    service, http = await start_service(path, user)
    adapter = Adapter(prosody, user, path, service, http)
    try:
        body = {"idempotency_key": uuid.uuid4().hex, "service": PUBSUB_DOMAIN, "item": {"title": "New event"}}
        result = await adapter.act(body, path=f"/xmpp/pubsub/{node}/publish")
        assert result["accepted"] is True
        published = await adapter.wait_for_subclass(
            result["xmpp_message_id"], lambda s: s == "success.pubsub_item_published"
        )
        assert "publication" in published["recommended_coordination_interpretation"]
        entries = await adapter.entries(result["xmpp_message_id"])
        assert "feed.item.published" in {e["event_type"] for e in entries}
        claims = {e["assessment"]["subclass"] for e in entries}
        assert not {c for c in claims if c.startswith(("success.delivered", "success.displayed"))}, (
            "a publication says nothing about any subscriber"
        )
    finally:
        await stop_service(service, http)


@needs_rooms_and_nodes
async def test_room_message_is_room_level_evidence(adapter: Adapter) -> None:
    """§32.4: the room accepting a message is not each occupant seeing it."""
    room = f"ops-{uuid.uuid4().hex[:6]}@conference.localhost"
    body = {"idempotency_key": uuid.uuid4().hex, "content": {"body": "New incident case opened."}}
    result = await adapter.act(body, path=f"/xmpp/muc/{room}/send")
    room_level = await adapter.wait_for_event(result["xmpp_message_id"], "notification.endpoint.accepted")
    assert room_level["assessment"]["subclass"] == "undef.muc_room_message_participant_uncertain"
