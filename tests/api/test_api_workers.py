"""The API-worker split (`serve --api-workers N`, api_worker.py, intake.py, intake_dispatch.py).

In process (build_worker_app driven over ASGI): a send a worker accepts is only in the intake until the core
carries it out; then its records, its accepted event (the id the worker answered with) and its stored result
match what the worker answered. Requests accepted before a crash are carried out once after a restart, and
once more from position 0 is a replay (no second stanza). A replay says where the send is: accepted while
queued in the intake, the core's outbox state after (the core listening on its socket), and a send the core
left accepted is written by it. A stale core health report sends everything to the core.

As a process: `xmpp-connect serve --api-workers 1` on a loopback port with the sandbox provider: the worker
answers plain sends and refusals itself and forwards the rest (its answer is the core's), replays of its sends
too once the core carried them out (the core says where the send is); a SIGKILL
of the core ends its worker and frees the port for a restart that serves the earlier timeline. Which process
answered a send is read from the intake file: a claim with a result was accepted by the worker, one without
was forwarded to the core."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import EngineReads, auth, default_policy, send_request, service_config
from prosody import free_loopback_port
from starlette.types import ASGIApp

from xmpp_connect.app.api_worker import (
    HEALTH_FILE,
    INTAKE_FILE,
    CoreHealth,
    build_worker_app,
    write_core_health,
)
from xmpp_connect.app.server import build_app, open_store
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import load_config
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.load import load_policy
from xmpp_connect.sending.intake import Intake
from xmpp_connect.sending.intake_dispatch import IntakeDispatcher
from xmpp_connect.sending.schemas import request_digest
from xmpp_connect.store.sqlite import SqliteStore

WAIT = 30.0
START_WAIT = 60.0
EXIT_WAIT = 30.0
HEALTH_REFRESH = 0.25
"""Longer than CoreHealth's re-read interval."""
ACCEPTED = "notification.attempt.accepted_by_adapter"
DELIVERED = "success.delivered_to_client"
TOKEN = "workers-token-5d1e90"
TOKEN_ENV = "XC_WORKERS_TOKEN"
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
CONFIG = f"""\
data_dir: data
storage: {{kind: sqlite, path: data/store.sqlite3}}
timers: {{receipt_timeout_s: 60}}
accounts:
  - {{ref: sandbox, provider: sandbox, jid: adapter@sandbox.invalid/service}}
tenants:
  - {{id: ops, token_env: {TOKEN_ENV}, accounts: [sandbox]}}
"""


