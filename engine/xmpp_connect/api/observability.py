"""Per request: a request id (the caller's ``X-Request-ID`` when it is a sane token, else a new one) set for
every log line and echoed back, one access log line, and the latency histogram by route template."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xmpp_connect.model.metrics import HTTP_REQUEST_SECONDS
from xmpp_connect.model.request_context import REQUEST_ID

access_log = logging.getLogger("xmpp_connect.access")
REQUEST_ID_HEADER = b"x-request-id"
SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "unmatched"


class RequestObserver:
    """Pure ASGI middleware (no body buffering); routes are named by their template, never the raw path,
    so metric labels and log lines carry no JIDs or ids a caller chose."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.templates = {id(r.endpoint): r.path for r in routes if isinstance(r, Route)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.request_id(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            observe(scope["method"], self._template(scope), status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    @staticmethod
    def request_id(scope: Scope) -> str:
        """The caller's X-Request-ID when it is a sane token, else a new one."""
        presented = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        return presented.decode() if SANE_ID.match(presented) else uuid.uuid4().hex

    def _template(self, scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        return self.templates.get(id(endpoint), UNMATCHED) if endpoint is not None else UNMATCHED


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """One answered request: the latency histogram and the access log line."""
    HTTP_REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)
    access_log.info(
        "%s %s %d %.1fms", method, route, status, seconds * 1000,
        extra={"http": {"method": method, "route": route, "status": status,
                        "duration_ms": round(seconds * 1000, 2)}},
    )
