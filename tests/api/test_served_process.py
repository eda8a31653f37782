"""End to end against the service as it really runs: `xmpp-connect serve --config FILE --port P` in a
subprocess on a loopback port, driven with httpx over the socket, sending through the session's real
Prosody to slixmpp recipients. Covers a delivered send, a SIGKILL in the middle of a flow (idempotent
resend and evidence that arrived while the service was down) and a SIGTERM shutdown. Each test asserts
what a coordination engine reads: GET /adapter/events, the message's timeline and its assessment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import EngineReads
from ejabberd import EjabberdServer
from prosody import ProsodyServer, TestUser, free_loopback_port
from recipients import Recipient

pytestmark = pytest.mark.prosody
TOKEN = "served-token-81c4e7"
TOKEN_ENV = "XC_SERVED_TOKEN"
PASSWORD_ENV = "XC_SERVED_PASSWORD"
START_WAIT = 60.0
WAIT = 30.0
EXIT_WAIT = 30.0
CONFIG = """\
data_dir: data
storage: {{kind: sqlite, path: store.sqlite3}}
timers: {{receipt_timeout_s: 60}}
accounts:
  - ref: notify
    provider: slixmpp
    jid: {jid}/adapter
    password_env: {password_env}
    host: 127.0.0.1
    port: {port}
    ca_certs: {ca}
tenants:
  - {{id: ops, token_env: {token_env}, accounts: [notify]}}
"""
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
SERVER_ACK = "server_acknowledged"
"""Scenario of the XEP-0198 ack (event notification.attempt.accepted_by_provider, like the earlier
``sent_to_server`` entry written when the stanza went out)."""
RECEIPT = "delivered_to_client"
"""Scenario of the XEP-0184 receipt (event notification.endpoint.accepted)."""
DELIVERED = "success.delivered_to_client"


class ServedProcess:
    """One `xmpp-connect serve` child on a fixed loopback port, restartable on the same config and store;
    its stdout and stderr go to one log file (appended across restarts)."""

    def __init__(self, config_path: Path, user: TestUser, log_path: Path) -> None:
        self.config_path = config_path
        self.user = user
        self.log_path = log_path
        self.port = free_loopback_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_wait = START_WAIT

    async def start(self) -> None:
        """Spawn the command and wait (bounded) until health shows the XMPP stream connected."""
        env = {**os.environ, TOKEN_ENV: TOKEN, PASSWORD_ENV: self.user.password}
        command = [sys.executable, "-c", SERVE, "serve", "--config", str(self.config_path),
                   "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.config_path.parent)
        deadline = time.monotonic() + self.start_wait
        async with self.client() as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"serve exited early:\n{self.log_text()}"
                if await self._connected(http):
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"the service did not connect within {self.start_wait}s:\n{self.log_text()}")

    @staticmethod
    async def _connected(http: httpx.AsyncClient) -> bool:
        try:
            accounts = (await http.get("/adapter/health")).json().get("accounts", [])
        except httpx.TransportError:
            return False
        return bool(accounts) and all(a.get("stream_status") == "connected" for a in accounts)

    def client(self) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.base, headers=auth, timeout=WAIT)

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no stream close, no final commit."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=EXIT_WAIT)

    async def terminate(self) -> int:
        """SIGTERM, then the exit status once the process has ended (bounded)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + EXIT_WAIT
        while (code := self.process.poll()) is None:
            assert time.monotonic() < deadline, f"serve still running {EXIT_WAIT}s after SIGTERM"
            await asyncio.sleep(0.05)
        return code

    def stop(self) -> None:
        """Cleanup: end our child if a test left it running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_WAIT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Api(EngineReads):
    """The HTTP calls a coordination engine makes, over the socket."""

    async def act(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.http.post("/adapter/actions", json=request)
        return response.status_code, response.json()

    async def feed(self, message_id: str) -> list[dict[str, Any]]:
        """Every event of this message in GET /adapter/events, paging to the end."""
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.get("/adapter/events", limit=500, **({"cursor": cursor} if cursor else {}))
            events += [e for e in page["events"] if e.get("xmpp_message_id") == message_id]
            if not page["events"]:
                return events
            cursor = page["next_cursor"]

    async def wait_for_entry(self, message_id: str, scenario: str) -> dict[str, Any]:
        """The first timeline entry of this scenario, polling with a bounded deadline."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = [e for e in await self.entries(message_id) if e["scenario"] == scenario]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        seen = [e["scenario"] for e in await self.entries(message_id)]
        raise AssertionError(f"no {scenario} entry within {WAIT}s: {seen}")

    async def wait_for_subclass(self, message_id: str, subclass: str) -> dict[str, Any]:
        """The assessment once it reaches ``subclass``, polling with a bounded deadline."""
        deadline = time.monotonic() + WAIT
        while (result := await self.assessment(message_id))["subclass"] != subclass:
            assert time.monotonic() < deadline, f"assessment still {result['subclass']} after {WAIT}s"
            await asyncio.sleep(0.05)
        return result


