"""The one recorder: a classified piece of evidence -> its evidence context -> the log (which the feed
reads) -> the attempt's state from the policy; an event nothing can be made of -> a dead letter.

Every source ends here: the pipeline's observations (native events from every provider, and stanzas posted
to ``/adapter/events/provider``), fired timers, and the actions' own outcomes (accepted, refused,
cancelled). The context is built here once: the message's case, participant and correlation ids (for a
message from an endpoint tied to none of ours, those of the endpoint's registered tracking context), the
endpoint reference, the sender's full JID and resource (only references when privacy hides JIDs), the
XEP-0203 delay stamp as the event's time, and the dedupe basis (§29): the same receipt, marker or error
from the same sender full JID about the same message is one event, whatever its own stanza id.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from xmpp_connect.evidence import lifecycle
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.observed_records import ObservedRecords
from xmpp_connect.evidence.raw_sources import raw_source
from xmpp_connect.model.classification import Classification, Precedence
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.evidence import (
    DedupeBasis,
    EvidenceEvent,
    endpoint_ref,
    evidence_entries,
)
from xmpp_connect.model.frozen import dict_init
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.store.base import EvidenceStore
from xmpp_connect.store.records import (
    ATTEMPT_STATES,
    AppendResult,
    DeadLetter,
    XmppAttempt,
    XmppMessage,
)
from xmpp_connect.xmpp.jids import resource

log = logging.getLogger(__name__)

SENDER_SCOPED_KINDS = frozenset({"receipt", "marker", "muc_marker", "stanza_error"})
"""Evidence that says the same thing however often its sender repeats it (clients and carbons resend
receipts and markers with fresh ids): deduplicated by message, kind and sender full JID."""
DECIDER_CACHE_SIZE = 4096
"""How many attempts' deciding events the recorder keeps in memory (a miss reads the store)."""
ENDPOINT_REF_CACHE_SIZE = 4096
"""How many (tenant, JID) endpoint references the recorder keeps computed."""
WRITTEN, ACKED = "message_sent", "sm_ack"
"""The native events that carry one of our sent messages as written, then as the server acked it."""
ENDPOINT_KINDS = frozenset({"adapter_accepted", "adapter_scheduled"})
"""Outcomes after which the message's endpoint is kept, so its ``ep_`` reference can be looked up."""


class RecorderStore(Protocol):
    """What the recorder needs from the evidence store (store.sql.SqlStore provides it)."""

    def append_evidence(self, events: Sequence[EvidenceEvent]) -> AppendResult: ...
    def get_message(self, tenant_id: str, message_id: str) -> XmppMessage | None: ...
    def evidence_for_message(
        self, tenant_id: str, message_id: str, participant_id: str | None = None
    ) -> list[EvidenceEvent]: ...
    def get_event(self, tenant_id: str, event_id: str) -> EvidenceEvent | None: ...
    def attempt_state_event(self, tenant_id: str, attempt_id: str) -> tuple[str, str | None] | None: ...
    def set_attempt_state(
        self, tenant_id: str, attempt_id: str, state: str, event_id: str, replacing: str | None
    ) -> bool: ...
    def create_attempt(self, attempt: XmppAttempt, state_event_id: str | None = None) -> None: ...
    def remember_endpoint(self, tenant_id: str, jid: str, endpoint_type: str) -> None: ...
    def record_raw(
        self,
        tenant_id: str,
        source: str,
        content: str,
        received_at: datetime,
        storage_ref: str | None = None,
        offer: bool = False,
        take: bool = False,
        well_formed: bool = False,
    ) -> Any: ...
    def add_dead_letter(
        self,
        tenant_id: str,
        stage: str,
        reason: str,
        detail: Mapping[str, Any] | None = None,
        raw_ref: str | None = None,
    ) -> DeadLetter: ...


@dict_init
@dataclass(frozen=True)
class Evidence:
    """One classified piece of evidence as it enters the recorder, before its context is built.

    ``message`` saves the recorder a lookup when the caller holds the message already (or when it is not
    stored yet: an API worker answering for a send the core will record). ``dedupe`` names what makes a
    repeat the same evidence; without one, every entry is new. ``tracking`` is the sender endpoint's
    tracking context, for evidence tied to no message: its ids are recorded where a message's would be."""

    tenant_id: str
    classification: Classification
    observed_at: datetime
    message_id: str | None = None
    attempt_id: str | None = None
    endpoint_jid: str | None = None
    endpoint_type: str | None = None
    sender: str | None = None
    delay_stamp: datetime | None = None
    raw_ref: str | None = None
    dedupe: DedupeBasis | None = None
    message: XmppMessage | None = None
    tracking: TrackingContext | None = None


