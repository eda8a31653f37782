"""Bearer tokens per tenant (§27): the caller's tenant scopes every read and write."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.requests import Request

from xmpp_connect.api.problems import Problem
from xmpp_connect.config.settings import TenantConfig


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TenantAuth:
    """Maps a presented bearer token to its tenant; compares digests in constant time."""

    def __init__(self, tenants: Iterable[TenantConfig]) -> None:
        self._tenants = [(_digest(t.token.reveal()), t) for t in tenants]

    def tenant_for(self, token: str) -> TenantConfig | None:
        presented = _digest(token)
        found = None
        for digest, tenant in self._tenants:
            if hmac.compare_digest(digest, presented):
                found = tenant
        return found

    def authenticate(self, request: Request) -> TenantConfig:
        """The request's tenant, or a 401 problem (the token itself is never echoed)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(
                401,
                "unauthenticated",
                "A bearer token is required.",
                headers={"WWW-Authenticate": 'Bearer realm="xmpp-connect"'},
            )
        tenant = self.tenant_for(token.strip())
        if tenant is None:
            raise Problem(
                401,
                "unauthenticated",
                "The bearer token is not valid.",
                headers={"WWW-Authenticate": 'Bearer realm="xmpp-connect", error="invalid_token"'},
            )
        return tenant
