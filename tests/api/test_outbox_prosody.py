"""The outbox against the session's real Prosody, over the HTTP API of an in-process service: Prosody hung
in the middle of a burst, killed and started again (its sessions die with it, so nothing can be resumed);
sends accepted while it is down are held and drained, or expire past their bound."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import LiveApp
from prosody import PUBSUB_DOMAIN, ProsodyServer, TestUser
from recipients import Recipient
from slixmpp.stanza import Message
from test_e2e_prosody import send, start_service, stop_service

pytestmark = pytest.mark.prosody
WAIT = 30.0
BURST = 100
CONFIG = """\
data_dir: data
storage: {{kind: sqlite, path: store.sqlite3}}
policy_dir: {policy_dir}
timers: {{receipt_timeout_s: 120}}
accounts:
  - ref: notify
    provider: slixmpp
    jid: {jid}/adapter
    password_env: XC_E2E_PASSWORD
    host: 127.0.0.1
    port: {port}
    ca_certs: {ca}
    delivery: {delivery}
    hold_while_disconnected_s: {hold}
tenants:
  - {{id: ops, token_env: XC_E2E_TOKEN, accounts: [notify]}}
"""


class Service(LiveApp):
    async def states(self, requests: list[dict[str, Any]]) -> list[str | None]:
        """Each request's ``outbox_state``, from a replay with its key."""
        return [(await self.act(r)).get("outbox_state") for r in requests]

    async def subclass(self, message_id: str) -> str:
        return str((await self.assessment(message_id))["subclass"])


async def _service(prosody: ProsodyServer, tmp_path: Path, delivery: str, hold: float,
                   user: TestUser | None = None, node: str | None = None) -> Service:
    """A service on a fresh account (or ``user``'s, with ``node`` created at start), writing its config
    once; the same call on the same ``tmp_path`` and ``user`` starts it again on the same store."""
    user = user or prosody.fresh_user("svc")
    path = tmp_path / "xmpp-connect.yaml"
    if not path.exists():
        repo = Path(__file__).resolve().parents[2]
        text = CONFIG.format(policy_dir=repo, jid=user.jid, port=prosody.port, ca=prosody.cert_path,
                             delivery=delivery, hold=hold)
        if node is not None:
            text = text.replace(f"    hold_while_disconnected_s: {hold}\n", (
                f"    hold_while_disconnected_s: {hold}\n    nodes: [{{service_jid: {PUBSUB_DOMAIN},"
                f" node: {node}, create: true, access_model: open, publisher_model: publishers}}]\n"))
        path.write_text(text)
    service, http = await start_service(path, user)
    return Service(service, http, WAIT)


@pytest.fixture
async def at_least_once(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Service]:
    under_test = await _service(prosody, tmp_path, "at_least_once", 300)
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def at_most_once(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Service]:
    under_test = await _service(prosody, tmp_path, "at_most_once", 300)
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def recipient_user(prosody: ProsodyServer) -> TestUser:
    return prosody.fresh_user("rcpt")


@pytest.fixture
async def clients(prosody: ProsodyServer) -> AsyncIterator[Callable[[TestUser, str], Recipient]]:
    made: list[Recipient] = []

    def make(user: TestUser, resource: str) -> Recipient:
        made.append(Recipient(prosody, user, resource))
        return made[-1]

    yield make
    for client in made:
        await client.offline()


async def _burst_through_a_restart(
    prosody: ProsodyServer, under_test: Service, user: TestUser,
    clients: Callable[[TestUser, str], Recipient],
) -> tuple[list[dict[str, Any]], list[str], dict[str, int]]:
    """BURST concurrent sends; as they start Prosody hangs (SIGSTOP), so the stanzas written after that are
    never read nor acked; then it is killed and started again (its sessions die with it: no resumption).
    The recipient reads what arrived before, and its offline store after the restart. Returns the requests,
    their message ids and how many copies of each stanza id the recipient got."""
    phone = await clients(user, "phone").online()
    requests = [send(uuid.uuid4().hex[:10], user.jid) for _ in range(BURST)]
    posts = [asyncio.ensure_future(under_test.act(r)) for r in requests]
    await asyncio.sleep(0.01)
    prosody.freeze()
    results = await asyncio.gather(*posts)
    assert all(r["accepted"] for r in results), "held while the server is down, never refused"
    await _until_written(under_test, requests)
    prosody.kill()
    prosody.start()
    received = _drain(phone)
    later = await clients(user, "laptop").online()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not await _all_settled(under_test, requests):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    for message in _drain(later):
        received.append(message)
    copies: dict[str, int] = {}
    for message in received:
        copies[message["id"]] = copies.get(message["id"], 0) + 1
    return requests, [r["xmpp_message_id"] for r in results], copies


