"""notification.schedule after acceptance: a held request is cancelled, or sent when it is due."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.sending.admission import Admission
from xmpp_connect.sending.bodies import render_body
from xmpp_connect.sending.dispatch import Dispatcher
from xmpp_connect.sending.ids import attempt_id, message_id
from xmpp_connect.sending.own_evidence import OwnEvidence, OwnOutcomes, once
from xmpp_connect.sending.ports import ActionStore, PendingSends
from xmpp_connect.sending.results import ADAPTER_ID, assessment_of
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.store.records import IdempotentOperation

SCHEDULED_STATE = "deferred"
"""The §10 attempt state of a scheduled message held locally; only in this state can it be cancelled."""


class Schedules:
    """Cancels held scheduled sends and sends them when due."""

    def __init__(
        self,
        store: ActionStore,
        pending: PendingSends | None,
        outcomes: OwnOutcomes,
        admission: Admission,
        dispatcher: Dispatcher,
        templates: TemplateStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.pending = pending
        self.outcomes = outcomes
        self.admission = admission
        self.dispatcher = dispatcher
        self.templates = templates
        self.clock = clock

    def cancel(
        self, tenant: TenantConfig, request: Mapping[str, Any], op: IdempotentOperation, received_at: datetime
    ) -> dict[str, Any]:
        """Cancel a scheduled message still held locally; anything else is refused, with the reason."""
        attempt = self.store.get_attempt(tenant.id, attempt_id(request["operation_id"]))
        base = {
            "request_id": request["request_id"],
            "adapter_id": ADAPTER_ID,
            "action_type": "notification.cancel",
            "adapter_operation_id": op.operation_id,
            "xmpp_message_id": attempt.message_id if attempt else None,
            "assessment": None,
            "initial_events": [],
            "received_at": received_at.isoformat(),
        }
        if attempt is None:
            return {**base, "accepted": False, "action_state": "refused", "reason": "unknown_operation"}
        pending = self.pending
        if (
            attempt.state != SCHEDULED_STATE
            or pending is None
            or not pending.cancel(tenant.id, request["operation_id"])
        ):
            refusal = f"not_queued:{attempt.state}"
            return {**base, "accepted": False, "action_state": "refused", "reason": refusal}
        message = self.store.get_message(tenant.id, attempt.message_id)
        assert message is not None, "an attempt's message is created with it"
        cancelled = OwnEvidence(tenant.id, message, attempt.attempt_id, attempt.to_jid, received_at,
                                once("adapter_cancelled", attempt.stanza_id or attempt.attempt_id))
        classification, events = self.outcomes.record({"kind": "adapter_cancelled"}, cancelled)
        return {**base, "accepted": True, "action_state": "completed", "reason": None,
                "assessment": assessment_of(classification), "initial_events": events}

    async def send_due(self, tenant: TenantConfig, operation_id: str) -> None:
        """Send a held notification.schedule request now that it is due (the stream is checked now). It
        leaves the schedule and enters the outbox in one transaction, so a crash after that loses nothing:
        the next session writes it like any accepted send (or it is held while the stream is down)."""
        with self.store.transaction():
            hand_over = self._take_due(tenant, operation_id)
        # The outbox row is durable before the stanza goes out: a send is never on the wire unrecorded.
        await self.store.durable()
        if hand_over is not None:
            with self.store.transaction():
                hand_over()

    def _take_due(self, tenant: TenantConfig, operation_id: str) -> Callable[[], None] | None:
        """Out of the schedule into the outbox (or refused, with its evidence); the call that hands it to
        the provider now, if any."""
        assert self.pending is not None
        request = self.pending.release(tenant.id, operation_id)
        attempt = self.store.get_attempt(tenant.id, attempt_id(operation_id))
        message = self.store.get_message(tenant.id, message_id(operation_id))
        if request is None or attempt is None or message is None or attempt.state != SCHEDULED_STATE:
            return None
        body, render_error = render_body(self.templates, "notification.schedule", request)
        status = self.dispatcher.stream_status(attempt.account_ref)
        reason = self.admission.refusal(
            tenant, attempt.account_ref, attempt.to_jid, render_error, request.get("options") or {},
            check_stream=not self.dispatcher.holds(attempt.account_ref, status),
            stream_status=lambda _: status,
        )
        if reason is not None:
            refused = OwnEvidence(tenant.id, message, attempt.attempt_id, attempt.to_jid, self.clock())
            self.outcomes.record({"kind": "request_rejected", "reject_reason": reason}, refused)
            return None
        assert attempt.stanza_id is not None
        self.store.update_attempt(tenant.id, attempt.attempt_id, state="send_requested")
        return self.dispatcher.through_outbox(
            tenant.id, attempt.account_ref, request, body or "", attempt.stanza_id, message.message_id,
            attempt.attempt_id, self.clock(), status,
        )
