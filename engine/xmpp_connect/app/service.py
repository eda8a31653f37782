"""Wiring: config -> store, policy, providers, pipelines, actions -> the HTTP app; and ``serve(argv)``.

Each account belongs to one tenant, so every native event is recorded under the tenant that owns the
account that observed it: one evidence pipeline per tenant, reading its outbound stanzas from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette

from xmpp_connect import __version__
from xmpp_connect.api.app import create_app
from xmpp_connect.api.backend import ActionOutcome
from xmpp_connect.api.metrics_route import metrics_route
from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.app.account_status import CONNECTED, AccountStatuses
from xmpp_connect.app.api_worker import HEALTH_FILE, INTAKE_FILE, WorkerPool, write_core_health
from xmpp_connect.app.archive_service import ArchiveService
from xmpp_connect.app.audit_service import CHECKPOINT_TASK, AuditService
from xmpp_connect.app.endpoint_service import EndpointService
from xmpp_connect.app.logging_setup import setup_logging
from xmpp_connect.app.metrics import (
    EvidenceCounter,
    StateGauges,
    count_send,
    prepare_worker_metrics,
    renderer,
)
from xmpp_connect.app.openapi import openapi_document
from xmpp_connect.app.policy_reload import reload_on_sighup
from xmpp_connect.config.settings import (
    COMPONENT_PROVIDER,
    AccountConfig,
    LoggingConfig,
    ServiceConfig,
    TenantConfig,
    default_config,
    load_config,
)
from xmpp_connect.evidence import lifecycle
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import FEATURE_MARKERS, FEATURE_RECEIPTS, EvidencePipeline
from xmpp_connect.evidence.recorder import Evidence, Recorder, TenantRecorder
from xmpp_connect.facts.build import fact_for_event
from xmpp_connect.model.correlation import CorrelationContext
from xmpp_connect.model.evidence import DedupeBasis, EvidenceEvent, endpoint_ref
from xmpp_connect.model.metrics import STREAM_EVENTS
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy
from xmpp_connect.providers import base
from xmpp_connect.providers.base import XmppProvider
from xmpp_connect.providers.component import ComponentConfig, ComponentProvider
from xmpp_connect.providers.sandbox import SandboxNetwork, SandboxProvider, SandboxTiming
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.sending.action_answers import action_outcome, action_problem
from xmpp_connect.sending.actions import Actions, ActionSchemas, InvalidAction, Tenant
from xmpp_connect.sending.intake import Intake, IntakeItem
from xmpp_connect.sending.intake_dispatch import IntakeDispatcher
from xmpp_connect.sending.outbox import DeliveryPolicy, Outbox
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.sending.timers import TimerFact, TimerService
from xmpp_connect.sending.webhooks.subscriptions import Webhooks
from xmpp_connect.store.errors import IdempotencyConflict, InvalidCursor, NotFound, StoreUnavailable
from xmpp_connect.store.held_requests import SCHEDULED_SEND
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore, StoreOptions
from xmpp_connect.store.sqlite import SqliteStore
from xmpp_connect.xmpp.jids import bare

log = logging.getLogger(__name__)
CORE_SOCKET = "core.sock"
MESSAGE_PREFIX, OPERATION_PREFIX = "xmppmsg_", "xmppop_"
ACCOUNT_START = "xmpp-connect account start"
CANCELLED_ON_STOP = frozenset({"xmpp-connect retention purge", "xmpp-connect health report", ACCOUNT_START,
                               CHECKPOINT_TASK, "xmpp-connect evidence metrics"})
STORE_FAILURES = (sqlite3.Error, psycopg.Error, StoreUnavailable)
"""A store that cannot write (full disk, lost database): the request is answered 503, nothing is claimed
done that the store did not keep, and a retry with the same idempotency key carries it out."""




class HeldRequests:
    """The actions' PendingSends over the store: a held request and its ``scheduled_send`` timer live in the
    store, so they survive a restart and are shared by replicas, and one replica takes a request out."""

    def __init__(self, store: SqlStore, timer_scheduled: Callable[[], None]) -> None:
        self.store = store
        self.holds_bodies = not store.options.metadata_only
        self._timer_scheduled = timer_scheduled

    def hold(
        self,
        tenant_id: str,
        operation_id: str,
        message_id: str,
        request: Mapping[str, Any],
        send_at: datetime,
    ) -> None:
        self.store.hold_request(tenant_id, operation_id, message_id, request, send_at)
        self._timer_scheduled()

    def release(self, tenant_id: str, operation_id: str) -> dict[str, Any] | None:
        held = self.store.release_held_request(tenant_id, operation_id)
        return dict(held.request) if held else None

    def cancel(self, tenant_id: str, operation_id: str) -> bool:
        return self.store.cancel_held_request(tenant_id, operation_id)


class TimerRecorder:
    """A fired receipt/marker timeout or expiry -> timer fact -> classification -> evidence (§29).

    A timeout whose answer already came (a receipt, a marker, a reply) is dropped instead of fired, so
    evidence arriving later is not marked late."""

    def __init__(
        self,
        store: SqlStore,
        classifier: Classifier,
        pipelines: Mapping[str, EvidencePipeline],
        recorder: Recorder,
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.pipelines = pipelines
        self.recorder = recorder

    def __call__(self, fired: TimerFact) -> None:
        message = self.store.get_message(fired.tenant_id, fired.message_id)
        if message is None:
            return
        answers = self.classifier.policy.precedence.timeouts_answered_by.get(fired.timer)
        evidence = self.store.evidence_for_message(fired.tenant_id, fired.message_id) if answers else []
        if answers and any(answers.answered_by(e.assessment) for e in evidence):
            self.store.cancel_timer(fired.tenant_id, fired.message_id, fired.timer)
            return
        attempt = self.store.get_attempt(fired.tenant_id, fired.attempt_id) if fired.attempt_id else None
        attempts = [attempt] if attempt else self.store.list_attempts(fired.tenant_id, fired.message_id)
        fact = fact_for_event("timer", self._context(fired.tenant_id, attempts[0] if attempts else None),
                              timer=fired.timer)
        self.recorder.record(
            Evidence(
                tenant_id=fired.tenant_id,
                classification=self.classifier.classify(fact),
                observed_at=fired.fired_at,
                message_id=message.message_id,
                attempt_id=attempts[0].attempt_id if attempts else None,
                endpoint_jid=attempts[0].to_jid if attempts else None,
                dedupe=DedupeBasis(kind=f"timer:{fired.timer}", sender_full_jid="", stanza_id=fired.timer_id),
                message=message,
            )
        )

    def _context(self, tenant_id: str, attempt: Any) -> CorrelationContext:
        """What the timer rules read: the endpoint type, and presence and capabilities when known."""
        if attempt is None:
            return CorrelationContext()
        found = self.store.find_outbound(tenant_id, stanza_id=attempt.stanza_id) if attempt.stanza_id else []
        pipeline = self.pipelines.get(tenant_id)
        presence = pipeline.presence(attempt.account_ref) if pipeline else None
        return CorrelationContext(
            outbound=found[0] if found else None,
            recipient_available=presence.is_available(attempt.to_jid) if presence else None,
            cap_receipts=presence.supports(attempt.to_jid, FEATURE_RECEIPTS) if presence else None,
            cap_markers=presence.supports(attempt.to_jid, FEATURE_MARKERS) if presence else None,
        )


class AdapterService(AuditService, ArchiveService, EndpointService):
    """The AdapterBackend the HTTP API serves: actions, ingest, reads, all scoped to the caller's tenant."""

    def __init__(self, config: ServiceConfig, store: SqlStore, policy: Policy | None = None) -> None:
        self.config = config
        self.store = store
        self.policy = policy or load_policy(config.policy_dir)
        self.classifier = Classifier(self.policy)
        self.recorder = Recorder(store, self.policy.precedence, hide_jids=config.privacy.metadata_only)
        commands = CommandTable.from_mapping(self.policy.commands)
        self.tenant_of_account = {a: t.id for t in config.tenants for a in t.accounts}
        self.account_status = AccountStatuses(config.accounts)
        self.pipelines = {t.id: self._pipeline(t.id, commands) for t in config.tenants}
        self.providers: dict[str, XmppProvider] = {a.ref: self._provider(a) for a in config.accounts}
        self.timer_recorder = TimerRecorder(store, self.classifier, self.pipelines, self.recorder)
        self.timers = TimerService(
            store,
            self._on_timer,
            default_receipt_timeout=timedelta(seconds=config.timers.receipt_timeout_s),
            default_marker_timeout=timedelta(seconds=config.timers.marker_timeout_s),
        )
        self.outbox = Outbox(store, self.classifier, self.recorder, self.timers, {
            a.ref: DeliveryPolicy(a.delivery, a.while_disconnected, a.hold_while_disconnected_s)
            for a in config.accounts
        })
        self.outbox.emit = self.on_native_event
        self.actions = Actions(
            store,
            self.classifier,
            self.providers,
            {a.ref: a.jid for a in config.accounts},
            TemplateStore(),
            ActionSchemas(),
            timers=self.timers,
            pending=HeldRequests(store, self.timers.wake),
            capabilities=self._capability,
            recorder=self.recorder,
            outbox=self.outbox,
        )
        self._background: list[asyncio.Task[None]] = []
        self.intake_dispatcher: IntakeDispatcher | None = None
        self.webhooks = Webhooks(config, store)
        self._health_report: Path | None = None

    def _provider(self, account: AccountConfig) -> XmppProvider:
        """The account's provider: the simulated network, a XEP-0114 component or a client account."""
        if account.provider == "sandbox":
            timing = SandboxTiming(late_receipt=self.config.timers.receipt_timeout_s + 1.0)
            return SandboxProvider(account.ref, account.jid, self.on_native_event, SandboxNetwork(timing))
        if account.provider == COMPONENT_PROVIDER:
            return ComponentProvider(_component_config(account), self.on_native_event)
        return SlixmppProvider(base.AccountConfig.from_account(account), self.on_native_event)

    def _capability(self, account: str, jid: str, feature: str) -> bool | None:
        """Whether the recipient's client advertises ``feature``, as the account's pipeline learned it."""
        tenant_id = self.tenant_of_account.get(account)
        if tenant_id is None:
            return None
        return self.pipelines[tenant_id].presence(account).supports(jid, feature)

    async def _on_timer(self, fired: TimerFact) -> None:
        """A due timer: a held scheduled send goes out, any other becomes timer evidence."""
        if fired.timer == SCHEDULED_SEND:
            tenant = self.config.tenant(fired.tenant_id)
            held = self.store.held_request_for_message(fired.tenant_id, fired.message_id)
            if tenant is not None and held is not None:
                await self.actions.send_scheduled(_tenant(tenant), held.operation_id)
            return
        if fired.timer == "expiry":
            self.outbox.expired(fired.tenant_id, fired.message_id)
        self.timer_recorder(fired)

    async def _carry_out(self, item: IntakeItem) -> None:
        """One request an API worker accepted: performed here as if received here, at its acceptance time."""
        tenant = self.config.tenant(item.tenant_id)
        if tenant is None:
            log.error("intake request for a tenant no longer configured operation_id=%s", item.operation_id)
            return
        try:
            done = await self.actions.perform(
                _tenant(tenant), item.request, accepted_at=item.received_at
            )
            count_send(done.result, acceptance=False)
        except (InvalidAction, IdempotencyConflict) as exc:
            log.error("intake request refused by the core operation_id=%s (%s)", item.operation_id,
                      type(exc).__name__)
        await self.store.durable()

    async def _report_health_periodically(self, interval: float = 0.25) -> None:
        assert self._health_report is not None
        while True:
            streams = {ref: p.health().stream_status for ref, p in self.providers.items()}
            await asyncio.to_thread(write_core_health, self._health_report, streams)
            await asyncio.sleep(interval)

    async def _purge_periodically(self) -> None:
        """Retention (§28): drop raw stanza content and presence history past their configured age."""
        retention = self.config.retention
        raw, presence = (
            None if seconds is None else timedelta(seconds=seconds)
            for seconds in (retention.raw_retention_s, retention.presence_retention_s)
        )
        while True:
            if raw is not None or presence is not None:
                await asyncio.to_thread(self.store.purge, datetime.now(UTC), raw, presence)
            await asyncio.sleep(retention.purge_interval_s)

    def on_native_event(self, event: NativeEvent) -> None:
        """The one sink every provider feeds: the owning tenant's pipeline."""
        self.account_status.observe(event)
        tenant_id = self.tenant_of_account.get(event.account)
        if tenant_id is None:
            log.warning("native event for unknown account %s dropped", event.account)
            return
        if event.kind.startswith("stream_"):
            STREAM_EVENTS.labels(event.account, event.kind).inc()
        with self.store.transaction():
            if not self.outbox.keeps_for_restart(event):
                self.pipelines[tenant_id].handle(event)
            self.outbox.observe(tenant_id, event)

    def render_metrics(self) -> bytes:
        """The Prometheus exposition (``GET /metrics``), or empty when metrics are turned off."""
        if not self.config.metrics.enabled:
            return b""
        return self._metrics()

    @functools.cached_property
    def _metrics(self) -> Callable[[], bytes]:
        def intake_backlog() -> int | None:
            dispatcher = self.intake_dispatcher
            return None if dispatcher is None else dispatcher.intake.backlog(dispatcher.position)

        return renderer(
            StateGauges(
                self.store,
                lambda: {ref: p.health().stream_status for ref, p in self.providers.items()},
                intake_backlog,
                self.webhooks.backlog,
            )
        )

    def _pipeline(self, tenant_id: str, commands: CommandTable) -> EvidencePipeline:
        sink = TenantRecorder(self.recorder, self.store, tenant_id)
        return EvidencePipeline(
            self.classifier,
            commands,
            StoreOutboundIndex(self.store, tenant_id),
            sink,
            dead_letter=sink.dead_letter,
            late=sink.is_late,
            stop_suppression_enabled=self.config.stop_suppression_enabled,
            contexts=sink.tracking_context,
        )

    def take_intake(self, intake: Intake, health_report: Path) -> None:
        """Carry out what API worker processes accept into ``intake`` (``serve --api-workers``), and keep
        ``health_report`` current: the workers accept a send only while it says the stream is connected."""
        self.intake_dispatcher = IntakeDispatcher(intake, self.store, self._carry_out)
        self._health_report = health_report

    async def start(self, wait_for_accounts: bool = True) -> None:
        """Connect the providers, then fire timers (due ones from before a restart too) and purge; with an
        intake, carry out its requests and report stream health to the workers. Without
        ``wait_for_accounts`` the providers connect in the background (the HTTP port opens at once and
        ``account_status`` says how each is doing)."""
        self.check_audit_key()
        self.store.enable_group_commit(asyncio.get_running_loop())
        self.account_status.announce()
        connecting = asyncio.gather(*(p.start() for p in self.providers.values()))
        if wait_for_accounts:
            await connecting
        else:
            self._background.append(asyncio.create_task(self._settle(connecting), name=ACCOUNT_START))
            await asyncio.sleep(0)
        self._background += [
            asyncio.create_task(self.timers.run(), name="xmpp-connect timers"),
            asyncio.create_task(self._purge_periodically(), name="xmpp-connect retention purge"),
            asyncio.create_task(self.checkpoint_periodically(), name=CHECKPOINT_TASK),
            asyncio.create_task(EvidenceCounter(self.store).run(), name="xmpp-connect evidence metrics"),
        ]
        await self.webhooks.start()
        if self.intake_dispatcher is not None:
            self._background += [
                asyncio.create_task(self.intake_dispatcher.run(), name="xmpp-connect intake"),
                asyncio.create_task(self._report_health_periodically(), name="xmpp-connect health report"),
            ]

    @staticmethod
    async def _settle(connecting: asyncio.Future[Any]) -> None:
        """The background start of the providers: failures are reported through account_status."""
        with contextlib.suppress(Exception):
            await connecting

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready to serve: the store takes a write, the policy is loaded, every account is connected. Names no
        tenant, JID or server."""
        try:
            with self.store.transaction():
                pass
            await self.store.durable()
            store_ok = True
        except Exception:
            log.exception("readiness: the store refused a write transaction")
            store_ok = False
        accounts = {s.account: {"status": s.status, "reason": s.reason} for s in self.account_status.all()}
        ready = store_ok and all(a["status"] == CONNECTED for a in accounts.values())
        return ready, {
            "status": "ready" if ready else "not_ready",
            "checks": {"store": "ok" if store_ok else "failing", "policy": "ok"},
            "policy_version": self.policy.version,
            "accounts": accounts,
        }

    async def stop(self) -> None:
        self.account_status.stopping()
        await self.webhooks.stop()
        self.timers.stop()
        if self.intake_dispatcher is not None:
            self.intake_dispatcher.stop()
        for task in self._background:
            if task.get_name() in CANCELLED_ON_STOP:
                task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        self.outbox.stopping = True
        await asyncio.gather(*(p.stop() for p in self.providers.values()), return_exceptions=True)
        self.store.disable_group_commit()

    # -- AdapterBackend --------------------------------------------------------------------------

    def descriptor(self) -> dict[str, Any]:
        """The policy's descriptor, with the one version number of the package."""
        return {**_plain(self.policy.descriptor), "adapter_version": __version__}

    def channel_health(self, tenant: TenantConfig) -> list[dict[str, Any]]:
        """§26 per account, plus whether the server's TLS identity is verified (§27; off only explicitly)."""
        out = []
        for ref in tenant.accounts:
            account = self.config.account(ref)
            verified = account.verify_tls if account else True
            out.append({**asdict(self.providers[ref].health()), "tls_verification": verified,
                        "connection": self.account_status.get(ref).to_dict()})
        return out

    async def perform_action(
        self, tenant: TenantConfig, request: dict[str, Any], schema: str | None = None
    ) -> ActionOutcome:
        try:
            done = await self.actions.perform(_tenant(tenant), request, schema)
            await self.store.durable()
        except (InvalidAction, IdempotencyConflict) as exc:
            raise action_problem(exc) from None
        except STORE_FAILURES as exc:
            log.error("the store failed while performing an action (%s)", type(exc).__name__)
            raise Problem(503, "store-unavailable", "The store could not record the request; retry it with"
                          " the same idempotency key.", headers={"Retry-After": "1"}) from None
        count_send(done.result)
        return action_outcome(done.result)

    async def standalone_send(self, tenant: TenantConfig, kind: str, body: dict[str, Any]) -> ActionOutcome:
        """§31.2: ``message`` (POST /xmpp/send), ``muc`` (body plus ``room``), ``pubsub`` (body plus ``node``,
        optional ``service``: the account domain's ``pubsub.`` service by default)."""
        request: dict[str, Any] = {"action_type": "notification.send", **body}
        request.setdefault("request_id", f"standalone:{body.get('idempotency_key', '')}")
        if kind == "muc":
            room = request.pop("room")
            request["channel"] = "xmpp_muc"
            request["target_endpoint"] = {"endpoint_type": "muc_room_jid", "value": room}
        elif kind == "pubsub":
            node = request.pop("node")
            service = request.pop("service", None) or self._pubsub_service(tenant, request.get("account"))
            request["action_type"] = "feed.publish_item"
            request["channel"] = "xmpp_pubsub"
            request["target_endpoint"] = {"endpoint_type": "pubsub_node", "service": service, "value": node}
            request.setdefault("requested_at", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            return await self.perform_action(tenant, request)
        return await self.perform_action(tenant, request, schema="xmpp.send")

    def _pubsub_service(self, tenant: TenantConfig, account_ref: object) -> str:
        account = self.config.account(account_ref if isinstance(account_ref, str) else tenant.default_account)
        jid = account.jid if account else ""
        return "pubsub." + bare(jid).partition("@")[2] if "@" in jid else ""

    async def ingest_provider_event(self, tenant: TenantConfig, payload: dict[str, Any]) -> dict[str, Any]:
        """A raw stanza from an external bridge (e.g. Prosody mod_rest) for one of the tenant's accounts."""
        account = payload.get("account", tenant.default_account)
        raw = payload.get("raw")
        if isinstance(account, str) and account not in tenant.accounts:
            raise Problem(404, "not-found", "No such account for this tenant.",
                          [FieldError("account", "not an account of this tenant")])
        errors = []
        if not isinstance(account, str):
            errors.append(FieldError("account", "an account ref is required"))
        if not isinstance(raw, str) or not raw.strip():
            errors.append(FieldError("raw", "a stanza as an XML string is required"))
        if errors:
            raise Problem(422, "invalid-request", "The provider event is not valid.", errors)
        event = NativeEvent(
            kind="stanza_received",
            account=account,
            observed_at=datetime.now(UTC),
            raw=raw,
            detail={"source": "bridge", "authenticated_stream": False},
        )
        with self.store.transaction():
            observations = self.pipelines[tenant.id].handle(event)
        await self.store.durable()
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
            raise _invalid_cursor() from None
        return {"events": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor}

    def message(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        message = self.store.get_message(tenant.id, message_id)
        if message is None:
            waiting = self._waiting(tenant.id, message_id)
            return None if waiting is None else self._waiting_message(message_id, waiting)
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
                    "expected_evidence": None if a.expected_evidence is None else list(a.expected_evidence),
                    "created_at": a.created_at.isoformat(),
                    "updated_at": a.updated_at.isoformat(),
                }
                for a in attempts
            ],
        }

    @staticmethod
    def _waiting_message(message_id: str, waiting: IntakeItem) -> dict[str, Any]:
        """A send accepted by an API worker, not carried out yet: no attempt exists so far."""
        request = waiting.request
        tracking = request.get("tracking_context") or {}
        return {
            "xmpp_message_id": message_id,
            "coordination_case_id": (
                request.get("coordination_case_id") or tracking.get("coordination_case_id")
            ),
            "participant_id": request.get("participant_id") or tracking.get("participant_id"),
            "purpose": request["action_type"],
            "template_ref": None,
            "tracking_context": dict(tracking),
            "created_at": waiting.received_at.isoformat(),
            "attempts": [],
        }

    def timeline(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        events = self._message_evidence(tenant.id, message_id)
        if events is None:
            return None
        return {"xmpp_message_id": message_id, "entries": [e.to_dict() for e in lifecycle.timeline(events)]}

    def assessment(self, tenant: TenantConfig, message_id: str) -> dict[str, Any] | None:
        events = self._message_evidence(tenant.id, message_id)
        if events is None:
            return None
        participant_id = next((e.participant_id for e in events if e.participant_id), None)
        return lifecycle.assess(
            message_id, events, self.policy.precedence, self.policy.version, participant_id
        ).to_dict()

    def _message_evidence(self, tenant_id: str, message_id: str) -> Sequence[EvidenceEvent] | None:
        """The message's evidence; for a send an API worker accepted that still waits in the intake, the
        accepted evidence it will be recorded with; None for no such message."""
        if self.store.get_message(tenant_id, message_id) is not None:
            return self.store.evidence_for_message(tenant_id, message_id)
        waiting = self._waiting(tenant_id, message_id)
        if waiting is None:
            return None
        return self.actions.accepted_events(tenant_id, waiting.request, waiting.received_at)

    def _waiting(self, tenant_id: str, message_id: str) -> IntakeItem | None:
        if self.intake_dispatcher is None or not message_id.startswith(MESSAGE_PREFIX):
            return None
        operation_id = OPERATION_PREFIX + message_id.removeprefix(MESSAGE_PREFIX)
        return self.intake_dispatcher.waiting(tenant_id, operation_id)

    def endpoint_quality(self, tenant: TenantConfig, endpoint_id: str) -> dict[str, Any] | None:
        """§25 by the API's own ``ep_`` reference or by JID; None for a reference no endpoint has."""
        signals = self.policy.quality_signals
        if endpoint_id.startswith("ep_"):
            quality = self.store.endpoint_quality_by_ref(tenant.id, endpoint_id, signals)
        elif "@" in endpoint_id:
            quality = self.store.endpoint_quality(tenant.id, endpoint_id, signals)
        else:
            return None
        return None if quality is None else _plain(asdict(quality))

    def dead_letters(self, tenant: TenantConfig, cursor: str | None, limit: int) -> dict[str, Any]:
        """What could not be parsed or classified, oldest first, with the reason and the raw reference."""
        try:
            page = self.store.list_dead_letters(tenant.id, cursor=cursor, limit=limit)
        except InvalidCursor:
            raise _invalid_cursor() from None
        except NotFound:
            raise Problem(404, "not-found", "No dead letter of this tenant has the cursor's id.",
                          [FieldError("cursor", "unknown dead letter")]) from None
        letters = [
            {
                "dead_letter_id": d.dead_letter_id,
                "stage": d.stage,
                "reason": d.reason,
                "created_at": d.created_at.isoformat(),
                "raw_event_ref": d.raw_ref,
                "detail": _plain(d.detail),
            }
            for d in page.dead_letters
        ]
        return {"dead_letters": letters, "next_cursor": page.next_cursor}

    def recent_messages(self, tenant: TenantConfig, limit: int) -> list[dict[str, Any]]:
        """The tenant's latest messages with their assessment, newest first (the evidence console)."""
        out = []
        for message in self.store.list_messages(tenant.id, limit=limit):
            events = self.store.evidence_for_message(tenant.id, message.message_id)
            verdict = lifecycle.assess(message.message_id, events, self.policy.precedence,
                                       self.policy.version)
            attempts = self.store.list_attempts(tenant.id, message.message_id)
            out.append({
                "xmpp_message_id": message.message_id,
                "created_at": message.created_at.isoformat(),
                "purpose": message.purpose,
                "to": attempts[0].to_jid if attempts else None,
                "assessment": {"category": verdict.category, "subclass": verdict.subclass,
                               "confidence": verdict.confidence},
            })
        return sorted(out, key=lambda m: m["created_at"], reverse=True)

    def raw_stanza(self, tenant: TenantConfig, raw_ref: str) -> dict[str, Any] | None:
        """A preserved raw stanza as stored (redacted unless the config turned redaction off)."""
        found = self.store.get_raw(tenant.id, raw_ref)
        if found is None:
            return None
        ref, content = found
        return {"raw_event_ref": raw_ref, "reference": _plain(asdict(ref)), "content": content}

    def grade_strengths(self) -> dict[str, str]:
        """Each evidence grade's §14 strength, by grade name."""
        return {name: grade.strength for name, grade in self.policy.grades.items()}

    def presence(self, tenant: TenantConfig, jid: str) -> dict[str, Any] | None:
        states = self.store.presence(tenant.id, jid)
        if not states:
            return None
        return {"bare_jid": bare(jid), "resources": [_plain(asdict(s)) for s in states]}


def _invalid_cursor() -> Problem:
    """A feed or listing cursor this service did not issue."""
    return Problem(400, "invalid-cursor", "The cursor was not issued by this service.",
                   [FieldError("cursor", "unknown cursor")])


def _component_config(account: AccountConfig) -> ComponentConfig:
    """Connection settings of a component account; the shared secret is revealed only here."""
    assert account.secret is not None, "the config requires a component secret"
    return ComponentConfig(account.ref, account.jid, account.secret.reveal(), host=account.host,
                           port=account.port, iq_timeout=account.iq_timeout)


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


def open_store(config: ServiceConfig) -> SqlStore:
    """The configured evidence store, migrated."""
    options = StoreOptions(metadata_only=config.privacy.metadata_only, redact_raw=config.privacy.redact_raw)
    if config.storage.kind == "postgres":
        assert config.storage.dsn is not None
        return PostgresStore(config.storage.dsn.reveal(), options)
    assert config.storage.path is not None
    Path(config.storage.path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(config.storage.path, options)


class MetricsPort:
    """``GET /metrics`` on its own port (``metrics.port``), served from a thread with its own loop."""

    def __init__(self, service: AdapterService) -> None:
        import uvicorn

        config = service.config
        assert config.metrics.port is not None
        app = Starlette(routes=[metrics_route(service.render_metrics, config.metrics.token)])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=config.host, port=config.metrics.port, log_config=None, access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, name="xmpp-connect metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def build_app(service: AdapterService) -> Starlette:
    """The app; its lifespan starts and stops the providers."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start(wait_for_accounts=False)
        metrics = MetricsPort(service) if service.config.metrics.port is not None else None
        try:
            yield
        finally:
            if metrics is not None:
                metrics.stop()
            await service.stop()

    app = create_app(
        service.config,
        service,
        openapi_document(),
        lifespan=lifespan,
        webhooks=service.webhooks,
        render_metrics=service.render_metrics if service.config.metrics.port is None else None,
    )
    app.state.service = service
    return app


def run(
    config_path: Path | None,
    data_dir: Path,
    host: str | None = None,
    port: int | None = None,
    api_workers: int = 0,
    log_format: str | None = None,
) -> None:
    """Run the HTTP service: the config file's accounts and tenants, or the embedded sandbox default.

    With ``api_workers``, this process is the core (XMPP sessions, evidence store, an HTTP server on a Unix
    socket in the data directory) and that many worker processes serve the public port (api_worker.py)."""
    import uvicorn

    config = load_config(config_path) if config_path else default_config(data_dir)
    if log_format is not None:
        config = replace(config, logging=LoggingConfig(format=log_format))
    setup_logging(log_format or config.logging.format)
    if not config_path:
        log.info("embedded sandbox service; bearer token in %s", config.data_dir / "default-tenant.token")
    service = AdapterService(config, open_store(config))
    reload_on_sighup(service)
    host, port = host or config.host, port or config.port
    if not api_workers:
        uvicorn.run(build_app(service), host=host, port=port, log_config=None, access_log=False)
        return
    config.data_dir.mkdir(parents=True, exist_ok=True)
    prepare_worker_metrics(config.data_dir)
    service.take_intake(Intake(config.data_dir / INTAKE_FILE), config.data_dir / HEALTH_FILE)
    core_socket = config.data_dir / CORE_SOCKET
    core_socket.unlink(missing_ok=True)
    listener = socket.create_server((host, port))
    workers = WorkerPool(config, listener, str(core_socket), api_workers)
    workers.start()
    log.info("core on %s; %d API worker(s) on %s:%d", core_socket, api_workers, host, port)
    try:
        uvicorn.run(build_app(service), uds=str(core_socket), log_config=None, access_log=False)
    finally:
        workers.stop()
        listener.close()
