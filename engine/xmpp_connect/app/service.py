"""Wiring: config -> store, policy, providers, pipelines, actions -> the HTTP app; and ``serve(argv)``.

Each account belongs to one tenant, so every native event is recorded under the tenant that owns the
account that observed it: one evidence pipeline per tenant, reading its outbound stanzas from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from xmpp_connect import __version__
from xmpp_connect.app.account_status import CONNECTED, AccountStatuses
from xmpp_connect.app.action_service import ActionService
from xmpp_connect.app.api_worker import write_core_health
from xmpp_connect.app.archive_service import ArchiveService
from xmpp_connect.app.audit_service import CHECKPOINT_TASK, AuditService
from xmpp_connect.app.endpoint_service import EndpointService
from xmpp_connect.app.metrics import (
    EvidenceCounter,
    StateGauges,
    count_send,
    renderer,
)
from xmpp_connect.app.read_model import ReadModel, plain
from xmpp_connect.app.replication import Replication
from xmpp_connect.app.scheduled_sends import ScheduledSends
from xmpp_connect.app.timer_recorder import TimerRecorder
from xmpp_connect.config.settings import (
    COMPONENT_PROVIDER,
    AccountConfig,
    ServiceConfig,
    TenantConfig,
)
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.evidence.recorder import Recorder, TenantRecorder
from xmpp_connect.model.metrics import STREAM_EVENTS
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy
from xmpp_connect.providers.base import XmppProvider
from xmpp_connect.providers.component import ComponentProvider
from xmpp_connect.providers.sandbox import SandboxProvider
from xmpp_connect.providers.sandbox_network import SandboxNetwork, SandboxTiming
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.sending.actions import Actions
from xmpp_connect.sending.intake import Intake, IntakeItem
from xmpp_connect.sending.intake_dispatch import IntakeDispatcher
from xmpp_connect.sending.outbox import DeliveryPolicy, Outbox
from xmpp_connect.sending.schemas import ActionSchemas, InvalidAction
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.sending.timers import TimerFact, TimerService
from xmpp_connect.sending.webhooks.subscriptions import Webhooks
from xmpp_connect.store.errors import IdempotencyConflict, LeaseLost
from xmpp_connect.store.held_requests import SCHEDULED_SEND
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore

log = logging.getLogger(__name__)
ACCOUNT_START = "xmpp-connect account start"
CANCELLED_ON_STOP = frozenset({"xmpp-connect retention purge", "xmpp-connect health report", ACCOUNT_START,
                               CHECKPOINT_TASK, "xmpp-connect evidence metrics"})


class AdapterService(ActionService, ReadModel, AuditService, ArchiveService, EndpointService):
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
            pending=ScheduledSends(store, self.timers.wake),
            capabilities=self._capability,
            recorder=self.recorder,
            outbox=self.outbox,
        )
        self.webhooks = Webhooks(config, store)
        self.replication = self._replication(store)
        self._background: list[asyncio.Task[None]] = []
        self.intake_dispatcher: IntakeDispatcher | None = None
        self._health_report: Path | None = None

    def _provider(self, account: AccountConfig) -> XmppProvider:
        """The account's provider: the simulated network, a XEP-0114 component or a client account."""
        if account.provider == "sandbox":
            timing = SandboxTiming(late_receipt=self.config.timers.receipt_timeout_s + 1.0)
            return SandboxProvider(account.ref, account.jid, self.on_native_event, SandboxNetwork(timing))
        if account.provider == COMPONENT_PROVIDER:
            return ComponentProvider(account, self.on_native_event)
        return SlixmppProvider(account, self.on_native_event)

    def _replication(self, store: SqlStore) -> Replication | None:
        """On PostgreSQL the accounts are shared out between the replicas (spec/replicas.md); on SQLite this
        process owns every account."""
        if self.config.storage.kind != "postgres" or not isinstance(store, PostgresStore):
            return None
        replica = self.config.replica
        accounts = {a.ref: a for a in self.config.accounts}
        return Replication(store, replica.id, replica.weight, replica.lease_ttl_s, list(accounts),
                           self.providers, lambda ref: self._provider(accounts[ref]), self.outbox,
                           self.webhooks)

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
                await self.actions.send_scheduled(tenant, held.operation_id)
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
                tenant, item.request, accepted_at=item.received_at, operation_id=item.operation_id,
                digest=item.payload_hash,
            )
            count_send(done.result, acceptance=False)
        except (InvalidAction, IdempotencyConflict) as exc:
            log.error("intake request refused by the core operation_id=%s (%s)", item.operation_id,
                      type(exc).__name__)
        await self.store.durable()

    async def _report_health_periodically(self, interval: float = 0.25, refresh: float = 1.0) -> None:
        """The streams' status for the workers, looked at every ``interval`` s: written when it changed, and
        at least every ``refresh`` s all the same (a worker takes a report older than ``HEALTH_STALE_S`` for
        a core that is gone)."""
        assert self._health_report is not None
        loop = asyncio.get_running_loop()
        written: dict[str, str] | None = None
        written_at = 0.0
        while True:
            streams = {ref: p.stream_status() for ref, p in self.providers.items()}
            now = loop.time()
            if streams != written or now - written_at >= refresh:
                await asyncio.to_thread(write_core_health, self._health_report, streams)
                written, written_at = streams, now
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
        try:
            with self.store.transaction():
                if self.replication is not None:
                    self.replication.fence(event.account)
                if not self.outbox.keeps_for_restart(event):
                    self.pipelines[tenant_id].handle(event)
                self.outbox.observe(tenant_id, event)
        except LeaseLost:
            # Another replica owns the account now: nothing this session reports is recorded as owner.
            log.warning("native event of an account no longer owned here dropped account=%s kind=%s",
                        event.account, event.kind)

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
                lambda: {ref: p.stream_status() for ref, p in self.providers.items()},
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
        if self.replication is not None:
            await self.replication.start()
        starting = () if self.replication is not None else self.providers.values()
        connecting = asyncio.gather(*(p.start() for p in starting))
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
        """Ready to serve: the store takes a write, the policy is loaded, every account this replica owns (all
        of them without replicas) is connected. Names no tenant, JID or server."""
        try:
            with self.store.transaction():
                pass
            await self.store.durable()
            store_ok = True
        except Exception:
            log.exception("readiness: the store refused a write transaction")
            store_ok = False
        owned = None if self.replication is None else set(self.replication.ownership.owned())
        accounts = {s.account: {"status": s.status, "reason": s.reason} for s in self.account_status.all()
                    if owned is None or s.account in owned}
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
        if self.replication is not None:
            await self.replication.stop()
        else:
            await asyncio.gather(*(p.stop() for p in self.providers.values()), return_exceptions=True)
        self.store.disable_group_commit()

    # -- AdapterBackend --------------------------------------------------------------------------

    def descriptor(self) -> dict[str, Any]:
        """The policy's descriptor, with the one version number of the package."""
        return {**plain(self.policy.descriptor), "adapter_version": __version__}

    def channel_health(self, tenant: TenantConfig) -> list[dict[str, Any]]:
        """§26 per account, plus whether the server's TLS identity is verified (§27; off only explicitly)."""
        out = []
        for ref in tenant.accounts:
            account = self.config.account(ref)
            verified = account.verify_tls if account else True
            out.append({**asdict(self.providers[ref].health()), "tls_verification": verified,
                        "connection": self.account_status.get(ref).to_dict()})
        return out