class Recorder:
    """Records evidence for every tenant of one store under one policy's precedence."""

    def __init__(self, store: RecorderStore, precedence: Precedence, hide_jids: bool = False) -> None:
        self.store = store
        self.precedence = precedence
        self.hide_jids = hide_jids
        self._deciders: dict[tuple[str, str], EvidenceEvent] = {}
        """The deciding event per (tenant, attempt) as this recorder last wrote it; an attempt not in it is
        guessed to have none yet (its first evidence, mostly). A decider is only ever replaced by a stronger
        one, so the real one is at least as strong as the guess; the conditional write checks the guess,
        and fails (then the store is read) when another writer moved the attempt or it does not exist."""
        self._endpoint_refs: dict[tuple[str, str], str] = {}

    def events(self, evidence: Evidence) -> tuple[EvidenceEvent, ...]:
        """The log entries the evidence becomes (not stored)."""
        message = evidence.message
        if message is None and evidence.message_id:
            message = self.store.get_message(evidence.tenant_id, evidence.message_id)
        own = self._own(evidence.tenant_id, evidence.observed_at, evidence.delay_stamp, evidence.message_id,
                        evidence.attempt_id, message, evidence.tracking,
                        evidence.endpoint_jid or evidence.sender, evidence.raw_ref, evidence.sender)
        return evidence_entries(evidence.classification, own, evidence.dedupe)

    def _own(
        self,
        tenant_id: str,
        observed_at: datetime,
        delay_stamp: datetime | None,
        message_id: str | None,
        attempt_id: str | None,
        message: XmppMessage | None,
        tracking: TrackingContext | None,
        endpoint: str | None,
        raw_ref: str | None,
        sender: str | None,
    ) -> dict[str, Any]:
        """The ids and times the evidence is recorded with (``CONTEXT_FIELDS``): the message's case,
        participant and correlation ids (else the tracking context's), the endpoint's reference, the
        sender's full JID and resource, the delay stamp as the event's time."""
        sender_jid, sender_resource = self._sender(tenant_id, sender)
        case_id, participant_id, correlation_id = _ids(message, tracking)
        return {
            "tenant_id": tenant_id,
            "occurred_at": delay_stamp or observed_at,
            "message_id": message_id,
            "attempt_id": attempt_id,
            "case_id": case_id,
            "participant_id": participant_id,
            "correlation_id": correlation_id,
            "endpoint_ref": self._endpoint_ref(tenant_id, endpoint) if endpoint else None,
            "raw_ref": raw_ref,
            "sender_jid": sender_jid,
            "sender_resource": sender_resource,
        }

    def record(self, evidence: Evidence, new_attempt: XmppAttempt | None = None) -> AppendResult:
        """Append the evidence once, then advance its attempt's state from the policy. ``new_attempt``: the
        evidence's attempt, not stored yet (the evidence is its first): inserted after the evidence,
        carrying the state the evidence decides, instead of inserted first and then moved."""
        appended = self.store.append_evidence(self.events(evidence))
        if new_attempt is not None:
            self._create(evidence, new_attempt, appended.stored)
        elif appended.stored and evidence.attempt_id:
            self._keep_endpoint(evidence)
            self._advance(evidence.tenant_id, evidence.attempt_id, evidence.classification, appended.stored)
        return appended

    def record_observation(
        self, tenant_id: str, observation: Observation, raw_ref: str | None
    ) -> AppendResult:
        """A pipeline observation (a native event or a bridged stanza, classified); an unmapped one is
        recorded and also filed as a dead letter. What ``record`` does with the observation's ``Evidence``,
        without building one (an observation names no endpoint type, so no endpoint is kept)."""
        out = observation.outbound
        event = observation.event
        fact = observation.fact
        classification = observation.classification
        sender = observation.sender or None
        kind = fact["kind"]
        about = out.stanza_id + _resend_suffix(out) if out else ""
        scoped = out is not None and sender is not None and kind in SENDER_SCOPED_KINDS
        dedupe = DedupeBasis(f"{kind}:{fact.get('marker', '')}", sender or "",
                             about if scoped else f"{about}|{event.stanza_id or _raw_id(event)}")
        if out is not None:
            message_id, attempt_id = out.message_id, out.attempt_id
            message = self.store.get_message(tenant_id, message_id) if message_id else None
            endpoint = out.to_jid or sender
        else:
            message_id = attempt_id = message = None
            endpoint = sender
        own = self._own(tenant_id, event.observed_at, observation.delay_stamp, message_id, attempt_id,
                        message, observation.tracking, endpoint, raw_ref, sender)
        appended = self.store.append_evidence(evidence_entries(classification, own, dedupe))
        if appended.stored and attempt_id:
            self._advance(tenant_id, attempt_id, classification, appended.stored)
        if classification.dead_letter and appended.stored:
            self.store.add_dead_letter(
                tenant_id, "classify", f"no rule classifies a {kind} fact", _detail(event), raw_ref,
            )
        return appended

    def dead_letter(self, tenant_id: str, event: NativeEvent, reason: str) -> DeadLetter:
        """A native event the pipeline could not parse or use: its raw content is kept and referenced."""
        raw_ref = None
        if event.raw is not None:
            source = raw_source({}, event)
            raw_ref = self.store.record_raw(tenant_id, source, event.raw, event.observed_at).raw_event_id
        return self.store.add_dead_letter(tenant_id, "parse", reason, _detail(event), raw_ref)

    def _create(self, evidence: Evidence, attempt: XmppAttempt, stored: Sequence[EvidenceEvent]) -> None:
        """Insert the evidence's new attempt with the state ``_advance`` would give it (none decided yet)."""
        best = None
        if stored:
            self._keep_endpoint(evidence)
            if evidence.classification.attempt_state in ATTEMPT_STATES:
                best = lifecycle.attempt_state_event(stored, self.precedence)
        if best is None or not best.attempt_state:
            self.store.create_attempt(attempt)
            return
        if attempt.state != best.attempt_state:  # the send path creates it with the state it expects
            attempt = replace(attempt, state=best.attempt_state)
        self.store.create_attempt(attempt, best.event_id)
        self._decided(evidence.tenant_id, attempt.attempt_id, best)

    def _keep_endpoint(self, evidence: Evidence) -> None:
        """The first acceptance keeps the message's endpoint, for lookups by reference."""
        kind = evidence.classification.fact.get("kind")
        if kind in ENDPOINT_KINDS and evidence.endpoint_jid and evidence.endpoint_type:
            self.store.remember_endpoint(evidence.tenant_id, evidence.endpoint_jid, evidence.endpoint_type)

    def _decided(self, tenant_id: str, attempt_id: str, decider: EvidenceEvent) -> None:
        if len(self._deciders) >= DECIDER_CACHE_SIZE:
            self._deciders.clear()
        self._deciders[(tenant_id, attempt_id)] = decider

    def _advance(
        self, tenant_id: str, attempt_id: str, classification: Classification, stored: Sequence[EvidenceEvent]
    ) -> None:
        """§10: the attempt's state is that of its strongest evidence carrying one (the mappings'
        ``attempt_state``), compared with the evidence that decided it so far."""
        if classification.attempt_state not in ATTEMPT_STATES:
            return
        key = (tenant_id, attempt_id)
        decided = self._deciders.get(key)
        guessed = True
        for _ in range(3):  # the guess, then the store's state (twice, should another writer move it between)
            if not guessed:
                found = self.store.attempt_state_event(tenant_id, attempt_id)
                if found is None:
                    return
                decided = self.store.get_event(tenant_id, found[1]) if found[1] else None
            best = lifecycle.attempt_state_event([*stored, *([decided] if decided else [])], self.precedence)
            if best is None or best is decided or not best.attempt_state:
                return
            replacing = decided.event_id if decided else None
            if self.store.set_attempt_state(tenant_id, attempt_id, best.attempt_state, best.event_id,
                                            replacing):
                self._decided(tenant_id, attempt_id, best)
                return
            guessed = False

    def _endpoint_ref(self, tenant_id: str, jid: str) -> str:
        """``endpoint_ref``, memoized: every event of a send names the same endpoint (a digest each time)."""
        key = (tenant_id, jid)
        ref = self._endpoint_refs.get(key)
        if ref is None:
            if len(self._endpoint_refs) >= ENDPOINT_REF_CACHE_SIZE:
                self._endpoint_refs.clear()
            ref = self._endpoint_refs[key] = endpoint_ref(tenant_id, jid)
        return ref

    def _sender(self, tenant_id: str, sender: str | None) -> tuple[str | None, str | None]:
        """The sender's full JID and resource; with JIDs hidden, no JID and an opaque resource reference."""
        if not sender:
            return None, None
        own = resource(sender)
        if not self.hide_jids:
            return sender, own
        return None, ("res_" + _digest(tenant_id, sender)[:20]) if own else None


