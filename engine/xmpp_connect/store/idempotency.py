"""Ids for an idempotent operation (§29, §36.3) and the timers of a message (spec/ids.md).

An operation's ids are time-ordered: the time it was first claimed, then a digest of the tenant and the
idempotency key. A repeat of the key finds the stored operation and its ids; the core carrying out a send an
API worker accepted claims it with the operation id the worker answered, and derives the same stanza id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from xmpp_connect.model.ids import beside_message, time_ordered
from xmpp_connect.store.plain_json import canonical_bytes


def payload_hash(payload: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the request payload (key order and whitespace do not matter)."""
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


def operation_id(tenant_id: str, idempotency_key: str, claimed_at: datetime) -> str:
    return "xmppop_" + time_ordered(claimed_at, _digest("operation", tenant_id, idempotency_key))


def stanza_id(tenant_id: str, idempotency_key: str, operation: str) -> str:
    """The stanza id of the operation's first stanza, so an XMPP-level resend is recognisable: the operation
    id's time part, then its own digest; for an operation id of before (24 digits), made as it was then."""
    digest = _digest("stanza", tenant_id, idempotency_key)
    ordered = operation.removeprefix("xmppop_")
    return "xc-" + (ordered[:12] + digest[:20] if len(ordered) == 32 else digest[:24])


def timer_id(tenant_id: str, message_id: str, timer: str) -> str:
    """The one id of a message's timer of a kind."""
    digest = _digest("operation", tenant_id, f"{message_id}\x00{timer}")
    return "tmr_" + beside_message(message_id, digest, 24)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
