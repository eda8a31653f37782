"""Webhook subscription endpoints: create, list, delete, rotate the secret, redeliver, dead deliveries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.limits import RateLimiter, TenantHandler, guarded, read_json_object
from xmpp_connect.config.settings import TenantConfig


class WebhookBackend(Protocol):
    """Subscriptions scoped to the calling tenant; raises Problem (404 unknown id, 409, 422)."""

    def create(self, tenant: TenantConfig, body: dict[str, Any]) -> dict[str, Any]: ...

    def subscriptions(self, tenant: TenantConfig) -> dict[str, Any]: ...

    def delete(self, tenant: TenantConfig, subscription_id: str) -> None: ...

    def rotate_secret(self, tenant: TenantConfig, subscription_id: str) -> dict[str, Any]: ...

    def redeliver(
        self, tenant: TenantConfig, subscription_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...

    def dead_deliveries(self, tenant: TenantConfig, subscription_id: str) -> dict[str, Any]: ...


class WebhookEndpoints:
    def __init__(
        self, backend: WebhookBackend, auth: TenantAuth, limiter: RateLimiter, max_body_bytes: int
    ) -> None:
        self.backend = backend
        self.auth = auth
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    def routes(self) -> list[Route]:
        r = self._guarded
        return [
            Route("/adapter/webhooks", r(self.collection), methods=["GET", "POST"]),
            Route("/adapter/webhooks/{id}", r(self.delete), methods=["DELETE"]),
            Route("/adapter/webhooks/{id}/rotate-secret", r(self.rotate), methods=["POST"]),
            Route("/adapter/webhooks/{id}/redeliver", r(self.redeliver), methods=["POST"]),
            Route("/adapter/webhooks/{id}/dead-deliveries", r(self.dead)),
        ]

    def _guarded(self, handler: TenantHandler) -> Callable[[Request], Awaitable[Response]]:
        return guarded(self.auth, self.limiter, handler)

    async def collection(self, request: Request, tenant: TenantConfig) -> Response:
        if request.method == "GET":
            return JSONResponse(self.backend.subscriptions(tenant))
        body = await read_json_object(request, self.max_body_bytes)
        return JSONResponse(self.backend.create(tenant, body), status_code=201)

    async def delete(self, request: Request, tenant: TenantConfig) -> Response:
        self.backend.delete(tenant, request.path_params["id"])
        return Response(status_code=204)

    async def rotate(self, request: Request, tenant: TenantConfig) -> Response:
        return JSONResponse(self.backend.rotate_secret(tenant, request.path_params["id"]))

    async def redeliver(self, request: Request, tenant: TenantConfig) -> Response:
        body = await read_json_object(request, self.max_body_bytes)
        return JSONResponse(self.backend.redeliver(tenant, request.path_params["id"], body), status_code=202)

    async def dead(self, request: Request, tenant: TenantConfig) -> Response:
        return JSONResponse(self.backend.dead_deliveries(tenant, request.path_params["id"]))
