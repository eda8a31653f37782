"""The §4.2 actions: validate (JSON Schema), pre-send checks (§12.1), idempotency, records, hand to provider.

A pre-send refusal is not an error: it is classified like any other fact (``kind: request_rejected``) and
answered with ``accepted: false`` and the assessment. Malformed requests raise ``InvalidAction``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.recorder import Recorder
from xmpp_connect.providers.base import XmppProvider
from xmpp_connect.sending import ids
from xmpp_connect.sending.admission import Admission
from xmpp_connect.sending.bodies import render_body
from xmpp_connect.sending.dispatch import Dispatcher, HandOver
from xmpp_connect.sending.outbox import Outbox
from xmpp_connect.sending.own_evidence import OwnEvidence, OwnOutcomes, new_message, once
from xmpp_connect.sending.ports import ActionStore, Capabilities, PendingSends
from xmpp_connect.sending.results import ActionDone, assessment_of, result_base
from xmpp_connect.sending.scheduled import SCHEDULED_STATE, Schedules
from xmpp_connect.sending.schemas import SYNC_ACTIONS, ActionSchemas, InvalidAction, request_digest
from xmpp_connect.sending.sync_actions import sync_action
from xmpp_connect.sending.targets import endpoint_type, message_type, target_jid, timestamp
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.sending.timers import SendTimers
from xmpp_connect.store.records import IdempotentOperation, XmppAttempt

UNCLAIMED_FIRST = frozenset({"notification.cancel", "notification.schedule"})
"""Actions that claim their key before anything else (a cancel; a schedule holds its request apart)."""


class _ClaimedBefore(Exception):
    """The key of a send was claimed before its records were written: they are undone."""


class Actions:
    """Carries out action requests for one service."""

    def __init__(
        self,
        store: ActionStore,
        classifier: Classifier,
        providers: Mapping[str, XmppProvider],
        account_jids: Mapping[str, str],
        templates: TemplateStore,
        schemas: ActionSchemas | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timers: SendTimers | None = None,
        pending: PendingSends | None = None,
        capabilities: Capabilities | None = None,
        recorder: Recorder | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.account_jids = account_jids
        self.templates = templates
        self.schemas = schemas or ActionSchemas()
        self.clock = clock
        self.pending = pending
        self.outbox = outbox
        self.outcomes = OwnOutcomes(classifier, recorder or Recorder(store, classifier.policy.precedence))
        self.admission = Admission(self._stream_status, store.suppression, capabilities)
        self.dispatcher = Dispatcher(store, providers, account_jids, clock, timers, outbox)
        self.schedules = Schedules(store, pending, self.outcomes, self.admission, self.dispatcher, templates,
                                   clock)

    def validate(self, request: Mapping[str, Any], schema: str | None = None) -> str:
        """The action type of a well-formed request, else InvalidAction naming the failing fields."""
        return self.schemas.validate(request, schema)

    async def perform(
        self,
        tenant: TenantConfig,
        request: Mapping[str, Any],
        schema: str | None = None,
        accepted_at: datetime | None = None,
        operation_id: str | None = None,
        digest: str | None = None,
    ) -> ActionDone:
        """Validate, then run the action once per idempotency key (a repeat returns the original result).

        ``accepted_at``, ``operation_id``: an API worker already accepted this send then, and answered with
        that id (it is carried out from the intake), so its accepted evidence is recorded even if the send
        is refused now, under the ids the worker answered. ``digest``: the request's ``request_digest`` as
        that worker computed it from the same text (not computed again)."""
        action_type = self.validate(request, schema)
        received_at = accepted_at or self.clock()
        digest = digest or request_digest(request)
        if action_type == "notification.send_reminder":
            request = self._with_original(tenant, request)
        if action_type == "notification.schedule" and self.pending is None:
            raise InvalidAction([("action_type", "scheduling is not configured in this service")])
        scheduled_body = action_type == "notification.schedule" and "content" in request
        if scheduled_body and self.pending is not None and not self.pending.holds_bodies:
            reason = "metadata-only mode holds no message bodies: schedule with template_ref and variables"
            raise InvalidAction([("content", reason)])
        if action_type not in SYNC_ACTIONS and action_type not in UNCLAIMED_FIRST:
            done = await self._send_first(tenant, action_type, request, digest, received_at, operation_id,
                                          accepted_at is not None)
            if done is not None:
                return done
        operation = self.store.claim_operation(tenant.id, request["idempotency_key"], digest, operation_id)
        if operation.replayed and operation.result is not None:
            return ActionDone({**self._replayed(operation), "idempotent_replay": True})
        dispatch: Callable[[], None] | None = None
        if action_type in SYNC_ACTIONS:
            result = sync_action(self.store, tenant, action_type, request, operation, received_at)
        elif action_type == "notification.cancel":
            with self.store.transaction():
                result = self.schedules.cancel(tenant, request, operation, received_at)
        else:
            room = await self.dispatcher.join_room_of(tenant, request, operation)
            expected = tuple(sorted(room.expected_evidence)) if room is not None and room.joined else None
            with self.store.transaction():
                result, dispatch = self._send(
                    tenant, action_type, request, operation, received_at, expected, accepted_at is not None
                )
            # The records are durable before the stanza goes out: a send is never on the wire unrecorded.
            await self._durable(dispatch)
        with self.store.transaction():
            if dispatch is not None:
                dispatch()
            self.store.complete_operation(tenant.id, request["idempotency_key"], result)
        return ActionDone({**result, "idempotent_replay": False})

    async def _send_first(
        self,
        tenant: TenantConfig,
        action_type: str,
        request: Mapping[str, Any],
        digest: str,
        received_at: datetime,
        operation_id: str | None,
        accepted_elsewhere: bool,
    ) -> ActionDone | None:
        """A send as the first use of its key: the records, then the claim with its result in the same
        transaction (one statement instead of a claim and a completion). None, with nothing stored, when the
        key was claimed before: the caller claims it as usual and replays (or finishes) what it finds.

        The result is durable (and a repeat replays it) before the stanza is handed over: the hand-over is
        reserved first, so a repeat in this process finds the send in flight and does not write it too."""
        op = self.store.new_operation(tenant.id, request["idempotency_key"], digest, operation_id)
        room = await self.dispatcher.join_room_of(tenant, request, op)
        expected = tuple(sorted(room.expected_evidence)) if room is not None and room.joined else None
        try:
            with self.store.transaction():
                result, dispatch = self._send(
                    tenant, action_type, request, op, received_at, expected, accepted_elsewhere
                )
                if not self.store.claim_completed_operation(op, result):
                    raise _ClaimedBefore
        except _ClaimedBefore:
            return None
        except Exception:
            # E.g. the same ids' records written already (the same operation id carried out again): claimed
            # before, so the caller's claim says what to do; else this send failed.
            if self.store.operation_known(tenant.id, op.idempotency_key):
                return None
            raise
        await self._durable(dispatch)
        if dispatch is not None:
            with self.store.transaction():
                dispatch()
        return ActionDone({**result, "idempotent_replay": False})

    async def _durable(self, dispatch: Callable[[], None] | None) -> None:
        """Wait until the send's records are committed, its hand-over reserved meanwhile (released if they
        are not)."""
        if not isinstance(dispatch, HandOver):
            await self.store.durable()
            return
        dispatch.reserve()
        try:
            await self.store.durable()
        except BaseException:
            dispatch.release()
            raise

    def _send(
        self,
        tenant: TenantConfig,
        action_type: str,
        request: Mapping[str, Any],
        op: IdempotentOperation,
        received_at: datetime,
        expected_evidence: tuple[str, ...] | None = None,
        accepted_elsewhere: bool = False,
    ) -> tuple[dict[str, Any], Callable[[], None] | None]:
        """Create the records and the initial evidence; the returned call hands the stanza to the provider
        (None when nothing is to be sent now)."""
        message = new_message(tenant.id, action_type, request, op, received_at)
        message_id, attempt_id = message.message_id, ids.attempt_id(op.operation_id)
        target = request.get("target_endpoint") or {}
        to_jid = target_jid(target)
        account = request.get("account") or tenant.default_account
        body, render_error = render_body(self.templates, action_type, request)
        if not op.replayed:
            self.store.create_message(message)
            self.store.timers_start_here(tenant.id, message_id)
        elif self.store.get_message(tenant.id, message_id) is None:
            self.store.create_message(message)
        scheduled = action_type == "notification.schedule"
        outboxed = self.outbox is not None and not scheduled
        status = self.dispatcher.stream_status(account)
        holds = outboxed and self.dispatcher.holds(account, status)
        # A send for an account another replica owns is that replica's to write: this one's stream is moot.
        elsewhere = outboxed and self.outbox is not None and not self.outbox.may_send(account)
        reason = self.admission.refusal(
            tenant, account, to_jid, render_error, request.get("options") or {},
            check_stream=not scheduled and not holds and not elsewhere, stream_status=lambda _: status,
        )
        base = result_base(action_type, request, op.operation_id, received_at)
        own = partial(OwnEvidence, tenant.id, message, attempt_id, to_jid or None, received_at)
        accepted = once("adapter_accepted", op.stanza_id)
        if reason is not None:
            if accepted_elsewhere:
                self.outcomes.record({"kind": "adapter_accepted"}, own(accepted))
            refused = {"kind": "request_rejected", "reject_reason": reason}
            refusal = own(once("request_rejected", op.stanza_id))
            classification, events = self.outcomes.record(refused, refusal)
            return {
                **base,
                "accepted": False,
                "action_state": "rejected",
                "reason": reason,
                "assessment": assessment_of(classification),
                "initial_events": events,
            }, None
        options = request.get("options") or {}
        requested_type = options.get("message_type", "chat")
        from_jid = self.account_jids[account]
        attempt = None
        if not op.replayed or self.store.get_attempt(tenant.id, attempt_id) is None:
            attempt = XmppAttempt(
                tenant_id=tenant.id,
                attempt_id=attempt_id,
                message_id=message_id,
                account_ref=account,
                from_jid=from_jid,
                to_jid=to_jid,
                to_endpoint_type=endpoint_type(target, to_jid),
                created_at=received_at,
                updated_at=received_at,
                message_type=message_type(target, requested_type),
                state=SCHEDULED_STATE if scheduled else "accepted_by_adapter",
                stanza_id=op.stanza_id,
                origin_id=op.stanza_id,
                expected_evidence=expected_evidence,
            )
        acceptance = {"kind": "adapter_scheduled"} if scheduled else {"kind": "adapter_accepted"}
        classification, events = self.outcomes.record(
            acceptance, own(accepted, endpoint_type(target, to_jid)), attempt
        )
        dispatch: Callable[[], None] | None = None
        if scheduled:
            assert self.pending is not None
            self.pending.hold(tenant.id, op.operation_id, message_id, request, timestamp(request["send_at"]))
        elif outboxed:
            dispatch = self.dispatcher.through_outbox(
                tenant.id, account, request, body or "", op.stanza_id, message_id, attempt_id, received_at,
                status,
            )
        else:
            dispatch = partial(
                self.dispatcher.dispatch,
                tenant.id, account, request, body or "", op.stanza_id, message_id, attempt_id,
            )
        return {
            **base,
            "accepted": True,
            "action_state": "scheduled" if scheduled else "accepted",
            "reason": None,
            "assessment": assessment_of(classification),
            "initial_events": events,
        }, dispatch

    def _replayed(self, operation: IdempotentOperation) -> dict[str, Any]:
        """A replay's stored result, with where the send really is (``outbox_state``); a send still only
        accepted that nobody here is writing is carried out now."""
        result = dict(operation.result or {})
        if self.outbox is None or not result.get("accepted"):
            return result
        account = self._account_of(operation)
        stream_up = account is not None and self.providers[account].health().stream_status == "connected"
        entry = self.outbox.replayed(operation.tenant_id, operation.stanza_id, stream_up)
        if entry is not None:
            result["outbox_state"] = entry.state
        return result

    def _account_of(self, operation: IdempotentOperation) -> str | None:
        attempt = self.store.get_attempt(operation.tenant_id, ids.attempt_id(operation.operation_id))
        return attempt.account_ref if attempt is not None and attempt.account_ref in self.providers else None

    def _with_original(self, tenant: TenantConfig, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """A reminder inherits the original's recipient (when it names none), case and participant."""
        original_id = request["original_operation_id"]
        message = self.store.get_message(tenant.id, ids.message_id(original_id))
        attempt = self.store.get_attempt(tenant.id, ids.attempt_id(original_id))
        if message is None or attempt is None:
            raise InvalidAction(
                [("original_operation_id", "no message with this operation id for this tenant")], status=404
            )
        inherited: dict[str, Any] = {
            "target_endpoint": {"endpoint_type": attempt.to_endpoint_type, "value": attempt.to_jid},
            "coordination_case_id": message.case_id,
            "participant_id": message.participant_id,
            "account": attempt.account_ref,
        }
        return {**{k: v for k, v in inherited.items() if v is not None}, **request}

    async def send_scheduled(self, tenant: TenantConfig, operation_id: str) -> None:
        """Send a held notification.schedule request now that it is due."""
        await self.schedules.send_due(tenant, operation_id)

    def _stream_status(self, account: str) -> str | None:
        return self.dispatcher.stream_status(account)