async def _until_written(under_test: Service, requests: list[dict[str, Any]]) -> None:
    """Until no send is still only accepted (bounded): the rest went to the hung server's socket."""
    deadline = time.monotonic() + WAIT
    while "accepted" in await under_test.states(requests):
        assert time.monotonic() < deadline, "sends never written to the hung server"
        await asyncio.sleep(0.1)


async def _all_settled(under_test: Service, requests: list[dict[str, Any]]) -> bool:
    return all(state in ("server_acked", "unknown") for state in await under_test.states(requests))


def _drain(client: Recipient) -> list[Message]:
    out = []
    while not client.messages.empty():
        out.append(client.messages.get_nowait())
    return out


async def test_server_restart_mid_burst_at_least_once_loses_nothing(
    prosody: ProsodyServer, at_least_once: Service, recipient_user: TestUser,
    clients: Callable[[TestUser, str], Recipient],
) -> None:
    requests, message_ids, copies = await _burst_through_a_restart(
        prosody, at_least_once, recipient_user, clients)
    states = await at_least_once.states(requests)
    assert states == ["server_acked"] * BURST, states
    stanza_ids = [(await at_least_once.get(f"/xmpp/messages/{m}"))["attempts"][0]["stanza_id"]
                  for m in message_ids]
    missing = [s for s in stanza_ids if s not in copies]
    assert missing == [], f"{len(missing)} accepted sends never reached the recipient"
    resent = 0
    for message_id in message_ids:
        attempts = (await at_least_once.get(f"/xmpp/messages/{message_id}"))["attempts"]
        entries = {(e["scenario"], e["xmpp_attempt_id"]) for e in await at_least_once.entries(message_id)}
        last = attempts[-1]["xmpp_attempt_id"]
        assert ("server_acknowledged", last) in entries, entries
        if len(attempts) > 1:
            resent += 1
            assert {a["stanza_id"] for a in attempts} == {attempts[0]["stanza_id"]}, "one stanza id"
            lost = attempts[-2]["xmpp_attempt_id"]
            assert ("acceptance_unknown", lost) in entries, "the lost write is flagged, then written again"
            assert ("sent_to_server", last) in entries
    assert resent > 0, "the stanzas written to the hung server were written again as new attempts"


async def test_server_restart_mid_burst_at_most_once_flags_what_it_does_not_resend(
    prosody: ProsodyServer, at_most_once: Service, recipient_user: TestUser,
    clients: Callable[[TestUser, str], Recipient],
) -> None:
    requests, message_ids, copies = await _burst_through_a_restart(
        prosody, at_most_once, recipient_user, clients)
    assert max(copies.values(), default=0) <= 1, "at most once: never written twice"
    states = await at_most_once.states(requests)
    assert set(states) <= {"server_acked", "unknown"}, states
    assert "unknown" in states, "the stanzas written to the hung server end acceptance-unknown"
    for request, state, message_id in zip(requests, states, message_ids, strict=True):
        subclass = await at_most_once.subclass(message_id)
        if state == "unknown":
            assert subclass == "undef.server_acceptance_unknown", (request["idempotency_key"], subclass)
        assert subclass != "undef.sent_to_server_only", "nothing stays silently at sent_to_server_only"


