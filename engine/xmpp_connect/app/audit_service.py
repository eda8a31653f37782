"""The service's audit side (spec/audit.md): periodic and on-demand checkpoints, the public key, exports and
raw events by reference, all scoped to the calling tenant."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.evidence.exports import ExportError, ExportRequest, build_export
from xmpp_connect.model.checkpoint import key_id, load_private_key, public_key_text
from xmpp_connect.policy.model import Policy
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.timestamps import to_text

log = logging.getLogger("xmpp_connect.audit")

CHECKPOINT_TASK = "xmpp-connect chain checkpoints"
EXPORT_FLAGS = ("anonymize", "bodies")
RAW_CHOICES = ("refs", "content")


class AuditService:
    """Mixed into AdapterService: uses its config, store and policy."""

    config: ServiceConfig
    store: SqlStore
    policy: Policy

    @cached_property
    def signing_key(self) -> Ed25519PrivateKey | None:
        secret = self.config.audit.signing_key
        return None if secret is None else load_private_key(secret.reveal())

    def check_audit_key(self) -> None:
        """Load the configured signing key now: a key that is not Ed25519 stops the service at start."""
        _ = self.signing_key

    async def checkpoint_periodically(self) -> None:
        """Sign every tenant's chain head each ``audit.checkpoint_interval_s`` (not without a key)."""
        key = self.signing_key
        if key is None:
            return
        while True:
            for tenant in self.config.tenants:
                try:
                    await asyncio.to_thread(self.store.create_checkpoint, tenant.id, key, datetime.now(UTC))
                except Exception:  # the next round tries again; the log says why
                    log.exception("chain checkpoint failed tenant=%s", tenant.id)
            await asyncio.sleep(self.config.audit.checkpoint_interval_s)

    def audit_public_key(self) -> dict[str, Any] | None:
        key = self.signing_key
        if key is None:
            return None
        public = public_key_text(key)
        return {"algorithm": "Ed25519", "public_key": public, "key_id": key_id(public)}

    def checkpoints(self, tenant: TenantConfig, limit: int) -> dict[str, Any]:
        found = self.store.list_checkpoints(tenant.id, limit=limit)
        return {"checkpoints": [c.to_dict() for c in found]}

    async def sign_checkpoint(self, tenant: TenantConfig) -> dict[str, Any]:
        key = self.signing_key
        if key is None:
            raise Problem(409, "no-signing-key", "No audit signing key is configured.")
        checkpoint = await asyncio.to_thread(self.store.create_checkpoint, tenant.id, key, datetime.now(UTC))
        return checkpoint.to_dict()

    async def export_bundle(self, tenant: TenantConfig, query: Mapping[str, str]) -> str:
        request = _export_request(tenant.id, query)
        try:
            return await asyncio.to_thread(
                build_export,
                self.store,
                request,
                now=datetime.now(UTC),
                key=self.signing_key,
                policy=self.policy,
            )
        except ExportError as exc:
            raise Problem(exc.status, "export-refused", str(exc)) from None

    def raw_event(self, tenant: TenantConfig, raw_event_ref: str) -> dict[str, Any] | None:
        """The raw stanza as stored (redacted unless redaction was turned off); content null once purged."""
        found = self.store.get_raw(tenant.id, raw_event_ref)
        if found is None:
            return None
        ref, content = found
        return {
            "raw_event_ref": ref.raw_event_id,
            "source": ref.source,
            "received_at": to_text(ref.received_at),
            "redacted": ref.redacted,
            "purged_at": to_text(ref.purged_at) if ref.purged_at else None,
            "content": content,
            "content_sha256": hashlib.sha256(content.encode("utf-8")).hexdigest() if content else None,
        }


def _export_request(tenant_id: str, query: Mapping[str, str]) -> ExportRequest:
    errors: list[FieldError] = []
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        raw = query.get(name)
        times[name] = None
        if raw is not None:
            try:
                times[name] = datetime.fromisoformat(raw)
            except ValueError:
                errors.append(FieldError(name, "ISO 8601 date-time required"))
                continue
            if times[name].tzinfo is None:  # type: ignore[union-attr]
                errors.append(FieldError(name, "a time zone offset is required"))
    flags: dict[str, bool] = {}
    for name in EXPORT_FLAGS:
        raw = query.get(name, "false" if name == "anonymize" else "true")
        if raw not in ("true", "false"):
            errors.append(FieldError(name, "true or false"))
        flags[name] = raw == "true"
    raw_mode = query.get("raw", "refs")
    if raw_mode not in RAW_CHOICES:
        errors.append(FieldError("raw", "refs or content"))
    if errors:
        raise Problem(422, "invalid-parameter", "The export selection is not valid.", errors)
    return ExportRequest(
        tenant_id=tenant_id,
        case_id=query.get("case_id"),
        participant_id=query.get("participant_id"),
        message_id=query.get("message_id"),
        since=times["since"],
        until=times["until"],
        anonymize=flags["anonymize"],
        bodies=flags["bodies"],
        raw_content=raw_mode == "content",
    )
