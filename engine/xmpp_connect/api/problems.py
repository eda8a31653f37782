"""RFC 9457 problem+json responses: every refusal names its reason and, when there is one, the field."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://xmpp-connect.invalid/problems/"

log = logging.getLogger(__name__)


@dataclass
class FieldError:
    """One failing field: a JSON-pointer-like path and what is wrong with it (never the value)."""

    field: str
    message: str


@dataclass
class Problem(Exception):
    """An HTTP refusal rendered as problem+json."""

    status: int
    slug: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["field"] = self.errors[0].field
            out["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return out


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE
    )


async def handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(Problem(exc.status_code, slug, detail, headers=dict(exc.headers or {})))


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input: log the exception type and route only (the message may quote input)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, frames)
    return problem_response(Problem(500, "internal-error", "The service failed to handle the request."))


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"No such {what} for this tenant.")
