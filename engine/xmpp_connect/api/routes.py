"""The §31 endpoints: the adapter contract (§31.1) and the standalone API (§31.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.backend import ActionOutcome, AdapterBackend
from xmpp_connect.api.limits import RateLimiter, TenantHandler, guarded, read_json_object
from xmpp_connect.api.problems import FieldError, Problem, not_found
from xmpp_connect.config.settings import TenantConfig

MAX_PAGE = 500
DEFAULT_PAGE = 100


class Endpoints:
    """Request handlers bound to one backend, one authenticator, one rate limiter."""

    def __init__(
        self, backend: AdapterBackend, auth: TenantAuth, limiter: RateLimiter, max_body_bytes: int
    ) -> None:
        self.backend = backend
        self.auth = auth
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    def routes(self) -> list[Route]:
        r = self._guarded
        return [
            Route("/adapter/descriptor", r(self.descriptor)),
            Route("/adapter/health", r(self.health)),
            Route("/adapter/actions", r(self.actions), methods=["POST"]),
            Route("/adapter/events/provider", r(self.ingest), methods=["POST"]),
            Route("/adapter/events", r(self.events)),
            Route("/adapter/dead-letters", r(self.dead_letters)),
            Route("/adapter/messages/{id}/timeline", r(self.timeline)),
            Route("/adapter/messages/{id}/assessment", r(self.assessment)),
            Route("/xmpp/send", r(self.send), methods=["POST"]),
            Route("/xmpp/messages/{id}", r(self.message)),
            Route("/xmpp/messages/{id}/timeline", r(self.timeline)),
            Route("/xmpp/messages/{id}/assessment", r(self.assessment)),
            Route("/xmpp/endpoints/{id}", r(self.endpoint)),
            Route("/xmpp/endpoints/{id}/quality", r(self.endpoint_quality)),
            Route("/xmpp/presence/{jid:path}", r(self.presence)),
            Route("/xmpp/muc/{room}/send", r(self.muc_send), methods=["POST"]),
            Route("/xmpp/pubsub/{node}/publish", r(self.pubsub_publish), methods=["POST"]),
            Route("/xmpp/channel-health", r(self.health)),
            Route("/adapter/exports", r(self.export)),
            Route("/adapter/raw-events/{ref}", r(self.raw_event)),
            Route("/adapter/audit/checkpoints", r(self.checkpoints)),
            Route("/adapter/audit/checkpoints", r(self.sign_checkpoint), methods=["POST"]),
            Route("/adapter/audit/public-key", self.public_key),
            Route("/adapter/archive/queries", r(self.archive_query), methods=["POST"]),
        ]

    def _guarded(self, handler: TenantHandler) -> Callable[[Request], Awaitable[Response]]:
        return guarded(self.auth, self.limiter, handler)

    async def descriptor(self, _request: Request, _tenant: TenantConfig) -> Response:
        return JSONResponse(self.backend.descriptor())

    async def health(self, _request: Request, tenant: TenantConfig) -> Response:
        accounts = self.backend.channel_health(tenant)
        return JSONResponse({"status": _overall(accounts), "accounts": accounts})

    async def actions(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        return _outcome(await self.backend.perform_action(tenant, body))

    async def ingest(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        return JSONResponse(await self.backend.ingest_provider_event(tenant, body), status_code=202)

    async def events(self, request: Request, tenant: TenantConfig) -> Response:
        limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        return JSONResponse(self.backend.events(tenant, request.query_params.get("cursor"), limit))

    async def dead_letters(self, request: Request, tenant: TenantConfig) -> Response:
        limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        return JSONResponse(self.backend.dead_letters(tenant, request.query_params.get("cursor"), limit))

    async def timeline(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.timeline(tenant, request.path_params["id"]), "message")

    async def assessment(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.assessment(tenant, request.path_params["id"]), "message")

    async def message(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.message(tenant, request.path_params["id"]), "message")

    async def endpoint(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.endpoint(tenant, request.path_params["id"]), "endpoint")

    async def endpoint_quality(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.endpoint_quality(tenant, request.path_params["id"]), "endpoint")

    async def presence(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.presence(tenant, request.path_params["jid"]), "presence")

    async def send(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        return _outcome(await self.backend.standalone_send(tenant, "message", body))

    async def muc_send(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        body = {**body, "room": request.path_params["room"]}
        return _outcome(await self.backend.standalone_send(tenant, "muc", body))

    async def pubsub_publish(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        body = {**body, "node": request.path_params["node"]}
        return _outcome(await self.backend.standalone_send(tenant, "pubsub", body))


    async def export(self, request: Request, tenant: TenantConfig) -> Response:
        bundle = await self.backend.export_bundle(tenant, request.query_params)
        return Response(
            bundle,
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="evidence-export.jsonl"'},
        )

    async def raw_event(self, request: Request, tenant: TenantConfig) -> Response:
        return _found(self.backend.raw_event(tenant, request.path_params["ref"]), "raw event")

    async def checkpoints(self, request: Request, tenant: TenantConfig) -> Response:
        limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        return JSONResponse(self.backend.checkpoints(tenant, limit))

    async def sign_checkpoint(self, _request: Request, tenant: TenantConfig) -> Response:
        return JSONResponse(await self.backend.sign_checkpoint(tenant), status_code=201)

    async def archive_query(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        return JSONResponse(await self.backend.reconstruct(tenant, body))

    async def public_key(self, _request: Request) -> Response:
        """Unauthenticated: an auditor without a tenant token checks checkpoints against it."""
        return _found(self.backend.audit_public_key(), "audit public key")


def _outcome(outcome: ActionOutcome) -> Response:
    return JSONResponse(outcome.result, status_code=outcome.status)


def _found(value: dict[str, Any] | None, what: str) -> Response:
    if value is None:
        raise not_found(what)
    return JSONResponse(value)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Problem(
            422,
            "invalid-parameter",
            f"{name} must be an integer from {low} to {high}.",
            [FieldError(name, f"integer {low}..{high} required")],
        )
    return int(raw)


def _overall(accounts: list[dict[str, Any]]) -> str:
    statuses = {a.get("status") for a in accounts}
    for status in ("failing", "degraded", "unknown"):
        if status in statuses:
            return status
    return "healthy" if accounts else "unknown"
