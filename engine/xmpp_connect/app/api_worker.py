"""An API worker process (``serve --api-workers N``): it accepts plain one-to-one sends into the intake itself
and forwards every other request to the core process, which owns the XMPP sessions and the evidence store.

A send is accepted here only when nothing about it needs the core: a §4.2 send with a ``content`` body to a
bare or full JID, asking no mandatory extension (only the core knows the recipient's capabilities), that
passes the core's own pre-send checks (sending/admission.py: an account of the caller whose stream the core
last reported connected, a valid recipient not suppressed), while fewer than ``limits.intake_backlog``
accepted sends wait for the core (beyond that, sends go to the core and are answered at its pace), and
never in metadata-only mode (the intake would hold the body until the core takes it).
Anything else (a refusal to record, a template to render, a room, a node, a schedule, a reminder, every
read) goes to the core unchanged, so its answer is the core's own. When the core's health report is stale,
everything goes to the core. A replay of a send accepted here is answered here while the send waits in the
intake (``outbox_state: accepted``), and by the core once the core carried it out (its outbox state, and a
send still only accepted is handed to the provider then).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.limits import RateLimiter, json_object, read_body
from xmpp_connect.api.observability import RequestObserver, observe
from xmpp_connect.api.problems import (
    Problem,
    handle_http_exception,
    handle_problem,
    handle_unexpected,
    problem_response,
)
from xmpp_connect.app.logging_setup import setup_logging
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.model.metrics import SENDS
from xmpp_connect.model.request_context import REQUEST_ID
from xmpp_connect.policy.load import load_policy
from xmpp_connect.sending.action_answers import action_outcome, action_problem
from xmpp_connect.sending.actions import Actions
from xmpp_connect.sending.admission import MANDATORY_OPTIONS, Admission
from xmpp_connect.sending.intake import Intake, Queued
from xmpp_connect.sending.schemas import ActionSchemas, InvalidAction, request_digest
from xmpp_connect.sending.targets import target_jid
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.store import idempotency
from xmpp_connect.store.errors import IdempotencyConflict
from xmpp_connect.store.outbox import ACCEPTED
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore, StoreOptions
from xmpp_connect.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

INTAKE_FILE = "intake.sqlite3"
HEALTH_FILE = "core-health.json"
HEALTH_STALE_S = 5.0
FAST_ACTIONS = frozenset(
    {"notification.send", "interaction.request_acknowledgement", "interaction.send_command_prompt"}
)
ONE_TO_ONE = frozenset({"bare_jid", "full_jid"})
FORWARDED_HEADERS = ("authorization", "content-type", "accept")
RETURNED_HEADERS = ("content-type", "retry-after", "www-authenticate")


def write_core_health(path: Path, streams: dict[str, str]) -> None:
    """The core's report of each account's stream status, replaced atomically (read by the workers)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"written_at": time.time(), "streams": streams}), encoding="utf-8")
    os.replace(tmp, path)


class CoreHealth:
    """Whether the core last reported an account's stream connected (re-read at most every ``refresh`` s)."""

    def __init__(self, path: Path, refresh: float = 0.2) -> None:
        self.path = path
        self.refresh = refresh
        self._read_at = 0.0
        self._report: dict[str, Any] = {}

    def connected(self, account: str) -> bool:
        now = time.time()
        if now - self._read_at > self.refresh:
            self._read_at = now
            try:
                self._report = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._report = {}
        fresh = now - float(self._report.get("written_at", 0)) < HEALTH_STALE_S
        return fresh and self._report.get("streams", {}).get(account) == "connected"