class TenantRecorder:
    """One tenant's pipeline sink: each observation's raw stanza kept (once per native event), the
    observation recorded, and the presence, receipt, marker, inbound, room and PubSub records it stands for
    written beside the log. Also the pipeline's dead-letter sink and its LateCheck."""

    def __init__(self, recorder: Recorder, store: EvidenceStore, tenant_id: str) -> None:
        self.recorder = recorder
        self.store = store
        self.tenant_id = tenant_id
        self.records = ObservedRecords(store, tenant_id)
        self._last_raw: tuple[NativeEvent, str] | None = None

    def __call__(self, observation: Observation) -> None:
        self.recorder.record_observation(self.tenant_id, observation, self.raw_ref(observation))
        self.records(observation)

    def raw_ref(self, observation: Observation) -> str | None:
        """The §30 reference of the observation's raw stanza, preserved (redacted unless configured
        otherwise) once per native event: the observations of one event share it. A sent message's ack
        carries the message again: it references the copy kept when the message was written. A stanza the
        pipeline read (its view is ``parse_stanza`` of this text) is well-formed: redaction need not parse
        it to know."""
        event = observation.event
        if event.raw is None:
            return None
        if self._last_raw is not None and self._last_raw[0] is event:
            return self._last_raw[1]
        source = raw_source(observation.fact, event)
        ref = self.store.record_raw(self.tenant_id, source, event.raw, event.observed_at,
                                    offer=event.kind == WRITTEN, take=event.kind == ACKED,
                                    well_formed=observation.view is not None).raw_event_id
        self._last_raw = (event, ref)
        return ref

    def dead_letter(self, event: NativeEvent, reason: str) -> None:
        self.recorder.dead_letter(self.tenant_id, event, reason)

    def tracking_context(self, sender: str, at: datetime) -> TrackingContext | None:
        """The pipeline's ContextLookup: the tracking context registered for the sender's bare JID (its
        endpoint, keyed by bare JID), if it is live at ``at``."""
        endpoint = self.store.get_endpoint(self.tenant_id, endpoint_ref(self.tenant_id, sender))
        found = TrackingContext.from_metadata(endpoint.metadata) if endpoint else None
        return found if found is not None and found.live_at(at) else None

    def is_late(self, outbound: OutboundRecord) -> bool:
        """The pipeline's LateCheck: the store's timer state is the one definition of "late" (§29)."""
        return outbound.message_id is not None and self.store.is_late(self.tenant_id, outbound.message_id)


