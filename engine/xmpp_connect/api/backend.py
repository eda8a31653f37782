"""What the HTTP layer needs from the service, as one protocol: the API knows no store, rules or provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from xmpp_connect.config.settings import TenantConfig


@dataclass(frozen=True)
class ActionOutcome:
    """An action result (§21.2) and the HTTP status it is served with."""

    status: int
    result: dict[str, Any]


class AdapterBackend(Protocol):
    """Every read and write is scoped to the calling tenant; ``None`` means "not found for this tenant"."""

    def descriptor(self) -> dict[str, Any]:
        """The §20 adapter descriptor."""

    def channel_health(self, tenant: TenantConfig) -> list[dict[str, Any]]:
        """§26 channel health of each account the tenant may use."""

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service can take work, and a report of its checks that names no tenant."""

    async def perform_action(self, tenant: TenantConfig, request: dict[str, Any]) -> ActionOutcome:
        """Validate and carry out one §4.2 action request (raises Problem for malformed input)."""

    async def standalone_send(self, tenant: TenantConfig, kind: str, body: dict[str, Any]) -> ActionOutcome:
        """The §31.2 send shortcuts (``message``, ``muc``, ``pubsub``) as actions."""

    async def ingest_provider_event(self, tenant: TenantConfig, payload: dict[str, Any]) -> dict[str, Any]:
        """Run an externally bridged native event or raw stanza through the pipeline."""

    def events(self, tenant: TenantConfig, cursor: str | None, limit: int) -> dict[str, Any]:
        """One page of the tenant's normalized event feed."""

    def dead_letters(self, tenant: TenantConfig, cursor: str | None, limit: int) -> dict[str, Any]:
        """One page of the tenant's dead letters: what could not be parsed or classified, and why."""

    def message(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        """The message record with its attempts."""

    def timeline(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        """The message's evidence in time order."""

    def assessment(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        """The message's §11 assessment."""

    def endpoint(self, tenant: TenantConfig, endpoint_id: str) -> dict[str, Any] | None:
        """A known endpoint by endpoint ref or JID, with its suppression state and tracking context."""

    def endpoint_quality(self, tenant: TenantConfig, endpoint_id: str) -> dict[str, Any] | None:
        """§25 endpoint quality by endpoint ref or JID."""

    def presence(self, tenant: TenantConfig, jid: str) -> dict[str, Any] | None:
        """§15 presence of a bare or full JID."""

    def recent_messages(self, tenant: TenantConfig, limit: int) -> list[dict[str, Any]]:
        """The tenant's latest messages with their assessment, newest first."""

    def raw_stanza(self, tenant: TenantConfig, raw_ref: str) -> dict[str, Any] | None:
        """One preserved raw stanza of the tenant, as stored (redacted by default)."""

    def grade_strengths(self) -> dict[str, str]:
        """The §14 strength of each evidence grade."""

    def audit_public_key(self) -> dict[str, Any] | None:
        """The Ed25519 key checkpoints are signed with (spec/audit.md); None when none is configured."""

    def checkpoints(self, tenant: TenantConfig, limit: int) -> dict[str, Any]:
        """The tenant's signed chain checkpoints, newest first."""

    async def sign_checkpoint(self, tenant: TenantConfig) -> dict[str, Any]:
        """Sign the tenant's chain head now (raises Problem without a signing key)."""

    async def export_bundle(self, tenant: TenantConfig, query: Mapping[str, str]) -> str:
        """An evidence export bundle (JSON lines) for the query's selection (raises Problem)."""

    def raw_event(self, tenant: TenantConfig, raw_event_ref: str) -> dict[str, Any] | None:
        """A raw stanza by its reference, as stored (redacted unless configured otherwise)."""

    async def reconstruct(self, tenant: TenantConfig, body: dict[str, Any]) -> dict[str, Any]:
        """Query the account's XEP-0313 archive for a message or from a time; records archive evidence."""