async def test_held_send_drains_on_reconnect_and_one_past_its_bound_expires(
    prosody: ProsodyServer, at_least_once: Service, recipient_user: TestUser,
    clients: Callable[[TestUser, str], Recipient],
) -> None:
    phone = await clients(recipient_user, "phone").online()
    prosody.stop()
    deadline = time.monotonic() + WAIT
    while at_least_once.service.providers["notify"].health().stream_status == "connected":
        assert time.monotonic() < deadline, "the provider never noticed the server stopped"
        await asyncio.sleep(0.05)
    held = await at_least_once.act(send("held-" + uuid.uuid4().hex[:8], recipient_user.jid))
    bounded = send("expiring-" + uuid.uuid4().hex[:8], recipient_user.jid,
                   expires_at=_in_seconds(1.0))
    expiring = await at_least_once.act(bounded)
    for result in (held, expiring):
        assert result["accepted"] is True
        assert await at_least_once.subclass(result["xmpp_message_id"]) == "undef.channel_degraded"
    deadline = time.monotonic() + WAIT
    while await at_least_once.subclass(expiring["xmpp_message_id"]) != "fail.expired":
        assert time.monotonic() < deadline, "the held send never expired"
        await asyncio.sleep(0.1)
    prosody.start()
    phone = await clients(recipient_user, "phone-again").online()
    delivered = await phone.next_message(WAIT)
    stanza = (await at_least_once.get(f"/xmpp/messages/{held['xmpp_message_id']}"))["attempts"][0]
    assert delivered["id"] == stanza["stanza_id"], "the held send drains on reconnect"
    await at_least_once.wait_for_event(held["xmpp_message_id"], "notification.attempt.accepted_by_provider")
    with pytest.raises(TimeoutError):
        await phone.next_message(1.0)
    assert (await at_least_once.states([bounded])) == ["expired"]


async def test_publish_written_to_a_hung_server_is_published_again_with_the_same_item_id(
    prosody: ProsodyServer, tmp_path: Path,
) -> None:
    """A PubSub publish goes through the outbox: written to a hung Prosody, never answered; Prosody killed
    and started again (no resumption): the publish is flagged acceptance-unknown and published again as a
    new attempt with the same iq and item id, and its iq result (not an SM ack) settles it."""
    node = f"outbox-{uuid.uuid4().hex[:8]}"
    under_test = await _service(prosody, tmp_path, "at_least_once", 300, prosody.admin_user(), node)
    try:
        body = {"idempotency_key": uuid.uuid4().hex, "service": PUBSUB_DOMAIN, "item": {"title": "Case"}}
        path = f"/xmpp/pubsub/{node}/publish"
        warm_up = await under_test.act({**body, "idempotency_key": uuid.uuid4().hex}, path=path)
        await under_test.wait_for_event(warm_up["xmpp_message_id"], "feed.item.published")
        prosody.freeze()
        result = await under_test.act(body, path=path)
        assert result["accepted"] is True
        await _until_state(under_test, body, path, "written")
        prosody.kill()
        prosody.start()
        await _until_state(under_test, body, path, "server_acked")
        message_id = result["xmpp_message_id"]
        attempts = (await under_test.get(f"/xmpp/messages/{message_id}"))["attempts"]
        assert len(attempts) == 2, attempts
        assert {a["stanza_id"] for a in attempts} == {attempts[0]["stanza_id"]}, "the same iq and item id"
        entries = {(e["scenario"], e["xmpp_attempt_id"]) for e in await under_test.entries(message_id)}
        lost, again = attempts[0]["xmpp_attempt_id"], attempts[1]["xmpp_attempt_id"]
        assert ("sent_to_server", lost) in entries and ("acceptance_unknown", lost) in entries, entries
        assert ("sent_to_server", again) in entries and ("pubsub_published", again) in entries, entries
        assert await under_test.subclass(message_id) == "success.pubsub_item_published"
    finally:
        if not prosody.running:
            prosody.start()
        await stop_service(under_test.service, under_test.http)