class IntakeDesk:
    """Accepts the sends it can answer for into the intake; says which ones the core must take."""

    def __init__(
        self, config: ServiceConfig, actions: Actions, intake: Intake, store: SqlStore, health: CoreHealth
    ) -> None:
        self.config = config
        self.actions = actions
        self.intake = intake
        self.store = store
        self.health = health
        self.admission = Admission(self._stream_status, store.suppression)
        self.backlog_full = False

    async def watch_backlog(self, interval: float = 0.5) -> None:
        """Drop from the intake what the core has carried out, and keep ``backlog_full`` current."""
        while True:
            try:
                position = self.store.intake_position(self.intake.instance_id)
                self.intake.prune(position)
                await self.intake.durable()
                self.backlog_full = self.intake.backlog(position) >= self.config.limits.intake_backlog
            except Exception as exc:  # the core's store or the intake failed: queue nothing until it answers
                log.error("intake backlog not known, sends go to the core meanwhile (%s)", type(exc).__name__)
                self.backlog_full = True
            await asyncio.sleep(interval)

    def can_accept(self, tenant: TenantConfig, action_type: str, request: dict[str, Any]) -> bool:
        """Nothing about this request needs the core (see the module docstring)."""
        target = request.get("target_endpoint") or {}
        options = request.get("options") or {}
        account = request.get("account") or tenant.default_account
        return (
            not self.backlog_full
            and not self.config.privacy.metadata_only
            and action_type in FAST_ACTIONS
            and target.get("endpoint_type") in ONE_TO_ONE
            and "content" in request
            and not any(options.get(name) for name in MANDATORY_OPTIONS)
            and self.admission.refusal(tenant, account, target_jid(target), None, options) is None
        )

    def _stream_status(self, account: str) -> str | None:
        """As the core last reported it; None for an account the service does not have."""
        if self.config.account(account) is None:
            return None
        return "connected" if self.health.connected(account) else "unknown"

    async def accept(self, tenant: TenantConfig, raw: bytes) -> Response | None:
        """The answer when this worker answers the request (accepted now or replayed), None when the core
        must take it. Raises InvalidAction or IdempotencyConflict for the caller to refuse."""
        request = json_object(raw)
        action_type = self.actions.validate(request)
        key = request["idempotency_key"]
        digest = request_digest(request)
        now = datetime.now(UTC)
        answer = queued = None
        if self.can_accept(tenant, action_type, request) and not self.store.operation_known(tenant.id, key):
            result = self.actions.outcomes.accepted_result(tenant.id, action_type, request, now)
            answer = _answer({**result, "idempotent_replay": False})
            queued = Queued(raw.decode(), now, bytes(answer.body).decode())
        operation_id = idempotency.operation_id(tenant.id, key, now)
        claim = self.intake.claim(tenant.id, key, digest, operation_id, now, queued)
        if claim.result is not None and not claim.fresh:
            return self._replay(tenant, key, claim.result)
        await self.intake.durable()
        if claim.fresh and answer is not None:
            SENDS.labels("accepted", "").inc()
            self.intake.notify()
        return answer if claim.fresh else None

    def _replay(self, tenant: TenantConfig, key: str, result: dict[str, Any]) -> Response | None:
        """A replay of a send this worker accepted. Once the core has carried it out, the core answers (None):
        it says where the send really is (``outbox_state``) and hands a send still only accepted to the
        provider. Until then the send waits in the intake, accepted and not written: the claim answers."""
        if self.store.operation_completed(tenant.id, key):
            return None
        return _answer({**result, "idempotent_replay": True, "outbox_state": ACCEPTED})


def _answer(result: dict[str, Any]) -> JSONResponse:
    outcome = action_outcome(result)
    return JSONResponse(outcome.result, status_code=outcome.status)


