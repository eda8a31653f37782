"""The compiled validator (jsonschema-rs) never accepts a request the reference (jsonschema) refuses.

ActionSchemas asks jsonschema-rs first and skips the Python walk when it says "valid", so the one direction
that matters is: Python finds an error => jsonschema-rs finds one too. Checked on every action schema, for a
valid request and for every single-field mutation of it (dropped, retyped, oversized, malformed), one level
deep into nested objects."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from xmpp_connect.sending.schemas import ActionSchemas

BASE: dict[str, Any] = {
    "request_id": "req-1",
    "idempotency_key": "case:participant:xmpp:1",
    "requested_at": "2026-01-01T12:00:00Z",
    "coordination_case_id": "case_123",
    "participant_id": "participant_456",
    "channel": "xmpp",
    "tracking_context": {"correlation_id": "corr-1", "coordination_case_id": "case_123"},
    "target_endpoint": {"endpoint_type": "bare_jid", "value": "delivered@sandbox.invalid"},
    "content": {"body": "A document is available."},
    "options": {"request_receipt": True, "receipt_timeout_s": 30},
}
EXTRA: dict[str, dict[str, Any]] = {
    "notification.schedule": {"send_at": "2026-01-01T13:00:00Z"},
    "notification.send_reminder": {"original_operation_id": "xmppop_abc"},
    "interaction.request_acknowledgement": {"expected_keywords": ["ACK"]},
    "interaction.send_command_prompt": {"prompt": "Confirm?", "expected_keywords": ["YES", "NO"]},
    "feed.publish_item": {
        "target_endpoint": {
            "endpoint_type": "pubsub_node", "value": "events", "service": "pubsub.sandbox.invalid"
        },
        "item": {"title": "Release", "summary": "A document is available."},
    },
    "notification.cancel": {"operation_id": "xmppop_abc"},
    "recipient.suppress": {"reason": "asked to stop"},
}
ONLY: dict[str, tuple[str, ...]] = {
    "notification.cancel": ("request_id", "idempotency_key", "operation_id", "requested_at"),
    "notification.register_tracking_context": (
        "request_id", "idempotency_key", "tracking_context", "target_endpoint", "requested_at"
    ),
    "recipient.suppress": ("request_id", "idempotency_key", "target_endpoint", "reason"),
    "recipient.unsuppress": ("request_id", "idempotency_key", "target_endpoint"),
    "feed.publish_item": ("request_id", "idempotency_key", "requested_at", "target_endpoint", "item"),
}
REPLACEMENTS: tuple[Any, ...] = (
    None, 0, -1, 1.5, "", "x" * 5000, [], {}, True, "not a date", ["a"], {"a": 1}
)
SCHEMAS = ActionSchemas()
ACTION_SCHEMAS = sorted(name for name in SCHEMAS.validators if name not in ("common", "action-result"))


def seed(schema: str) -> dict[str, Any]:
    action_type = "notification.send" if schema == "xmpp.send" else schema
    request = {**copy.deepcopy(BASE), **copy.deepcopy(EXTRA.get(schema, {})), "action_type": action_type}
    keep = ONLY.get(schema)
    return {k: v for k, v in request.items() if keep is None or k in keep or k == "action_type"}


def mutations(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key, value in request.items():
        dropped = dict(request)
        del dropped[key]
        yield dropped
        for replacement in REPLACEMENTS:
            yield {**request, key: replacement}
        if isinstance(value, dict):
            for inner in value:
                yield {**request, key: {k: v for k, v in value.items() if k != inner}}
                for replacement in REPLACEMENTS:
                    yield {**request, key: {**value, inner: replacement}}
    yield {**request, "unexpected_field": "x"}


@pytest.mark.parametrize("schema", ACTION_SCHEMAS)
def test_seed_request_is_valid_for_both(schema: str) -> None:
    request = seed(schema)
    assert SCHEMAS.validators[schema].is_valid(request), list(SCHEMAS.validators[schema].iter_errors(request))
    assert SCHEMAS.fast[schema].is_valid(request)
    assert SCHEMAS.errors(schema, request) == []


@pytest.mark.parametrize("schema", ACTION_SCHEMAS)
def test_compiled_validator_refuses_whatever_the_reference_refuses(schema: str) -> None:
    refused = 0
    for request in mutations(seed(schema)):
        if not SCHEMAS.validators[schema].is_valid(request):
            refused += 1
            assert not SCHEMAS.fast[schema].is_valid(request), request
            assert SCHEMAS.errors(schema, request), request
    assert refused > 20, "the mutations should exercise the schema's refusals"
