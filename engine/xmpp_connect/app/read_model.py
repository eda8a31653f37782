"""The service's read side: the feed, messages, timelines, assessments, endpoints, dead letters, raw stanzas
and presence, all scoped to the calling tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.evidence import EvidenceEvent, endpoint_ref
from xmpp_connect.policy.model import Policy
from xmpp_connect.sending.actions import Actions
from xmpp_connect.sending.intake import IntakeItem
from xmpp_connect.sending.intake_dispatch import IntakeDispatcher
from xmpp_connect.store.errors import InvalidCursor, NotFound
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.xmpp.jids import bare

MESSAGE_PREFIX, OPERATION_PREFIX = "xmppmsg_", "xmppop_"


class ReadModel:
    """Mixed into AdapterService: uses its store, policy, actions and intake dispatcher."""

    store: SqlStore
    policy: Policy
    actions: Actions
    intake_dispatcher: IntakeDispatcher | None

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
        return self.actions.outcomes.accepted_events(
            tenant_id, waiting.request, waiting.received_at, waiting.operation_id
        )

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
        return None if quality is None else plain(asdict(quality))

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
                "detail": plain(d.detail),
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
        return {"raw_event_ref": raw_ref, "reference": plain(asdict(ref)), "content": content}

    def grade_strengths(self) -> dict[str, str]:
        """Each evidence grade's §14 strength, by grade name."""
        return {name: grade.strength for name, grade in self.policy.grades.items()}

    def presence(self, tenant: TenantConfig, jid: str) -> dict[str, Any] | None:
        states = self.store.presence(tenant.id, jid)
        if not states:
            return None
        return {"bare_jid": bare(jid), "resources": [plain(asdict(s)) for s in states]}


def _invalid_cursor() -> Problem:
    """A feed or listing cursor this service did not issue."""
    return Problem(400, "invalid-cursor", "The cursor was not issued by this service.",
                   [FieldError("cursor", "unknown cursor")])


def plain(value: Any) -> Any:
    """Mappings, sequences and datetimes as JSON-ready values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if k != "tenant_id"}
    if isinstance(value, list | tuple | frozenset | set):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
