"""Request size and per-tenant rate limits (§27)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.config.settings import TenantConfig


class RateLimiter:
    """A token bucket per tenant: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, tenant_id: str) -> None:
        """Take one token for ``tenant_id`` or raise a 429 problem with Retry-After."""
        now = self._clock()
        tokens, last = self._buckets.get(tenant_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[tenant_id] = (tokens, now)
            retry_after = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise Problem(
                429,
                "rate-limited",
                "Too many requests for this tenant; retry later.",
                headers={"Retry-After": str(retry_after)},
            )
        self._buckets[tenant_id] = (tokens - 1.0, now)


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 when larger than ``max_bytes``, 400 when not JSON."""
    return json_object(await read_body(request, max_bytes))


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw request body; 413 when larger than ``max_bytes`` (stops reading there)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object: 400 when empty or not JSON, 422 when not an object."""
    if not raw:
        raise Problem(
            400, "malformed-body", "A JSON object body is required.", [FieldError("", "empty body")]
        )
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "encoding"
        )
        raise Problem(
            400,
            "malformed-body",
            "The body is not valid UTF-8 JSON.",
            [FieldError("", f"invalid JSON at {where}")],
        ) from None
    if not isinstance(data, dict):
        raise Problem(
            422, "invalid-request", "The body must be a JSON object.", [FieldError("", "not an object")]
        )
    return data


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, "body-too-large", f"The request body exceeds {max_bytes} bytes.")


TenantHandler = Callable[[Request, TenantConfig], Awaitable[Response]]


def guarded(
    auth: TenantAuth, limiter: RateLimiter, handler: TenantHandler
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, then rate-limit per tenant, then run the handler with the caller's tenant."""

    async def endpoint(request: Request) -> Response:
        tenant = auth.authenticate(request)
        limiter.check(tenant.id)
        return await handler(request, tenant)

    endpoint.__name__ = handler.__name__
    return endpoint
