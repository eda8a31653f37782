"""Deterministic ids for an idempotent operation (§29, §36.3): the same key always yields the same ids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def payload_hash(payload: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the request payload (key order and whitespace do not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def operation_id(tenant_id: str, idempotency_key: str) -> str:
    return "xmppop_" + _digest("operation", tenant_id, idempotency_key)[:24]


def stanza_id(tenant_id: str, idempotency_key: str) -> str:
    """The stanza id of the operation's first stanza, so an XMPP-level resend is recognisable."""
    return "xc-" + _digest("stanza", tenant_id, idempotency_key)[:24]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
