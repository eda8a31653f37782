"""A send's own outcomes (accepted, scheduled, refused, cancelled) as evidence, classified once each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.recorder import Evidence, Recorder
from xmpp_connect.model.classification import Classification
from xmpp_connect.model.evidence import DedupeBasis, EvidenceEvent
from xmpp_connect.sending.ids import attempt_id, message_id
from xmpp_connect.sending.results import assessment_of, result_base, summaries
from xmpp_connect.sending.targets import target_jid
from xmpp_connect.store import idempotency
from xmpp_connect.store.records import IdempotentOperation, XmppAttempt, XmppMessage


@dataclass(frozen=True)
class OwnEvidence:
    """What one of a send's own outcomes (accepted, refused, cancelled) is about, for the recorder."""

    tenant_id: str
    message: XmppMessage
    attempt_id: str
    to_jid: str | None
    at: datetime
    dedupe: DedupeBasis | None = None
    to_type: str | None = None

    def evidence(self, classification: Classification) -> Evidence:
        return Evidence(
            tenant_id=self.tenant_id,
            classification=classification,
            observed_at=self.at,
            message_id=self.message.message_id,
            attempt_id=self.attempt_id,
            endpoint_jid=self.to_jid,
            endpoint_type=self.to_type,
            dedupe=self.dedupe,
            message=self.message,
        )


def once(kind: str, stanza_id: str) -> DedupeBasis:
    """A send's accepted or refused evidence exists once per operation, also when it is recorded again."""
    return DedupeBasis(kind=kind, sender_full_jid="", stanza_id=stanza_id)


def new_message(
    tenant_id: str,
    action_type: str,
    request: Mapping[str, Any],
    op: IdempotentOperation,
    received_at: datetime,
) -> XmppMessage:
    """The message a send creates: case and participant from the request, else its tracking context."""
    tracking = dict(request.get("tracking_context") or {})
    if action_type == "notification.send_reminder":
        tracking["reminder_of"] = request["original_operation_id"]
    return XmppMessage(
        tenant_id=tenant_id,
        message_id=message_id(op.operation_id),
        created_at=received_at,
        case_id=request.get("coordination_case_id") or tracking.get("coordination_case_id"),
        participant_id=request.get("participant_id") or tracking.get("participant_id"),
        purpose=action_type,
        template_ref=request.get("template_ref"),
        tracking_context=tracking,
    )


class OwnOutcomes:
    """Classifies a send's own facts (few: each is classified once) and hands them to the recorder."""

    def __init__(self, classifier: Classifier, recorder: Recorder) -> None:
        self.classifier = classifier
        self.recorder = recorder
        self._own_facts: dict[tuple[str, tuple[tuple[str, Any], ...]], Classification] = {}

    def classified(self, fact: dict[str, Any]) -> Classification:
        key = (self.classifier.policy.version, tuple(sorted(fact.items())))
        found = self._own_facts.get(key)
        if found is None:
            found = self._own_facts[key] = self.classifier.classify(fact)
        return found

    def record(
        self, fact: dict[str, Any], own: OwnEvidence, new_attempt: XmppAttempt | None = None
    ) -> tuple[Classification, list[dict[str, str]]]:
        """Classify one of the action's own facts and hand it to the recorder (with the attempt it is the
        first evidence of, when that is not stored yet)."""
        classification = self.classified(fact)
        stored = self.recorder.record(own.evidence(classification), new_attempt)
        return classification, summaries(stored.stored)

    def accepted_result(
        self, tenant_id: str, action_type: str, request: Mapping[str, Any], received_at: datetime
    ) -> dict[str, Any]:
        """The result the core answers for a send it accepts, computed without the store: an API worker
        answers with it before the core records the same evidence (the event ids are derived, not drawn)."""
        operation_id = idempotency.operation_id(tenant_id, request["idempotency_key"], received_at)
        classification = self.classified({"kind": "adapter_accepted"})
        return {
            **result_base(action_type, request, operation_id, received_at),
            "accepted": True,
            "action_state": "accepted",
            "reason": None,
            "assessment": assessment_of(classification),
            "initial_events": summaries(self.accepted_events(tenant_id, request, received_at, operation_id)),
        }

    def accepted_events(
        self, tenant_id: str, request: Mapping[str, Any], received_at: datetime, operation_id: str
    ) -> tuple[EvidenceEvent, ...]:
        """The evidence a send accepted at ``received_at`` as ``operation_id`` is recorded with (not stored
        here)."""
        key = request["idempotency_key"]
        operation = IdempotentOperation(
            tenant_id,
            key,
            "",
            operation_id,
            idempotency.stanza_id(tenant_id, key, operation_id),
            received_at,
            replayed=False,
        )
        message = new_message(tenant_id, request["action_type"], request, operation, received_at)
        to_jid = target_jid(request.get("target_endpoint") or {}) or None
        own = OwnEvidence(tenant_id, message, attempt_id(operation.operation_id), to_jid, received_at,
                          once("adapter_accepted", operation.stanza_id))
        return self.recorder.events(own.evidence(self.classified({"kind": "adapter_accepted"})))
