"""Fired timers (receipt/marker timeouts, expiry) recorded as evidence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import FEATURE_MARKERS, FEATURE_RECEIPTS, EvidencePipeline
from xmpp_connect.evidence.recorder import Evidence, Recorder
from xmpp_connect.facts.build import fact_for_event
from xmpp_connect.model.correlation import CorrelationContext
from xmpp_connect.model.evidence import DedupeBasis
from xmpp_connect.sending.timers import TimerFact
from xmpp_connect.store.sql import SqlStore


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