class CoreForwarder:
    """Passes a request to the core over its Unix socket and its answer back unchanged."""

    def __init__(self, core_socket: str) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=core_socket), base_url="http://core", timeout=30.0
        )

    async def __call__(self, request: Request, body: bytes | None = None) -> Response:
        if body is None:
            body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            answer = await self.client.request(request.method, path, content=body, headers=headers)
        except httpx.TransportError as exc:
            log.error("core process unreachable (%s)", type(exc).__name__)
            raise Problem(503, "core-unavailable", "The service core is not reachable; retry later.",
                          headers={"Retry-After": "1"}) from None
        kept = {k: v for k, v in answer.headers.items() if k in RETURNED_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def close(self) -> None:
        await self.client.aclose()


class WorkerApp:
    """The worker's ASGI app. ``POST /adapter/actions``, the hot path, is answered without the router and
    middleware stack (same auth, rate limit, body limits and problem+json answers); every other request goes
    through a Starlette app whose one route forwards it to the core."""

    def __init__(self, config: ServiceConfig, desk: IntakeDesk, forward: CoreForwarder) -> None:
        self.config = config
        self.desk = desk
        self.forward = forward
        self.auth = TenantAuth(config.tenants)
        self.limiter = RateLimiter(config.limits.rate_per_second, config.limits.burst)

        async def everything_else(request: Request) -> Response:
            return await forward(request)

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.fallback = Starlette(
            routes=[Route("/{path:path}", everything_else, methods=methods)],
            exception_handlers={
                Problem: handle_problem,
                HTTPException: handle_http_exception,
                Exception: handle_unexpected,
            },
            lifespan=contextlib.asynccontextmanager(self._lifespan),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/adapter/actions":
            started = time.perf_counter()
            request = Request(scope, receive)
            try:
                response = await self._actions(request)
            except Problem as problem:
                response = problem_response(problem)
            except Exception as exc:  # a bug, not bad input: answered like the core answers it
                response = await handle_unexpected(request, exc)
            await response(scope, receive, send)
            if not getattr(request.state, "forwarded", False):  # the core observes what it answered
                token = REQUEST_ID.set(RequestObserver.request_id(scope))
                observe("POST", "/adapter/actions", response.status_code, time.perf_counter() - started)
                REQUEST_ID.reset(token)
            return
        await self.fallback(scope, receive, send)

    async def _actions(self, request: Request) -> Response:
        tenant = self.auth.authenticate(request)
        self.limiter.check(tenant.id)
        raw = await read_body(request, self.config.limits.max_body_bytes)
        try:
            answer = await self.desk.accept(tenant, raw)
        except (InvalidAction, IdempotencyConflict) as exc:
            raise action_problem(exc) from None
        if answer is not None:
            return answer
        request.state.forwarded = True
        return await self.forward(request, raw)

    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.desk.intake.enable_group_commit(asyncio.get_running_loop())
        watcher = asyncio.create_task(self.desk.watch_backlog(), name="intake backlog")
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await self.forward.close()
            self.desk.intake.close()


def reading_store(config: ServiceConfig) -> SqlStore:
    """The evidence store as a worker uses it: reads only (the core migrated and writes it)."""
    options = StoreOptions(metadata_only=config.privacy.metadata_only, redact_raw=config.privacy.redact_raw)
    if config.storage.kind == "postgres":
        assert config.storage.dsn is not None
        return PostgresStore(config.storage.dsn.reveal(), options, migrate=False)
    assert config.storage.path is not None
    return SqliteStore(config.storage.path, options, migrate=False)


def build_worker_app(config: ServiceConfig, core_socket: str) -> WorkerApp:
    policy = load_policy(config.policy_dir)
    store = reading_store(config)
    actions = Actions(store, Classifier(policy), {}, {a.ref: a.jid for a in config.accounts}, TemplateStore(),
                      ActionSchemas())
    intake = Intake(config.data_dir / INTAKE_FILE)
    desk = IntakeDesk(config, actions, intake, store, CoreHealth(config.data_dir / HEALTH_FILE))
    return WorkerApp(config, desk, CoreForwarder(core_socket))


def serve_worker(config: ServiceConfig, listener: socket.socket, core_socket: str) -> None:
    """Run one API worker on an already bound socket until the core process ends or SIGTERM."""
    import uvicorn

    _end_with_parent()
    # httpx logs every forwarded request at INFO: setup_logging quiets it (its path would be in the log).
    setup_logging(config.logging.format)
    app = build_worker_app(config, core_socket)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    server.run(sockets=[listener])


class WorkerPool:
    """The API worker processes of one core, sharing its listening socket; one that dies is started again."""

    def __init__(self, config: ServiceConfig, listener: socket.socket, core_socket: str, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._args = (config, listener, core_socket)
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self._count = count
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="api worker pool", daemon=True)

    def start(self) -> None:
        self._workers = [self._spawn(i) for i in range(self._count)]
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        for worker in self._workers:
            worker.terminate()
        for worker in self._workers:
            worker.join(timeout=10)

    def _spawn(self, index: int) -> multiprocessing.process.BaseProcess:
        worker = self._context.Process(target=serve_worker, args=self._args, name=f"api-worker-{index}")
        worker.start()
        return worker

    def _watch(self, interval: float = 1.0) -> None:
        while not self._stopping.wait(interval):
            for index, worker in enumerate(self._workers):
                if not worker.is_alive() and not self._stopping.is_set():
                    log.error("API worker %d ended (exit %s); starting it again", index, worker.exitcode)
                    self._workers[index] = self._spawn(index)


def _end_with_parent() -> None:
    """Linux: SIGTERM this process when the core process dies, even by SIGKILL (no orphaned listener)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

