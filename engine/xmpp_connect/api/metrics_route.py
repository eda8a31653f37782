"""``GET /metrics``: Prometheus text, behind the configured token when there is one."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xmpp_connect.api.problems import Problem
from xmpp_connect.config.settings import Secret

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def metrics_route(render: Callable[[], bytes], token: Secret | None) -> Route:
    """The route; ``render`` produces the exposition text at each scrape."""
    expected = hashlib.sha256(token.reveal().encode()).digest() if token is not None else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            digest = hashlib.sha256(presented.strip().encode()).digest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(digest, expected):
                raise Problem(401, "unauthenticated", "The metrics token is required.",
                              headers={"WWW-Authenticate": 'Bearer realm="xmpp-connect metrics"'})
        return Response(render(), media_type=PROMETHEUS_TEXT)

    return Route("/metrics", metrics)
