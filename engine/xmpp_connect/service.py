"""Wiring: config -> store, policy, providers, pipelines, actions -> the HTTP app; and ``serve(argv)``.

Each account belongs to one tenant, so every native event is recorded under the tenant that owns the
account that observed it: one evidence pipeline per tenant, reading its outbound stanzas from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from starlette.applications import Starlette

from xmpp_connect import lifecycle
from xmpp_connect.actions import Actions, ActionSchemas, InvalidAction, Tenant, spec_dir
from xmpp_connect.api.app import create_app
from xmpp_connect.api.backend import ActionOutcome
from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.classify import Classifier
from xmpp_connect.commands import CommandTable
from xmpp_connect.config import AccountConfig, ServiceConfig, TenantConfig, default_config, load_config
from xmpp_connect.evidence import DedupeBasis, EvidenceContext, build_evidence_events, endpoint_ref
from xmpp_connect.jids import bare
from xmpp_connect.native import NativeEvent
from xmpp_connect.pipeline import EvidencePipeline, Observation
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy
from xmpp_connect.providers import base
from xmpp_connect.providers.base import XmppProvider
from xmpp_connect.providers.sandbox import SandboxNetwork, SandboxProvider, SandboxTiming
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.store.errors import IdempotencyConflict, InvalidCursor
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore, StoreOptions
from xmpp_connect.store.sqlite import SqliteStore
from xmpp_connect.templates import TemplateStore

log = logging.getLogger(__name__)


class ObservationRecorder:
    """Observation -> evidence events in the tenant's log (the mapping -> store step)."""

    def __init__(self, store: SqlStore, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id

    def __call__(self, observation: Observation) -> None:
        out = observation.outbound
        event = observation.event
        message = self.store.get_message(self.tenant_id, out.message_id) if out and out.message_id else None
        tracking = dict(message.tracking_context) if message else {}
        sender = observation.sender or ""
        context = EvidenceContext(
            tenant_id=self.tenant_id,
            observed_at=event.observed_at,
            message_id=out.message_id if out else None,
            attempt_id=out.attempt_id if out else None,
            case_id=message.case_id if message else None,
            participant_id=message.participant_id if message else None,
            correlation_id=tracking.get("correlation_id"),
            endpoint_ref=endpoint_ref(self.tenant_id, out.to_jid if out else sender)
            if (out or sender)
            else None,
            dedupe=DedupeBasis(
                kind=f"{observation.fact['kind']}:{observation.fact.get('marker', '')}",
                sender_full_jid=sender,
                stanza_id=(out.stanza_id if out else "") + "|" + (event.stanza_id or _raw_id(event)),
            ),
        )
        self.store.append_evidence(build_evidence_events(observation.classification, context))


def _raw_id(event: NativeEvent) -> str:
    """Stable across restarts, so a stanza delivered twice is recorded once."""
    return hashlib.sha256(event.raw.encode()).hexdigest()[:32] if event.raw else event.kind


class AdapterService:
    """The AdapterBackend the HTTP API serves: actions, ingest, reads, all scoped to the caller's tenant."""

    def __init__(self, config: ServiceConfig, store: SqlStore, policy: Policy | None = None) -> None:
        self.config = config
        self.store = store
        self.policy = policy or load_policy(config.policy_dir)
        self.classifier = Classifier(self.policy)
        commands = CommandTable.from_mapping(self.policy.commands)
        self.tenant_of_account = {a: t.id for t in config.tenants for a in t.accounts}
        self.pipelines = {
            t.id: EvidencePipeline(
                self.classifier,
                commands,
                StoreOutboundIndex(store, t.id),
                ObservationRecorder(store, t.id),
                receipt_timeout=timedelta(seconds=config.timers.receipt_timeout_s),
                stop_suppression_enabled=config.stop_suppression_enabled,
            )
            for t in config.tenants
        }
        self.providers: dict[str, XmppProvider] = {a.ref: self._provider(a) for a in config.accounts}
        self.actions = Actions(
            store,
            self.classifier,
            self.providers,
            {a.ref: a.jid for a in config.accounts},
            TemplateStore(),
            ActionSchemas(),
        )

    def _provider(self, account: AccountConfig) -> XmppProvider:
        if account.provider == "sandbox":
            timing = SandboxTiming(late_receipt=self.config.timers.receipt_timeout_s + 1.0)
            return SandboxProvider(account.ref, account.jid, self.on_native_event, SandboxNetwork(timing))
        assert account.password is not None
        return SlixmppProvider(
            base.AccountConfig(
                account=account.ref,
                jid=account.jid,
                password=account.password.reveal(),
                host=account.host,
                port=account.port,
                ca_file=Path(account.ca_certs) if account.ca_certs else None,
                require_tls=account.require_tls,
            ),
            self.on_native_event,
        )

    def on_native_event(self, event: NativeEvent) -> None:
        """The one sink every provider feeds: the owning tenant's pipeline."""
        tenant_id = self.tenant_of_account.get(event.account)
        if tenant_id is None:
            log.warning("native event for unknown account %s dropped", event.account)
            return
        self.pipelines[tenant_id].handle(event)

    async def start(self) -> None:
        await asyncio.gather(*(p.start() for p in self.providers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.providers.values()), return_exceptions=True)

    # -- AdapterBackend --------------------------------------------------------------------------

    def descriptor(self) -> dict[str, Any]:
        return _plain(self.policy.descriptor)

    def channel_health(self, tenant: TenantConfig) -> list[dict[str, Any]]:
        return [asdict(self.providers[ref].health()) for ref in tenant.accounts]

    async def perform_action(
        self, tenant: TenantConfig, request: dict[str, Any], schema: str | None = None
    ) -> ActionOutcome:
        try:
            done = await self.actions.perform(_tenant(tenant), request, schema)
        except InvalidAction as exc:
            raise Problem(
                exc.status,
                "invalid-request",
                "The action request is not valid.",
                [FieldError(f, m) for f, m in exc.errors],
            ) from None
        except IdempotencyConflict:
            raise Problem(
                409,
                "idempotency-conflict",
                "This idempotency_key was used with a different request.",
                [FieldError("idempotency_key", "reused with a different payload")],
            ) from None
        return ActionOutcome(202 if done.result["action_state"] == "accepted" else 200, done.result)

    async def standalone_send(self, tenant: TenantConfig, kind: str, body: dict[str, Any]) -> ActionOutcome:
        if kind != "message":
            raise Problem(501, "not-implemented", f"{kind} sending is not available yet.")
        request = {"action_type": "notification.send", **body}
        request.setdefault("request_id", f"standalone:{body.get('idempotency_key', '')}")
        return await self.perform_action(tenant, request, schema="xmpp.send")

    async def ingest_provider_event(self, tenant: TenantConfig, payload: dict[str, Any]) -> dict[str, Any]:
        """A raw stanza from an external bridge (e.g. Prosody mod_rest) for one of the tenant's accounts."""
        account = payload.get("account", tenant.default_account)
        raw = payload.get("raw")
        errors = []
        if not isinstance(account, str) or account not in tenant.accounts:
            errors.append(FieldError("account", "not an account of this tenant"))
        if not isinstance(raw, str) or not raw.strip():
            errors.append(FieldError("raw", "a stanza as an XML string is required"))
        if errors:
            raise Problem(422, "invalid-request", "The provider event is not valid.", errors)
        event = NativeEvent(
            kind="stanza_received",
            account=account,
            observed_at=datetime.now(UTC),
            raw=raw,
            detail={"source": "bridge"},
        )
        observations = self.pipelines[tenant.id].handle(event)
        return {
            "accepted": True,
            "observations": [
                {
                    "scenario": o.classification.scenario,
                    "event_types": list(o.classification.events),
                    "assessment": asdict(o.classification.assessment),
                    "xmpp_message_id": o.outbound.message_id if o.outbound else None,
                }
                for o in observations
            ],
        }

    def events(self, tenant: TenantConfig, cursor: str | None, limit: int) -> dict[str, Any]:
        try:
            page = self.store.events_page(tenant.id, cursor=cursor, limit=limit)
        except InvalidCursor:
            raise Problem(
                400,
                "invalid-cursor",
                "The cursor was not issued by this service.",
                [FieldError("cursor", "unknown cursor")],
            ) from None
        return {"events": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor}

    def message(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        message = self.store.get_message(tenant.id, message_id)
        if message is None:
            return None
        attempts = self.store.list_attempts(tenant.id, message_id)
        return {
            "xmpp_message_id": message.message_id,
            "coordination_case_id": message.case_id,
            "participant_id": message.participant_id,
            "purpose": message.purpose,
            "template_ref": message.template_ref,
            "tracking_context": dict(message.tracking_context),
            "created_at": message.created_at.isoformat(),
            "attempts": [
                {
                    "xmpp_attempt_id": a.attempt_id,
                    "xmpp_account_ref": a.account_ref,
                    "to_endpoint": {
                        "endpoint_type": a.to_endpoint_type,
                        "endpoint_ref": endpoint_ref(tenant.id, a.to_jid),
                    },
                    "message_type": a.message_type,
                    "stanza_id": a.stanza_id,
                    "state": a.state,
                    "created_at": a.created_at.isoformat(),
                    "updated_at": a.updated_at.isoformat(),
                }
                for a in attempts
            ],
        }

    def timeline(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        if self.store.get_message(tenant.id, message_id) is None:
            return None
        entries = lifecycle.timeline(self.store.evidence_for_message(tenant.id, message_id))
        return {"xmpp_message_id": message_id, "entries": [e.to_dict() for e in entries]}

    def assessment(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        if self.store.get_message(tenant.id, message_id) is None:
            return None
        events = self.store.evidence_for_message(tenant.id, message_id)
        return lifecycle.assess(message_id, events, self.policy.precedence, self.policy.version).to_dict()

    def endpoint_quality(self, tenant: TenantConfig, endpoint_id: str) -> dict[str, Any] | None:
        if "@" not in endpoint_id and not endpoint_id.startswith("ep_"):
            return None
        quality = self.store.endpoint_quality(tenant.id, endpoint_id)
        return _plain(asdict(quality))

    def presence(self, tenant: TenantConfig, jid: str) -> dict[str, Any] | None:
        states = self.store.presence(tenant.id, jid)
        if not states:
            return None
        return {"bare_jid": bare(jid), "resources": [_plain(asdict(s)) for s in states]}


def _tenant(tenant: TenantConfig) -> Tenant:
    return Tenant(id=tenant.id, accounts=tenant.accounts, default_account=tenant.default_account)


def _plain(value: Any) -> Any:
    """Mappings, sequences and datetimes as JSON-ready values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k != "tenant_id"}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def openapi_document() -> dict[str, Any]:
    """spec/openapi.yaml as a dict (served at /openapi.json)."""
    path = spec_dir() / "openapi.yaml"
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def open_store(config: ServiceConfig) -> SqlStore:
    """The configured evidence store, migrated."""
    if config.storage.kind == "postgres":
        assert config.storage.dsn is not None
        return PostgresStore(config.storage.dsn.reveal(), StoreOptions())
    assert config.storage.path is not None
    Path(config.storage.path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(config.storage.path)


def build_app(service: AdapterService) -> Starlette:
    """The app; its lifespan starts and stops the providers."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = create_app(service.config, service, openapi_document(), lifespan=lifespan)
    app.state.service = service
    return app


def run(config_path: Path | None, data_dir: Path, host: str | None = None, port: int | None = None) -> None:
    """Run the HTTP service: the config file's accounts and tenants, or the embedded sandbox default."""
    import uvicorn

    config = load_config(config_path) if config_path else default_config(data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not config_path:
        log.info("embedded sandbox service; bearer token in %s", config.data_dir / "default-tenant.token")
    service = AdapterService(config, open_store(config))
    uvicorn.run(build_app(service), host=host or config.host, port=port or config.port, log_level="info",
                access_log=False)