def send(key: str, to: str, body: str = "A document is available.") -> dict[str, Any]:
    """A §21.1 notification.send request."""
    return {
        "request_id": f"req-{key}",
        "action_type": "notification.send",
        "coordination_case_id": "case_served",
        "participant_id": "participant_served",
        "channel": "xmpp",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": to},
        "content": {"body": body},
        "tracking_context": {"correlation_id": f"corr-{key}", "notification_id": key},
        "idempotency_key": f"case_served:participant_served:xmpp:{key}",
        "requested_at": "2026-01-01T12:00:00Z",
    }


@asynccontextmanager
async def serving(server: ProsodyServer | EjabberdServer, tmp_path: Path) -> AsyncIterator[ServedProcess]:
    """A started service for a fresh sender account on ``server``; its password and token only in the
    environment."""
    user = server.fresh_user("svc")
    config_path = tmp_path / "xmpp-connect.yaml"
    config_path.write_text(CONFIG.format(jid=user.jid, password_env=PASSWORD_ENV, port=server.port,
                                         ca=server.cert_path, token_env=TOKEN_ENV))
    process = ServedProcess(config_path, user, tmp_path / "serve.log")
    try:
        await process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture
async def served(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[ServedProcess]:
    async with serving(prosody, tmp_path) as process:
        yield process


@pytest.fixture
async def api(served: ServedProcess) -> AsyncIterator[Api]:
    async with served.client() as http:
        yield Api(http)


@pytest.fixture
async def recipients(prosody: ProsodyServer) -> AsyncIterator[Callable[[], Recipient]]:
    made: list[Recipient] = []

    def make() -> Recipient:
        client = Recipient(prosody, prosody.fresh_user("rcpt"), "phone")
        made.append(client)
        return client

    yield make
    for client in made:
        await client.offline()


async def test_delivered_send_over_the_socket_and_nothing_secret_in_the_log(
    served: ServedProcess, api: Api, recipients: Callable[[], Recipient]
) -> None:
    """202 accepted; server ack and XEP-0184 receipt in the timeline and the feed; assessment delivered."""
    phone = await recipients().online()
    body = f"Confidential body {uuid.uuid4().hex}"
    key = uuid.uuid4().hex[:8]
    status, result = await api.act(send(key, phone.user.jid, body))
    assert status == 202 and result["accepted"] is True and result["idempotent_replay"] is False
    message_id = result["xmpp_message_id"]
    assert (await phone.next_message(WAIT))["body"] == body
    assessment = await api.wait_for_subclass(message_id, DELIVERED)
    assert assessment["category"] == "success"
    ack = await api.wait_for_entry(message_id, SERVER_ACK)
    assert ack["event_type"] == "notification.attempt.accepted_by_provider"
    assert ack["assessment"]["subclass"] == "undef.server_acknowledged_only", "a server ack is not delivery"
    receipt = await api.wait_for_entry(message_id, RECEIPT)
    assert receipt["event_type"] == "notification.endpoint.accepted"
    assert receipt["assessment"]["subclass"] == DELIVERED
    timeline = await api.entries(message_id)
    assert receipt["correlation_id"] == f"corr-{key}" and receipt["coordination_case_id"] == "case_served"
    assert {e["event_id"] for e in timeline} <= {e["event_id"] for e in await api.feed(message_id)}
    log = served.log_text()
    assert log, "the service logged nothing (startup lines expected)"
    for secret in (body, TOKEN, served.user.password):
        assert secret not in log


async def test_sigkill_mid_flow_then_restart(
    prosody: ProsodyServer, served: ServedProcess, recipients: Callable[[], Recipient]
) -> None:
    """SIGKILL after Prosody accepted a send to an offline recipient, who then comes online and answers
    with a receipt while the service is down; a restart on the same store recovers it.

    What Prosody 0.12 does (tests/integration/prosody.py config): the killed stream had XEP-0198 resumption
    enabled, so the session hibernates (smacks_hibernation_time 30) and the receipt, addressed to the
    service's full JID, is queued in it, not in the offline store (it is also archived in MAM). The restarted
    service binds the same resource; Prosody replaces the hibernating session, hands its unacked receipt to
    mod_offline (the account has no other session) and delivers it after the new initial presence."""
    later = recipients()
    request = send(uuid.uuid4().hex[:8], later.user.jid)
    async with served.client() as http:
        api = Api(http)
        status, first = await api.act(request)
        assert status == 202 and first["accepted"] is True
        message_id = first["xmpp_message_id"]
        await api.wait_for_entry(message_id, SERVER_ACK)
        stanza_id = (await api.get(f"/xmpp/messages/{message_id}"))["attempts"][0]["stanza_id"]
        before = await api.entries(message_id)
        assert (await api.assessment(message_id))["category"] == "undef", "no delivery evidence yet"
    served.kill()
    await later.online()
    assert (await later.next_message(WAIT))["id"] == stanza_id, "Prosody delivers the offline copy"
    await later.round_trip()  # Prosody has routed the receipt the phone sent for it
    offline_store = prosody.base / "data" / "localhost" / "offline" / f"{served.user.username}.list"
    assert not offline_store.exists(), "the receipt waits in the hibernating session, not offline storage"
    await served.start()
    async with served.client() as http:
        api = Api(http)
        status, replay = await api.act(request)
        assert status == 202 and replay["idempotent_replay"] is True
        assert replay["adapter_operation_id"] == first["adapter_operation_id"]
        assert replay.pop("outbox_state") == "server_acked", "the answer says where the send really is"
        assert {**replay, "idempotent_replay": False} == first, "the original result, replayed"
        # A later send to the same phone arrives first: the replay sent nothing (one stream, in order).
        status, _ = await api.act(send(uuid.uuid4().hex[:8], later.user.jid, body="After the replay."))
        assert status == 202
        assert (await later.next_message(WAIT))["body"] == "After the replay."
        receipt = await api.wait_for_entry(message_id, RECEIPT)
        assert receipt["event_type"] == "notification.endpoint.accepted"
        assert receipt["assessment"]["subclass"] == DELIVERED
        assert (await api.assessment(message_id))["subclass"] == DELIVERED
        after = await api.entries(message_id)
        assert after[: len(before)] == before, "evidence from before the kill is kept as it was"
        assert receipt["event_id"] in {e["event_id"] for e in await api.feed(message_id)}


async def test_sigterm_is_clean_and_restart_serves_the_same_timeline(
    served: ServedProcess, recipients: Callable[[], Recipient]
) -> None:
    """SIGTERM: the lifespan shutdown completes and the process ends within a few seconds; a restart on the
    same store serves the message's timeline and assessment unchanged. uvicorn re-raises the SIGTERM it
    handled once shutdown is complete, so the status is -SIGTERM (0 if `serve` ever exits by itself)."""
    phone = await recipients().online()
    async with served.client() as http:
        api = Api(http)
        _, result = await api.act(send(uuid.uuid4().hex[:8], phone.user.jid))
        message_id = result["xmpp_message_id"]
        await api.wait_for_subclass(message_id, DELIVERED)
        timeline = await api.entries(message_id)
        assessment = await api.assessment(message_id)
    started = len(served.log_text())
    assert await served.terminate() in (0, -signal.SIGTERM)
    shutdown = served.log_text()[started:]
    assert "Application shutdown complete." in shutdown and "Finished server process" in shutdown, shutdown
    await served.start()
    async with served.client() as http:
        api = Api(http)
        assert await api.entries(message_id) == timeline
        assert await api.assessment(message_id) == assessment
        assert {e["event_id"] for e in timeline} <= {e["event_id"] for e in await api.feed(message_id)}
