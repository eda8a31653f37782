"""The evidence console (``/console``): a tenant signs in once with its bearer token through a form and gets
an HttpOnly, SameSite=Strict session cookie scoped to ``/console``; every page shows that tenant's data only.
Sessions live in this process's memory (a restart signs everyone out) and expire after ``SESSION_S``."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from xmpp_connect.api import console_pages as pages
from xmpp_connect.api.auth import TenantAuth
from xmpp_connect.api.backend import AdapterBackend
from xmpp_connect.config.settings import TenantConfig

COOKIE = "xc_console"
SESSION_S = 8 * 3600
MAX_FORM_BYTES = 4096
RECENT = 50
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Sessions:
    """Random session ids -> (tenant, expiry)."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[TenantConfig, float]] = {}

    def open(self, tenant: TenantConfig) -> str:
        now = time.monotonic()
        self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
        session = secrets.token_urlsafe(32)
        self._sessions[session] = (tenant, now + SESSION_S)
        return session

    def tenant(self, session: str | None) -> TenantConfig | None:
        found = self._sessions.get(session or "")
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def close(self, session: str | None) -> None:
        self._sessions.pop(session or "", None)


def console_routes(backend: AdapterBackend, auth: TenantAuth) -> list[Route]:
    sessions = Sessions()

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers=HEADERS)

    def signed_in(request: Request) -> TenantConfig | None:
        return sessions.tenant(request.cookies.get(COOKIE))

    async def home(request: Request) -> Response:
        tenant = signed_in(request)
        if tenant is None:
            return html(pages.sign_in())
        letters = backend.dead_letters(tenant, None, RECENT)["dead_letters"]
        return html(pages.overview(tenant.id, backend.recent_messages(tenant, RECENT),
                                   backend.channel_health(tenant), letters))

    async def sign_in(request: Request) -> Response:
        body = await request.body()
        token = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).get("token", [""])[0].strip()
        tenant = auth.tenant_for(token) if token and len(body) <= MAX_FORM_BYTES else None
        if tenant is None:
            return html(pages.sign_in("That token is not valid."), status=401)
        response = RedirectResponse("/console", status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, sessions.open(tenant), max_age=SESSION_S, path="/console", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def sign_out(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/console", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
        return response

    async def message(request: Request) -> Response:
        tenant = signed_in(request)
        if tenant is None:
            return RedirectResponse("/console", status_code=303, headers=HEADERS)
        message_id = request.path_params["id"]
        timeline = backend.timeline(tenant, message_id)
        assessment = backend.assessment(tenant, message_id)
        if timeline is None or assessment is None:
            return html(pages.page("Not found", "<p>No such message for this tenant.</p>", tenant.id), 404)
        return html(pages.message_page(tenant.id, message_id, timeline["entries"], assessment,
                                       backend.grade_strengths()))

    async def raw(request: Request) -> Response:
        tenant = signed_in(request)
        if tenant is None:
            return RedirectResponse("/console", status_code=303, headers=HEADERS)
        found = backend.raw_stanza(tenant, request.path_params["ref"])
        if found is None:
            return html(pages.page("Not found", "<p>No such raw stanza for this tenant.</p>", tenant.id), 404)
        return html(pages.raw_page(tenant.id, found))

    return [
        Route("/console", home),
        Route("/console/sign-in", sign_in, methods=["POST"]),
        Route("/console/sign-out", sign_out, methods=["POST"]),
        Route("/console/messages/{id}", message),
        Route("/console/raw/{ref}", raw),
    ]
