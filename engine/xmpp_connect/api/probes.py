"""Unauthenticated probes for an orchestrator: ``/livez`` (the process answers) and ``/readyz`` (the store
takes writes, the policy is loaded, every account's stream is connected; 503 otherwise). Neither names a
tenant, a JID or a server."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xmpp_connect.api.backend import AdapterBackend


def probe_routes(backend: AdapterBackend) -> list[Route]:
    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_request: Request) -> Response:
        ready, report = await backend.readiness()
        return JSONResponse(report, status_code=200 if ready else 503)

    return [Route("/livez", livez), Route("/readyz", readyz)]
