"""What the actions need from the rest of the service: the evidence store, held schedules, capabilities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from xmpp_connect.evidence.recorder import RecorderStore
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store.records import (
    AppendResult,
    IdempotentOperation,
    Suppression,
    XmppAttempt,
    XmppEndpoint,
    XmppMessage,
    XmppStanza,
)


class ActionStore(RecorderStore, Protocol):
    """What actions need from the evidence store (store.sql.SqlStore provides it)."""

    def transaction(self) -> AbstractContextManager[None]: ...
    async def durable(self) -> None: ...
    def claim_operation(
        self, tenant_id: str, idempotency_key: str, payload_hash: str, operation_id: str | None = None
    ) -> IdempotentOperation: ...
    def complete_operation(self, tenant_id: str, idempotency_key: str, result: Mapping[str, Any]) -> None: ...
    def new_operation(
        self, tenant_id: str, idempotency_key: str, payload_hash: str, operation_id: str | None = None
    ) -> IdempotentOperation: ...
    def claim_completed_operation(
        self, operation: IdempotentOperation, result: Mapping[str, Any]
    ) -> bool: ...
    def operation_known(self, tenant_id: str, idempotency_key: str) -> bool: ...
    def timers_start_here(self, tenant_id: str, message_id: str) -> None: ...
    def get_message(self, tenant_id: str, message_id: str) -> XmppMessage | None: ...
    def create_message(self, message: XmppMessage) -> None: ...
    def get_attempt(self, tenant_id: str, attempt_id: str) -> XmppAttempt | None: ...
    def create_attempt(self, attempt: XmppAttempt, state_event_id: str | None = None) -> None: ...
    def stanza_recorded_lately(self, tenant_id: str, stanza_ref: str) -> bool: ...
    def record_stanza(self, stanza: XmppStanza) -> None: ...
    def append_evidence(self, events: Sequence[EvidenceEvent]) -> AppendResult: ...
    def suppression(self, tenant_id: str, jid: str) -> Suppression | None: ...
    def suppress(
        self, tenant_id: str, jid: str, state: str = ..., reason: str | None = None
    ) -> Suppression: ...
    def unsuppress(self, tenant_id: str, jid: str) -> bool: ...
    def upsert_endpoint(self, endpoint: XmppEndpoint) -> XmppEndpoint: ...
    def update_attempt(self, tenant_id: str, attempt_id: str, *, state: str | None = None) -> XmppAttempt: ...


class PendingSends(Protocol):
    """notification.schedule requests held until their send time (persisted: they survive a restart).

    ``holds_bodies`` is False in metadata-only mode: a held request keeps no body, so only template
    requests (``template_ref`` + ``variables``, rendered when due) can be scheduled."""

    holds_bodies: bool

    def hold(
        self,
        tenant_id: str,
        operation_id: str,
        message_id: str,
        request: Mapping[str, Any],
        send_at: datetime,
    ) -> None: ...
    def release(self, tenant_id: str, operation_id: str) -> dict[str, Any] | None:
        """Take a held request out for sending; None when it was cancelled or already released."""

    def cancel(self, tenant_id: str, operation_id: str) -> bool:
        """Drop a held request; False when none was held."""


Capabilities = Callable[[str, str, str], bool | None]
"""(account, jid, feature) -> whether the recipient's client advertises the feature; None when unknown."""
