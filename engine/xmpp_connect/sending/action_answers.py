"""How an action's outcome is answered over HTTP: its status, or the problem+json refusing it."""

from __future__ import annotations

from typing import Any

from xmpp_connect.api.backend import ActionOutcome
from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.sending.schemas import InvalidAction
from xmpp_connect.store.errors import IdempotencyConflict


def action_problem(exc: InvalidAction | IdempotencyConflict) -> Problem:
    """The problem+json answer to a malformed action request or a reused idempotency key."""
    if isinstance(exc, InvalidAction):
        errors = [FieldError(f, m) for f, m in exc.errors]
        return Problem(exc.status, "invalid-request", "The action request is not valid.", errors)
    return Problem(
        409,
        "idempotency-conflict",
        "This idempotency_key was used with a different request.",
        [FieldError("idempotency_key", "reused with a different payload")],
    )


def action_outcome(result: dict[str, Any]) -> ActionOutcome:
    """An action result with its status: 202 when work was accepted or scheduled, else 200."""
    return ActionOutcome(202 if result["action_state"] in ("accepted", "scheduled") else 200, result)