# -- in process ------------------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """The app's ASGI lifespan as a server runs it: startup before the body, shutdown after (bounded)."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, incoming.get, outgoing.put))
    await incoming.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outgoing.get(), WAIT))["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await incoming.put({"type": "lifespan.shutdown"})
        assert (await asyncio.wait_for(outgoing.get(), WAIT))["type"] == "lifespan.shutdown.complete"
        await asyncio.wait_for(task, WAIT)


@asynccontextmanager
async def worker_http(config: ServiceConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A started API worker app (build_worker_app, the core socket nobody listens on) and a client of it;
    the core must have migrated the evidence store."""
    app = build_worker_app(config, str(config.data_dir / "no-core.sock"))
    try:
        async with lifespan(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://worker", headers=auth()
        ) as http:
            yield http
    finally:
        app.desk.store.close()


def worker_desk(worker: httpx.AsyncClient) -> Any:
    """The IntakeDesk of the worker app behind a ``worker_http`` client."""
    transport: Any = worker._transport
    return transport.app.desk


def report_connected(config: ServiceConfig, written_at: float | None = None) -> None:
    """The core's stream report as a worker reads it (``written_at`` back-dated for a stale one). By default
    dated an hour ahead: a worker takes a report older than HEALTH_STALE_S (5 s) for a core that is gone,
    and a loaded machine can take longer than that between the report and a test's request."""
    path = config.data_dir / HEALTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_core_health(path, {"sandbox-a": "connected", "sandbox-b": "connected"})
    report = json.loads(path.read_text())
    stamp = written_at if written_at is not None else time.time() + 3600
    path.write_text(json.dumps({**report, "written_at": stamp}))


def count_sends(service: AdapterService, account: str = "sandbox-a") -> list[NativeEvent]:
    """Every ``message_sent`` event the account's sandbox provider emits from now on (the stanzas that
    went out), recorded on the way to the service's sink."""
    provider: Any = service.providers[account]
    sink = provider.sink
    sent: list[NativeEvent] = []

    def recording(event: NativeEvent) -> None:
        if event.kind == "message_sent":
            sent.append(event)
        sink(event)

    provider.sink = recording
    return sent


async def fresh_send_goes_out(
    service: AdapterService, store: SqliteStore, config: ServiceConfig, sent: list[NativeEvent]
) -> str:
    """Carry out a fresh send (to a recipient nobody suppressed) and wait until its stanza is among ``sent``;
    returns its stanza id. Anything sent before it went out first: a later event instead of a quiet wait."""
    request = send_request(f"fresh-{len(sent)}", "displayed@sandbox.invalid")
    outcome = await service.perform_action(tenant_a(config), request)
    stanza_id = store.list_attempts("a", outcome.result["xmpp_message_id"])[0].stanza_id
    await eventually(lambda: any(e.stanza_id == stanza_id for e in sent), "the fresh send's stanza")
    return stanza_id


async def eventually(probe: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """``probe()`` once it is truthy, polling with a bounded deadline."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        await asyncio.sleep(0.01)
    return value


def delivered(store: SqliteStore, message_id: str) -> list[EvidenceEvent]:
    return [e for e in store.evidence_for_message("a", message_id) if e.assessment.subclass == DELIVERED]


def claim_result(intake_path: Path, key: str) -> tuple[bool, Any]:
    """Whether the intake holds a claim of ``key``, and the result it replays (None: forwarded to the core)
    without ``idempotent_replay``."""
    with sqlite3.connect(f"file:{intake_path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT result FROM intake_claims WHERE idempotency_key = ?", (key,)).fetchone()
    return row is not None, without_replay(json.loads(row[0])) if row and row[0] else None


def without_replay(result: dict[str, Any]) -> dict[str, Any]:
    """A result as the intake keeps it for replays (``idempotent_replay`` and ``outbox_state`` are set per
    answer)."""
    return {k: v for k, v in result.items() if k not in ("idempotent_replay", "outbox_state")}


def tenant_a(config: ServiceConfig) -> TenantConfig:
    tenant = config.tenant("a")
    assert tenant is not None
    return tenant


def core_store(config: ServiceConfig) -> SqliteStore:
    assert config.storage.path is not None
    return SqliteStore(config.storage.path)


@asynccontextmanager
async def core_beside_worker(
    config: ServiceConfig,
) -> AsyncIterator[tuple[SqliteStore, AdapterService, Intake]]:
    """The core's store, service (not started) and intake for a worker on ``config``, the stream reported
    connected; stopped and closed afterwards."""
    store = core_store(config)
    service = AdapterService(config, store, default_policy())
    intake = Intake(config.data_dir / INTAKE_FILE)
    report_connected(config)
    try:
        yield store, service, intake
    finally:
        await service.stop()
        intake.close()
        store.close()


async def test_worker_accepted_send_is_carried_out_with_the_answered_ids(tmp_path: Path) -> None:
    """Accepted by the worker: nothing in the evidence store yet; carried out by the core: the message, its
    accepted event with the answered event id, the same stored result, and the sandbox receipt."""
    config = service_config(tmp_path)
    request = send_request("w1")
    async with core_beside_worker(config) as (store, service, intake):
        sent = count_sends(service)
        async with worker_http(config) as worker:
            response = await worker.post("/adapter/actions", json=request)
            assert response.status_code == 202, response.text
            answered = response.json()
            assert answered["accepted"] is True and answered["idempotent_replay"] is False
            assert [e["event_type"] for e in answered["initial_events"]] == [ACCEPTED]
            message_id = answered["xmpp_message_id"]
            assert store.get_message("a", message_id) is None
            assert store.evidence_for_message("a", message_id) == []
            kept = claim_result(Path(intake.path), request["idempotency_key"])
            assert kept == (True, without_replay(answered))

            await service.start()
            dispatcher = IntakeDispatcher(intake, store, service._carry_out)
            items = intake.items_after(dispatcher.position)
            assert [i.operation_id for i in items] == [answered["adapter_operation_id"]]
            assert items[0].payload_hash == request_digest(request), "the core takes the worker's hash"
            assert await dispatcher.carry_out(items) is True
            assert store.intake_position(intake.instance_id) == items[0].seq

            assert store.get_message("a", message_id) is not None
            accepted = [e for e in store.evidence_for_message("a", message_id) if e.event_type == ACCEPTED]
            assert [e.event_id for e in accepted] == [answered["initial_events"][0]["event_id"]]
            assert accepted[0].occurred_at.isoformat() == answered["initial_events"][0]["occurred_at"]
            replay = await service.perform_action(tenant_a(config), request)
            assert replay.status == 202 and replay.result["idempotent_replay"] is True
            assert without_replay(replay.result) == without_replay(answered)
            receipts = await eventually(lambda: delivered(store, message_id), "the sandbox receipt")
            assert [e.scenario for e in receipts] == ["delivered_to_client"]
            assert [e.stanza_id for e in sent] == [store.list_attempts("a", message_id)[0].stanza_id]
            again = await worker.post("/adapter/actions", json=request)
            assert again.status_code == 503, "carried out by the core: only the core can say where it is"


@asynccontextmanager
async def core_listening(service: AdapterService, config: ServiceConfig) -> AsyncIterator[None]:
    """The core's app on the Unix socket ``worker_http`` forwards to (the service started by the caller)."""
    import uvicorn

    socket_path = config.data_dir / "no-core.sock"
    server = uvicorn.Server(uvicorn.Config(build_app(service), uds=str(socket_path), lifespan="off",
                                           log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, "the core listening")
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, WAIT)


async def test_replay_says_where_the_send_is_and_the_core_resumes_a_send_still_accepted(
    tmp_path: Path,
) -> None:
    """A replay through the worker: queued in the intake, the claim answers ``outbox_state: accepted``; once
    the core carried it out, the core answers with its outbox state; a send the core left accepted (as a
    crash after its records committed leaves it) is written by the replay, with the same stanza id."""
    config = service_config(tmp_path)
    request = send_request("resume")
    async with core_beside_worker(config) as (store, service, intake), worker_http(config) as worker:
        sent = count_sends(service)
        answered = (await worker.post("/adapter/actions", json=request)).json()
        queued = await worker.post("/adapter/actions", json=request)
        assert queued.status_code == 202 and queued.json()["idempotent_replay"] is True
        assert queued.json()["outbox_state"] == "accepted", "still in the intake: accepted, not written"
        assert without_replay(queued.json()) == without_replay(answered)

        await service.start()
        async with core_listening(service, config):
            dispatcher = IntakeDispatcher(intake, store, service._carry_out)
            assert await dispatcher.carry_out(intake.items_after(dispatcher.position)) is True
            message_id = answered["xmpp_message_id"]
            await eventually(lambda: delivered(store, message_id), "the sandbox receipt")
            stanza_id = store.list_attempts("a", message_id)[0].stanza_id
            carried = await worker.post("/adapter/actions", json=request)
            assert carried.status_code == 202 and carried.json()["idempotent_replay"] is True
            assert carried.json()["outbox_state"] == "server_acked", "the core's answer: where it really is"
            assert without_replay(carried.json()) == without_replay(answered)

            with store.transaction():
                store._exec(store._conn(), "UPDATE outbox SET state = 'accepted', written_at = NULL,"
                            " acked_at = NULL WHERE stanza_id = ?", (stanza_id,))
            service.outbox._in_flight.pop(stanza_id, None)
            resumed = await worker.post("/adapter/actions", json=request)
            assert resumed.json()["outbox_state"] == "accepted", resumed.text
            await eventually(lambda: [e.stanza_id for e in sent] == [stanza_id, stanza_id],
                             "the replay writes the send the core left accepted")
            await eventually(lambda: store.outbox_entry("a", stanza_id).state == "server_acked",
                             "the resumed write acked")


async def test_accepted_before_a_crash_are_carried_out_once_after_restart(tmp_path: Path) -> None:
    """Three sends accepted, then everything closed before the core carried any out. A fresh core on the
    same files carries out each once; carrying them out again from position 0 (a crash before the position
    was stored) sends no stanza and records no evidence."""
    config = service_config(tmp_path)
    core_store(config).close()
    report_connected(config)
    async with worker_http(config) as worker:
        responses = [await worker.post("/adapter/actions", json=send_request(f"crash-{i}")) for i in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202]
    answers = [r.json() for r in responses]

    store = core_store(config)
    service = AdapterService(config, store, default_policy())
    intake = Intake(config.data_dir / INTAKE_FILE)
    service.take_intake(intake, config.data_dir / HEALTH_FILE)
    assert service.intake_dispatcher is not None and service.intake_dispatcher.position == 0
    sent = count_sends(service)
    await service.start()
    try:
        messages = [a["xmpp_message_id"] for a in answers]
        await eventually(lambda: all(delivered(store, m) for m in messages), "three receipts")
        await eventually(lambda: store.intake_position(intake.instance_id) == 3, "the position stored")
        stanza_ids = [store.list_attempts("a", m)[0].stanza_id for m in messages]
        assert sorted(e.stanza_id for e in sent) == sorted(stanza_ids), "one stanza per accepted send"
        before = {m: [e.event_id for e in store.evidence_for_message("a", m)] for m in messages}
        for answer, message_id in zip(answers, messages, strict=True):
            assert len(before[message_id]) == len(set(before[message_id]))
            accepted = [e for e in store.evidence_for_message("a", message_id) if e.event_type == ACCEPTED]
            assert [e.event_id for e in accepted] == [answer["initial_events"][0]["event_id"]]

        again = IntakeDispatcher(intake, store, service.intake_dispatcher.perform)
        items = intake.items_after(0)
        assert [i.seq for i in items] == [1, 2, 3]
        assert await again.carry_out(items) is True
        fresh = await fresh_send_goes_out(service, store, config, sent)
        assert [e.stanza_id for e in sent] == [*[e.stanza_id for e in sent[:3]], fresh], (
            "carried out again: an idempotent replay, no second stanza"
        )
        assert {m: [e.event_id for e in store.evidence_for_message("a", m)] for m in messages} == before
        assert store.intake_position(intake.instance_id) == 3
    finally:
        await service.stop()
        intake.close()
        store.close()


async def test_stale_core_health_report_sends_everything_to_the_core(tmp_path: Path) -> None:
    """A report older than HEALTH_STALE_S: the worker accepts nothing and forwards (no core listens here,
    so 503 with Retry-After) and the key stays the core's; with a fresh report a new key is accepted."""
    config = service_config(tmp_path)
    core_store(config).close()
    report_connected(config, written_at=time.time() - 60)
    intake_path = config.data_dir / INTAKE_FILE
    request = send_request("stale")
    async with worker_http(config) as worker:
        forwarded = await worker.post("/adapter/actions", json=request)
        assert forwarded.status_code == 503 and forwarded.headers["retry-after"] == "1"
        assert forwarded.headers["content-type"].startswith("application/problem+json")
        assert claim_result(intake_path, request["idempotency_key"]) == (True, None)
        report_connected(config)
        await asyncio.sleep(HEALTH_REFRESH)
        assert (await worker.post("/adapter/actions", json=request)).status_code == 503, "still the core's"
        fresh = await worker.post("/adapter/actions", json=send_request("fresh"))
        assert fresh.status_code == 202 and fresh.json()["accepted"] is True
    with sqlite3.connect(f"file:{intake_path}?mode=ro", uri=True) as conn:
        queued = [row[0] for row in conn.execute("SELECT operation_id FROM intake_items ORDER BY seq")]
    assert queued == [fresh.json()["adapter_operation_id"]]


# -- as a process ----------------------------------------------------------------------------------------


class ServedWithWorkers:
    """`xmpp-connect serve --api-workers 1` on a fixed loopback port, restartable on the same files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config_path = directory / "xmpp-connect.yaml"
        self.config_path.write_text(CONFIG)
        self.data_dir = directory / "data"
        self.log_path = directory / "serve.log"
        self.port = free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_children: set[int] = set()

    async def start(self) -> None:
        """Spawn; wait (bounded) until the worker serves health with the stream connected and the core's
        report tells the worker so."""
        command = [sys.executable, "-c", SERVE, "serve", "--config", str(self.config_path),
                   "--port", str(self.port), "--api-workers", "1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env={**os.environ, TOKEN_ENV: TOKEN},
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.directory)
        deadline = time.monotonic() + START_WAIT
        async with self.client() as http:
            while not (await self._connected(http) and self._reported_connected()):
                assert self.process.poll() is None, f"serve exited early:\n{self.log_text()}"
                assert time.monotonic() < deadline, f"not serving within {START_WAIT}s:\n{self.log_text()}"
                await asyncio.sleep(0.1)
        self.started_children |= set(self.children())

    @staticmethod
    async def _connected(http: httpx.AsyncClient) -> bool:
        try:
            response = await http.get("/adapter/health")
        except httpx.TransportError:
            return False
        accounts = response.json().get("accounts", []) if response.status_code == 200 else []
        return bool(accounts) and all(a.get("stream_status") == "connected" for a in accounts)

    def _reported_connected(self) -> bool:
        return CoreHealth(self.data_dir / HEALTH_FILE).connected("sandbox")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}",
                                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=WAIT)

    def children(self) -> list[int]:
        """Live child processes of the core (its API worker; multiprocessing's resource tracker)."""
        assert self.process is not None
        return [pid for pid in _pids() if _parent(pid) == self.process.pid]

    def stop(self) -> None:
        """Cleanup: SIGTERM the core (it ends its worker), SIGKILL after EXIT_WAIT; then any child still
        alive by its pid."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=EXIT_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=EXIT_WAIT)
        for pid in self.started_children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def intake_claim(self, key: str) -> tuple[bool, Any]:
        return claim_result(self.data_dir / INTAKE_FILE, key)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first, parent pid second)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _alive(pid: int) -> bool:
    """Running (a zombie has ended: it only waits to be reaped by whoever adopted it)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


class Api(EngineReads):
    """The HTTP calls of a coordination engine, against the worker's port."""

    async def act(self, request: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/adapter/actions", json=request)

    async def subclass_reached(self, message_id: str, wanted: Callable[[str], bool]) -> dict[str, Any]:
        """The assessment once its subclass satisfies ``wanted`` (404 until the core has carried the send
        out), polling with a bounded deadline."""
        deadline = time.monotonic() + WAIT
        last: Any = None
        while time.monotonic() < deadline:
            response = await self.http.get(f"/adapter/messages/{message_id}/assessment")
            if response.status_code == 200 and wanted((last := response.json())["subclass"]):
                return last
            assert response.status_code in (200, 404), response.text
            await asyncio.sleep(0.05)
        raise AssertionError(f"assessment of {message_id} still {last} after {WAIT}s")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedWithWorkers]:
    process = ServedWithWorkers(tmp_path)
    try:
        await process.start()
        yield process
    finally:
        process.stop()


async def test_worker_answers_plain_sends_and_forwards_the_rest(served: ServedWithWorkers) -> None:
    """Accepted and refused by the worker; replayed by the core once it carried the send out (with its outbox
    state); templated, suppressed and read requests answered by the core through it; the accepted sends reach
    their evidence in the core."""
    async with served.client() as http:
        api = Api(http)
        request = send_request("p1")
        key = request["idempotency_key"]
        response = await api.act(request)
        assert response.status_code == 202, response.text
        first = response.json()
        assert first["accepted"] is True and first["idempotent_replay"] is False
        assert served.intake_claim(key) == (True, without_replay(first)), "the worker accepted it"
        message_id = first["xmpp_message_id"]
        assessment = await api.subclass_reached(message_id, lambda s: s == DELIVERED)
        assert assessment["category"] == "success"
        timeline = await api.entries(message_id)
        assert [e["event_id"] for e in timeline if e["event_type"] == ACCEPTED] == [
            first["initial_events"][0]["event_id"]
        ]
        assert "delivered_to_client" in {e["scenario"] for e in timeline}

        replay = await api.act({**request, "request_id": "req-p1-again"})
        assert replay.status_code == 202 and replay.json()["idempotent_replay"] is True
        assert without_replay(replay.json()) == without_replay(first)
        assert replay.json()["outbox_state"] == "server_acked", "the core says where the send really is"

        conflict = await api.act({**request, "content": {"body": "Another body."}})
        assert conflict.status_code == 409
        assert conflict.headers["content-type"].startswith("application/problem+json")
        assert conflict.json()["field"] == "idempotency_key"

        invalid = send_request("p-invalid", content={"body": 5})
        refused = await api.act(invalid)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "content.body" in {e["field"] for e in refused.json()["errors"]}
        assert served.intake_claim(invalid["idempotency_key"]) == (False, None), "refused before a claim"

        templated = {k: v for k, v in send_request("p-template").items() if k != "content"}
        templated.update(template_ref="reminder", variables={"summary": "incident 42"})
        response = await api.act(templated)
        assert response.status_code == 202 and response.json()["accepted"] is True, response.text
        assert served.intake_claim(templated["idempotency_key"]) == (True, None), "forwarded to the core"
        await api.subclass_reached(response.json()["xmpp_message_id"], lambda s: s == DELIVERED)
        again = await api.act(templated)
        assert again.json()["idempotent_replay"] is True, "the core replays a key it answered"
        assert again.json()["adapter_operation_id"] == response.json()["adapter_operation_id"]

        suppress = {
            "request_id": "sup-1",
            "action_type": "recipient.suppress",
            "idempotency_key": "sup-1",
            "target_endpoint": {"endpoint_type": "bare_jid", "value": "displayed@sandbox.invalid"},
            "reason": "asked to stop",
        }
        done = await api.act(suppress)
        assert done.status_code == 200 and done.json()["action_state"] == "completed", done.text
        blocked = send_request("p-suppressed", to="displayed@sandbox.invalid")
        answer = await api.act(blocked)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["reason"], answer.json()["assessment"]["subclass"]) == (
            "suppressed", "fail.suppressed"
        )
        assert served.intake_claim(blocked["idempotency_key"]) == (True, None), "the core refused it"

        missing = send_request("p-error", to="error-item-not-found@sandbox.invalid")
        response = await api.act(missing)
        assert response.status_code == 202 and response.json()["accepted"] is True
        assert served.intake_claim(missing["idempotency_key"])[1] is not None, "worker accepted"
        missing_id = response.json()["xmpp_message_id"]
        await api.subclass_reached(missing_id, lambda s: s == "fail.recipient_not_found")
        missing_types = {e["event_type"] for e in await api.entries(missing_id)}
        assert "notification.endpoint.rejected_permanent" in missing_types

        health = await api.get("/adapter/health")
        assert [a["stream_status"] for a in health["accounts"]] == ["connected"]
        descriptor = await http.get("/adapter/descriptor")
        assert descriptor.status_code == 200
        packaged = load_policy(None).descriptor
        assert descriptor.json()["adapter_id"] == packaged["adapter_id"]
        assert [a["action_type"] for a in descriptor.json()["supported_actions"]] == [
            a["action_type"] for a in packaged["supported_actions"]
        ]
        wrong = await http.get("/adapter/health", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401, "the core authenticates what the worker forwards"
        assert wrong.headers["www-authenticate"].startswith("Bearer"), "and its challenge comes back"


async def test_sigkill_of_the_core_ends_its_worker_and_frees_the_port(served: ServedWithWorkers) -> None:
    """SIGKILL the core: its worker gets SIGTERM (PR_SET_PDEATHSIG) and ends within EXIT_WAIT, nothing
    listens on the port, and a fresh `serve --api-workers 1` there serves the earlier timeline (plus the
    presence the sandbox reports when a stream starts, which correlates with this recipient's message)."""
    async with served.client() as http:
        api = Api(http)
        response = await api.act(send_request("k1"))
        assert response.status_code == 202
        message_id = response.json()["xmpp_message_id"]
        await api.subclass_reached(message_id, lambda s: s == DELIVERED)
        timeline = await api.entries(message_id)
    children = served.children()
    assert len([pid for pid in children if "spawn_main" in _command(pid)]) == 1, "the core's API worker"
    assert served.process is not None
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(timeout=EXIT_WAIT)
    deadline = time.monotonic() + EXIT_WAIT
    while alive := [pid for pid in children if _alive(pid)]:
        assert time.monotonic() < deadline, f"still running {EXIT_WAIT}s after the core was killed: {alive}"
        await asyncio.sleep(0.05)
    assert _refused(served.port), "nothing listens on the port once the core and its worker are gone"

    await served.start()
    async with served.client() as http:
        api = Api(http)
        after = await api.entries(message_id)
        assert after[: len(timeline)] == timeline, "the evidence from before the kill, as it was"
        assert {e["scenario"] for e in after[len(timeline):]} <= {"presence_available"}, (
            "only the sandbox's presence snapshot of the restarted stream is new"
        )
        assert (await api.get(f"/adapter/messages/{message_id}/assessment"))["subclass"] == DELIVERED


async def test_a_worker_that_dies_is_started_again(served: ServedWithWorkers) -> None:
    """SIGKILL the API worker: the core starts another on the same listening socket (within a few seconds)
    and it answers sends again; the send accepted before the kill is carried out once."""
    async with served.client() as http:
        api = Api(http)
        before = await api.act(send_request("before-worker-kill"))
        assert before.status_code == 202
        [worker] = [pid for pid in served.children() if "spawn_main" in _command(pid)]
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + START_WAIT
        while True:
            replacement = [p for p in served.children() if "spawn_main" in _command(p) and p != worker]
            if replacement and await ServedWithWorkers._connected(http):
                break
            assert time.monotonic() < deadline, f"no new worker within {START_WAIT}s:\n{served.log_text()}"
            await asyncio.sleep(0.1)
        served.started_children |= set(replacement)
        after = await api.act(send_request("after-worker-kill"))
        assert after.status_code == 202 and after.json()["accepted"] is True
        for answer in (before.json(), after.json()):
            await api.subclass_reached(answer["xmpp_message_id"], lambda s: s == DELIVERED)
        assert "starting it again" in served.log_text()


# -- what the core does with a send a worker accepted ------------------------------------------------------


async def test_a_waiting_send_reads_as_accepted_before_the_core_carries_it_out(tmp_path: Path) -> None:
    """Reads through the core of a send still in the intake: the message without attempts, the accepted
    event with the answered id (not recorded yet), the assessment the accepted event gives; afterwards the
    same event comes from the log."""
    config = service_config(tmp_path)
    async with core_beside_worker(config) as (store, service, intake):
        service.take_intake(intake, config.data_dir / HEALTH_FILE)
        async with worker_http(config) as worker:
            answered = (await worker.post("/adapter/actions", json=send_request("waiting"))).json()
        message_id, tenant = answered["xmpp_message_id"], tenant_a(config)
        assert store.get_message("a", message_id) is None
        message = service.message(tenant, message_id)
        assert message is not None and message["attempts"] == []
        assert message["coordination_case_id"] == "case_123"
        timeline = service.timeline(tenant, message_id)
        assert timeline is not None
        [entry] = timeline["entries"]
        assert entry["event_id"] == answered["initial_events"][0]["event_id"]
        assert entry["recorded_at"] is None, "not in the log yet"
        assessment = service.assessment(tenant, message_id)
        assert assessment is not None and assessment["subclass"] == answered["assessment"]["subclass"]
        assert service.timeline(tenant_a(config), "xmppmsg_unknown") is None
        assert service.timeline(config.tenant("b"), message_id) is None, "another tenant's send"

        await service.start()
        await eventually(lambda: delivered(store, message_id), "the send carried out and its receipt")
        recorded = service.timeline(tenant, message_id)
        assert recorded is not None
        accepted = [e for e in recorded["entries"] if e["event_id"] == entry["event_id"]]
        assert len(accepted) == 1 and accepted[0]["recorded_at"] is not None


async def test_a_send_refused_when_carried_out_keeps_its_accepted_event(tmp_path: Path) -> None:
    """The recipient is suppressed after the worker accepted the send: the core sends nothing and records
    the refusal next to the accepted event the caller was told about."""
    config = service_config(tmp_path)
    async with core_beside_worker(config) as (store, service, intake):
        sent = count_sends(service)
        async with worker_http(config) as worker:
            answered = (await worker.post("/adapter/actions", json=send_request("late-stop"))).json()
        assert answered["accepted"] is True
        store.suppress("a", "delivered@sandbox.invalid")
        await service.start()
        dispatcher = IntakeDispatcher(intake, store, service._carry_out)
        assert await dispatcher.carry_out(intake.items_after(0)) is True
        events = store.evidence_for_message("a", answered["xmpp_message_id"])
        assert [e.event_id for e in events if e.event_type == ACCEPTED] == [
            answered["initial_events"][0]["event_id"]
        ]
        refused = [e for e in events if e.fact.get("kind") == "request_rejected"]
        assert refused and {e.fact.get("reject_reason") for e in refused} == {"suppressed"}
        assessment = service.assessment(tenant_a(config), answered["xmpp_message_id"])
        assert assessment is not None and assessment["subclass"] == refused[0].assessment.subclass
        fresh = await fresh_send_goes_out(service, store, config, sent)
        assert [e.stanza_id for e in sent] == [fresh], "nothing goes out to a suppressed recipient"


async def test_a_key_the_core_already_used_is_left_to_the_core(tmp_path: Path) -> None:
    """A key the core claimed before the intake existed (one process, then workers) is not accepted
    afresh by a worker: it is forwarded (503 here, no core listens) and stays the core's."""
    config = service_config(tmp_path)
    store = core_store(config)
    service = AdapterService(config, store, default_policy())
    await service.start()
    request = send_request("before-workers")
    try:
        first = await service.perform_action(tenant_a(config), request)
        assert first.status == 202
    finally:
        await service.stop()
        store.close()
    report_connected(config)
    async with worker_http(config) as worker:
        assert (await worker.post("/adapter/actions", json=request)).status_code == 503
    assert claim_result(config.data_dir / INTAKE_FILE, request["idempotency_key"]) == (True, None)


async def test_a_full_backlog_sends_new_sends_to_the_core(tmp_path: Path) -> None:
    """``limits.intake_backlog`` reached: the worker stops queueing and forwards (503 here, no core)."""
    config = service_config(tmp_path, intake_backlog=2)
    core_store(config).close()
    report_connected(config)
    async with worker_http(config) as worker:
        for i in range(2):
            assert (await worker.post("/adapter/actions", json=send_request(f"fill-{i}"))).status_code == 202
        await eventually(lambda: worker_desk(worker).backlog_full, "the backlog watcher saw the full intake")
        over = send_request("over")
        assert (await worker.post("/adapter/actions", json=over)).status_code == 503
    assert claim_result(config.data_dir / INTAKE_FILE, over["idempotency_key"]) == (True, None)


async def test_metadata_only_mode_queues_no_body(tmp_path: Path) -> None:
    """privacy.metadata_only: the intake would hold the request's body until the core takes it, so the
    worker accepts nothing itself and forwards every send (503 here, no core listens)."""
    config = replace(service_config(tmp_path), privacy=replace(service_config(tmp_path).privacy,
                                                               metadata_only=True))
    core_store(config).close()
    report_connected(config)
    request = send_request("metadata-only")
    async with worker_http(config) as worker:
        assert (await worker.post("/adapter/actions", json=request)).status_code == 503
    assert claim_result(config.data_dir / INTAKE_FILE, request["idempotency_key"]) == (True, None)
    with sqlite3.connect(f"file:{config.data_dir / INTAKE_FILE}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM intake_items").fetchone()[0] == 0


@asynccontextmanager
async def core_only(directory: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The same configuration served by one process without workers (in process, over ASGI), its stream
    connected."""
    directory.mkdir()
    config_path = directory / "xmpp-connect.yaml"
    config_path.write_text(CONFIG)
    config = load_config(config_path, {TOKEN_ENV: TOKEN})
    app = build_app(AdapterService(config, open_store(config)))
    async with lifespan(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://core",
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=WAIT,
    ) as http:
        deadline = time.monotonic() + WAIT
        while not await ServedWithWorkers._connected(http):
            assert time.monotonic() < deadline, "the core-only service's stream never connected"
            await asyncio.sleep(0.05)
        yield http


def refusal(response: httpx.Response) -> tuple[Any, ...]:
    """What a refusal says, without what differs between two stores (times, event ids, the time part of the
    message id: spec/ids.md)."""
    body = response.json()
    if response.headers["content-type"].startswith("application/problem+json"):
        return response.status_code, body["type"], sorted((e["field"], e["message"]) for e in body["errors"])
    message_id = body["xmpp_message_id"]
    return (response.status_code, body["accepted"], body["action_state"], body["reason"],
            body["assessment"]["subclass"], message_id[:8] + message_id[20:])


async def test_worker_and_core_refuse_a_bad_request_the_same_way(served: ServedWithWorkers,
                                                                 tmp_path: Path) -> None:
    """One admission (sending/admission.py) for both: each bad send gets the same answer from a worker
    (which hands pre-send refusals to the core to record) as from a service without workers."""
    suppress = {
        "request_id": "sup-parity",
        "action_type": "recipient.suppress",
        "idempotency_key": "sup-parity",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": "displayed@sandbox.invalid"},
    }
    bad = {
        "schema": send_request("bad-schema", content={"body": 5}),
        "invalid_jid": send_request("bad-jid", to="not a jid@@sandbox.invalid"),
        "account_missing": send_request("bad-account", account="not-an-account"),
        "suppressed": send_request("bad-suppressed", to="displayed@sandbox.invalid"),
    }
    answers: dict[str, dict[str, tuple[Any, ...]]] = {"worker": {}, "core": {}}
    async with served.client() as worker, core_only(tmp_path / "core-only") as core:
        for name, http in (("worker", worker), ("core", core)):
            assert (await http.post("/adapter/actions", json=suppress)).status_code == 200
            for case, request in bad.items():
                answers[name][case] = refusal(await http.post("/adapter/actions", json=request))
    assert answers["worker"] == answers["core"]
    assert answers["core"]["schema"][0] == 422
    assert ("content.body", "fails 'type'") in answers["core"]["schema"][2]
    assert {case: answer[3] for case, answer in answers["core"].items() if case != "schema"} == {
        "invalid_jid": "invalid_jid", "account_missing": "account_missing", "suppressed": "suppressed"
    }
    for case in ("invalid_jid", "account_missing", "suppressed"):
        assert served.intake_claim(bad[case]["idempotency_key"]) == (True, None), f"{case}: the core answered"
    assert served.intake_claim(bad["schema"]["idempotency_key"]) == (False, None), "refused before a claim"