async def test_scheduled_send_due_while_the_server_is_down_is_held_kept_over_a_restart_and_drained(
    prosody: ProsodyServer, tmp_path: Path, recipient_user: TestUser,
    clients: Callable[[TestUser, str], Recipient],
) -> None:
    """A scheduled send that becomes due while Prosody is down leaves the schedule for the outbox (held, not
    refused); the service is stopped and started again with Prosody still down, and when Prosody is back
    the send is written from the outbox and reaches the recipient."""
    user = prosody.fresh_user("svc")
    under_test = await _service(prosody, tmp_path, "at_least_once", 300, user)
    request = send("sched-" + uuid.uuid4().hex[:8], recipient_user.jid, send_at=_in_seconds(1.0))
    request["action_type"] = "notification.schedule"
    try:
        prosody.stop()
        scheduled = await under_test.act(request)
        assert scheduled["accepted"] is True and scheduled["action_state"] == "scheduled"
        message_id = scheduled["xmpp_message_id"]
        deadline = time.monotonic() + WAIT
        while await under_test.subclass(message_id) != "undef.channel_degraded":
            assert time.monotonic() < deadline, "the due send was never held"
            await asyncio.sleep(0.1)
        assert await under_test.states([request]) == ["accepted"], "in the outbox, held"
    finally:
        await stop_service(under_test.service, under_test.http)
    under_test = await _service(prosody, tmp_path, "at_least_once", 300, user)
    try:
        prosody.start()
        phone = await clients(recipient_user, "phone").online()
        delivered = await phone.next_message(WAIT)
        stanza_id = (await under_test.get(f"/xmpp/messages/{message_id}"))["attempts"][0]["stanza_id"]
        assert delivered["id"] == stanza_id, "the held scheduled send drains after the restart"
        deadline = time.monotonic() + WAIT
        while await under_test.states([request]) != ["server_acked"]:
            assert time.monotonic() < deadline, "the drained send was never acked"
            await asyncio.sleep(0.1)
    finally:
        if not prosody.running:
            prosody.start()
        await stop_service(under_test.service, under_test.http)


async def _until_state(under_test: Service, body: dict[str, Any], path: str, state: str) -> None:
    deadline = time.monotonic() + WAIT
    while (answer := await under_test.act(body, path=path)).get("outbox_state") != state:
        timeline = [(e["scenario"], e["xmpp_attempt_id"]) for e in await under_test.entries(
            answer["xmpp_message_id"])]
        assert time.monotonic() < deadline, f"the publish never reached {state}: {answer}, {timeline}"
        await asyncio.sleep(0.1)


async def test_one_outage_is_one_unavailable_event_however_many_reconnects_fail(
    prosody: ProsodyServer, at_least_once: Service,
) -> None:
    """Prosody stopped long enough for a reconnect to fail, then started: the feed tells the outage once
    (``system.provider.unavailable``), then its end (``system.adapter.health_changed``)."""
    provider = at_least_once.service.providers["notify"]
    before = await _feed(at_least_once)
    prosody.stop()
    deadline = time.monotonic() + WAIT
    while provider.state.failures_while_down < 1:
        assert time.monotonic() < deadline, "no reconnect failed while the server was down"
        await asyncio.sleep(0.05)
    prosody.start()
    while provider.health().status != "healthy":
        assert time.monotonic() < deadline + WAIT, "the provider never reconnected"
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + WAIT
    back = "system.adapter.health_changed"
    while not any(e["event_type"] == back for e in await _feed(at_least_once, before)):
        assert time.monotonic() < deadline, "the reconnect never reached the feed"
        await asyncio.sleep(0.05)
    outage = [e["event_type"] for e in await _feed(at_least_once, before) if e["xmpp_message_id"] is None]
    assert outage.count("system.provider.unavailable") == 1, outage
    assert outage[0] == "system.provider.unavailable", outage
    assert set(outage[1:]) == {"system.adapter.health_changed"}, "back: authenticated, then connected"


async def _feed(under_test: Service, after: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The tenant's event feed (paged with the cursor), without the events already in ``after``."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await under_test.get("/adapter/events", limit=500, **({"cursor": cursor} if cursor else {}))
        events += page["events"]
        if not page["events"]:
            break
        cursor = page["next_cursor"]
    return events[len(after or []):]


def _in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
