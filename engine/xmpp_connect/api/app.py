"""The Starlette application: routes, problem+json errors, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.backend import AdapterBackend
from xmpp_connect.api.console import console_routes
from xmpp_connect.api.limits import RateLimiter
from xmpp_connect.api.probes import probe_routes
from xmpp_connect.api.problems import Problem, handle_http_exception, handle_problem, handle_unexpected
from xmpp_connect.api.routes import Endpoints
from xmpp_connect.config.settings import ServiceConfig


def create_app(
    config: ServiceConfig, backend: AdapterBackend, openapi: dict[str, Any], lifespan: Any = None
) -> Starlette:
    """The HTTP API over ``backend``; ``openapi`` is served as /openapi.json without authentication."""
    auth = TenantAuth(config.tenants)
    endpoints = Endpoints(
        backend,
        auth,
        RateLimiter(config.limits.rate_per_second, config.limits.burst),
        config.limits.max_body_bytes,
    )

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(openapi)

    return Starlette(
        routes=[Route("/openapi.json", openapi_json), *probe_routes(backend), *console_routes(backend, auth),
                *endpoints.routes()],
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