def _ids(
    message: XmppMessage | None, tracking: TrackingContext | None
) -> tuple[str | None, str | None, str | None]:
    """Case, participant and correlation id: the message's, else the endpoint's tracking context's."""
    if message is not None:
        return message.case_id, message.participant_id, message.tracking_context.get("correlation_id")
    if tracking is not None:
        return tracking.case_id, tracking.participant_id, tracking.correlation_id
    return None, None, None


def _resend_suffix(out: OutboundRecord) -> str:
    """The outbox writes a lost stanza again as attempt ``<id>.<n>`` with the same stanza id: that attempt's
    evidence (written, acked, answered) is its own, not a duplicate of the first attempt's."""
    number = out.attempt_id.partition(".")[2] if out.attempt_id else ""
    return f"#{number}" if number else ""


def _detail(event: NativeEvent) -> dict[str, Any]:
    """What a dead letter says about its event besides the raw content (no body, no JID)."""
    return {"native_kind": event.kind, "account": event.account, "stanza_id": event.stanza_id,
            "observed_at": event.observed_at.isoformat()}


def _raw_id(event: NativeEvent) -> str:
    """A stanza's digest, stable across restarts, so a stanza delivered twice is recorded once; an event
    without a stanza (a stream connecting or dropping) is one occurrence, told apart by its time."""
    if event.raw:
        return _digest(event.raw)[:32]
    return f"{event.kind}@{event.observed_at.isoformat()}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
