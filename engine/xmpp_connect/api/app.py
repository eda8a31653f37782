"""The Starlette application: routes, problem+json errors, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.backend import AdapterBackend
from xmpp_connect.api.console import console_routes
from xmpp_connect.api.docs_route import docs_routes
from xmpp_connect.api.limits import RateLimiter
from xmpp_connect.api.metrics_route import metrics_route
from xmpp_connect.api.observability import RequestObserver
from xmpp_connect.api.probes import probe_routes
from xmpp_connect.api.problems import Problem, handle_http_exception, handle_problem, handle_unexpected
from xmpp_connect.api.routes import Endpoints
from xmpp_connect.api.webhook_routes import WebhookBackend, WebhookEndpoints
from xmpp_connect.config.settings import ServiceConfig


def create_app(
    config: ServiceConfig,
    backend: AdapterBackend,
    openapi: dict[str, Any],
    lifespan: Any = None,
    webhooks: WebhookBackend | None = None,
    render_metrics: Callable[[], bytes] | None = None,
) -> Starlette:
    """The HTTP API over ``backend``; ``openapi`` is served as /openapi.json and rendered at /docs, and the
    probes answer, without authentication; the console signs in with a tenant token. With ``webhooks``, the
    subscription endpoints; with ``render_metrics``, ``GET /metrics`` on this port."""
    auth = TenantAuth(config.tenants)
    limiter = RateLimiter(config.limits.rate_per_second, config.limits.burst)
    endpoints = Endpoints(backend, auth, limiter, config.limits.max_body_bytes)
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi_json_route(openapi)), *docs_routes(), *probe_routes(backend),
        *console_routes(backend, auth), *endpoints.routes(),
    ]
    if webhooks is not None:
        routes += WebhookEndpoints(webhooks, auth, limiter, config.limits.max_body_bytes).routes()
    if render_metrics is not None:
        routes.append(metrics_route(render_metrics, config.metrics.token))
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestObserver, routes=routes)],
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )


def openapi_json_route(openapi: dict[str, Any]) -> Callable[[Request], Any]:
    """Serves the OpenAPI document as JSON."""

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(openapi)

    return openapi_json
