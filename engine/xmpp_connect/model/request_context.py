"""The id of the HTTP request being served, for every log line written while serving it."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("xmpp_connect_request_id", default=None)
