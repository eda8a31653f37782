"""Native event -> parse -> correlation context -> fact -> classification -> a sink.

One pipeline serves every account. It remembers sent stanzas (an OutboundIndex), presence, subscription and
capabilities per account (a PresenceTracker each), room occupants and room features per account (a
RoomRoster each), and which markable stanzas a displayed marker already covered, so that a cumulative marker
(XEP-0333) yields one inferred fact per earlier markable stanza.

Rooms: a groupchat stanza carrying our stanza's id or origin-id is the room's reflected copy; the room's
XEP-0359 stanza-id on it is recorded as the stanza's stable id (``OutboundIndex.set_stable_id``), which
occupants' markers and replies name. Room chatter is tied to our message only by a reply reference or a
thread, never by "the last message sent to the room". PubSub: an iq answer correlates by its id, an event
notification by its item ids. Archive (MAM) results correlate by the archived message's id or origin-id.
A one-to-one message tied to none of ours, from a sender the server vouched for, is looked up in the tenant's
registered tracking contexts (``ContextLookup``): the fact says whether one is live, and the observation
carries it, so the evidence is recorded with its case, participant and correlation ids.
Events from a component provider (``detail["via_component"]``) yield facts with ``via_component``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from xmpp_connect.evidence.observation import (
    Classifier,
    ContextLookup,
    DeadLetterSink,
    LateCheck,
    Observation,
    ObservationSink,
)
from xmpp_connect.facts.build import NotEvidence, fact_for_event, fact_from_stanza
from xmpp_connect.facts.correlate import Correlator, answers_stanza, is_reflection
from xmpp_connect.facts.markers import marker_coverage
from xmpp_connect.facts.outbound_index import OutboundIndex, conversation_of
from xmpp_connect.facts.presence import PresenceTracker, RoomRoster, is_availability_evidence
from xmpp_connect.model.classification import Classification
from xmpp_connect.model.correlation import CorrelationContext, OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.xmpp.stanzas import StanzaView, parse_stanza
from xmpp_connect.xmpp.untrusted_xml import StanzaRejected

log = logging.getLogger(__name__)

FEATURE_RECEIPTS = "urn:xmpp:receipts"
FEATURE_MARKERS = "urn:xmpp:chat-markers:0"
FEATURE_OFFLINE_STORAGE = "msgoffline"
FEATURE_MUC = "http://jabber.org/protocol/muc"
CLIENT_FEATURES = (FEATURE_RECEIPTS, FEATURE_MARKERS)
"""The client capabilities a context reports (cap_receipts, cap_markers), looked up together."""
CUMULATIVE_MARKERS = frozenset({"displayed", "acknowledged"})
SUBSCRIPTION_PRESENCE_TYPES = frozenset(
    {"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"}
)

HEALTH_FACT_KINDS = {
    "stream_connected": "stream_connected",
    "stream_disconnected": "stream_disconnected",
    "stream_error": "stream_error",
    "authenticated": "authenticated",
    "authentication_failed": "auth_failed",
    "tls_failed": "tls_failed",
}
"""Native health events and the fact kind each becomes."""

OUTBOUND_FACT_KINDS = {
    "message_sent": "send_accepted",
    "sm_ack": "sm_ack",
    "acceptance_unknown": "acceptance_unknown",
}
"""Native events about one outbound stanza and the fact kind each becomes."""


CLASSIFICATION_CACHE_SIZE = 4096
OUTBOUND_FACT_CACHE_SIZE = 4096


class EvidencePipeline:
    """Turns native events into classified observations, in arrival order, synchronously.

    A ``stanza_received`` event whose ``detail`` says ``authenticated_stream: False`` (a stanza handed in by
    an external bridge, whose ``from`` no server vouched for) yields facts with ``sender_authenticated``
    false.
    """

    def __init__(
        self,
        classifier: Classifier,
        commands: CommandTable,
        index: OutboundIndex,
        sink: ObservationSink,
        dead_letter: DeadLetterSink | None = None,
        late: LateCheck | None = None,
        stop_suppression_enabled: bool = False,
        contexts: ContextLookup | None = None,
    ) -> None:
        self._classifier = classifier
        self._commands = commands
        self._index = index
        self._correlator = Correlator(index)
        self._sink = sink
        self._dead_letter = dead_letter
        self._late = late
        self._stop_suppression_enabled = stop_suppression_enabled
        self._contexts = contexts
        self._presence: dict[str, PresenceTracker] = {}
        self._rooms: dict[str, RoomRoster] = {}
        self._server_features: dict[str, frozenset[str]] = {}
        self._server_features_version = 0
        self._outbound_facts: dict[
            tuple[Any, ...], tuple[tuple[int, int, int, str], dict[str, Any], Classification]
        ] = {}
        self._marked: set[str] = set()
        self._cache: dict[tuple[tuple[str, Any], ...], Classification] = {}
        self._cache_version: str | None = None

    def presence(self, account: str) -> PresenceTracker:
        """The presence/subscription/capability view of one account's contacts."""
        tracker = self._presence.get(account)
        if tracker is None:
            tracker = self._presence[account] = PresenceTracker()
        return tracker

    def rooms(self, account: str) -> RoomRoster:
        """The occupants and features of the rooms one account joined or discovered."""
        roster = self._rooms.get(account)
        if roster is None:
            roster = self._rooms[account] = RoomRoster()
        return roster

    def handle(self, event: NativeEvent) -> list[Observation]:
        """Classify one native event; every observation is also handed to the sink."""
        try:
            observations = self._observe(event)
        except (StanzaRejected, ValueError) as problem:
            reason = problem.reason if isinstance(problem, StanzaRejected) else str(problem)
            log.warning("dead-lettered native event %s (account=%s stanza=%s): %s",
                        event.kind, event.account, event.stanza_id, reason)
            if self._dead_letter is not None:
                self._dead_letter(event, reason)
            return []
        for observation in observations:
            self._sink(observation)
        return observations

    def _observe(self, event: NativeEvent) -> list[Observation]:
        if event.kind in HEALTH_FACT_KINDS:
            will_retry = event.detail.get("will_retry")
            fact = fact_for_event(HEALTH_FACT_KINDS[event.kind],
                                  will_retry=will_retry if isinstance(will_retry, bool) else None)
            return [self._classified(event, fact, None)]
        if event.kind in OUTBOUND_FACT_KINDS:
            return [self._outbound_event(event)]
        if event.kind == "message_not_sent":
            outbound = self._outbound_of(event)
            fact = fact_for_event("request_rejected", self._context(event.account, outbound),
                                  reject_reason="stream_unavailable")
            return [self._classified(event, fact, outbound)]
        if event.kind == "room_join_sent":
            self._outbound_of(event)
            return []
        if event.kind == "roster":
            self.presence(event.account).set_subscription(str(event.detail["jid"]),
                                                          str(event.detail["subscription"]))
            return []
        if event.kind == "capabilities":
            return self._capabilities(event)
        if event.kind == "stanza_received":
            return self._stanza(event)
        log.debug("native event %s carries no evidence", event.kind)
        return []

    # ----------------------------------------------------------------- outbound-side events

    def _outbound_of(self, event: NativeEvent) -> OutboundRecord | None:
        carried = event.detail.get("outbound")
        if isinstance(carried, OutboundRecord):
            self._index.record(carried)
            return carried
        return self._index.lookup(event.stanza_id) if event.stanza_id else None

    def _outbound_event(self, event: NativeEvent) -> Observation:
        outbound = self._outbound_of(event)
        if outbound is None:
            ctx = _via(event, self._context(event.account, None))
            return self._classified(event, fact_for_event(OUTBOUND_FACT_KINDS[event.kind], ctx), None)
        fact, classification = self._outbound_fact(event, outbound)
        return Observation(event, fact, classification, outbound)

    def _outbound_fact(
        self, event: NativeEvent, outbound: OutboundRecord
    ) -> tuple[dict[str, Any], Classification]:
        """The fact of an event about our own sent stanza (written, acked), and its classification: without
        a stanza it depends only on what the record says of the stanza and the account's presence, room and
        server state, so an equal one is reused (a copy) with the classification ``_classify`` gave it while
        that state and the policy's version stay as they were (every send to one JID alike)."""
        account = event.account
        state = (self.presence(account).version, self.rooms(account).version, self._server_features_version,
                 self._classifier.policy.version)
        key = (account, event.kind, event.detail.get("via_component") is True, outbound.to_jid,
               outbound.endpoint_type, outbound.receipt_requested, outbound.markable, outbound.message_type)
        known = self._outbound_facts.get(key)
        if known is not None and known[0] == state:
            return dict(known[1]), known[2]
        fact = fact_for_event(OUTBOUND_FACT_KINDS[event.kind], _via(event, self._context(account, outbound)))
        classification = self._classify(fact)
        if len(self._outbound_facts) >= OUTBOUND_FACT_CACHE_SIZE:
            self._outbound_facts.clear()
        self._outbound_facts[key] = (state, dict(fact), classification)
        return fact, classification

    def _capabilities(self, event: NativeEvent) -> list[Observation]:
        features = event.detail.get("features")
        if not isinstance(features, list) or event.raw is None:
            return []
        jid = str(event.detail["jid"])
        advertised = frozenset(str(f) for f in features)
        if "@" not in jid and "/" not in jid and "node" not in event.detail:
            self._server_features[event.account] = advertised
            self._server_features_version += 1
        elif "@" in jid and "/" not in jid and FEATURE_MUC in advertised:
            self.rooms(event.account).set_features(jid, advertised)
        elif "node" not in event.detail:
            self.presence(event.account).set_features(jid, advertised)
        outbound = self._index.latest(conversation_of(jid))
        view = parse_stanza(event.raw)
        return self._from_view(event, view, self._context(event.account, outbound, view))

    # ----------------------------------------------------------------- inbound stanzas

    def _stanza(self, event: NativeEvent) -> list[Observation]:
        assert event.raw is not None
        view = event.view or parse_stanza(event.raw)
        if view.name == "presence":
            self._track_presence(event, view)
        outbound, reply_via = self._correlator.correlate(view)
        if outbound is not None and view.type == "groupchat" and is_reflection(view, outbound):
            outbound = self._correlator.note_stable_id(view, outbound)
        ctx = _via(event, self._context(event.account, outbound, view, reply_via))
        if event.detail.get("authenticated_stream") is False:
            ctx = replace(ctx, authenticated_stream=False)
        ctx, tracking = self._tracking(event, view, ctx)
        observations = self._from_view(event, view, ctx, tracking)
        if outbound is not None and ctx.authenticated_stream and answers_stanza(view, outbound):
            self.presence(event.account).note_seen(view.from_attr or "")
        if view.marker in CUMULATIVE_MARKERS and outbound is not None and observations:
            observations.extend(self._inferred_markers(event, view, outbound, ctx))
        return observations

    def _tracking(
        self, event: NativeEvent, view: StanzaView, ctx: CorrelationContext
    ) -> tuple[CorrelationContext, TrackingContext | None]:
        """For a one-to-one message with a body tied to none of ours, from a sender the server vouched for:
        the tracking context registered for the sender's bare JID and live when the message was sent, and
        the correlation context saying whether there is one."""
        if (
            self._contexts is None
            or ctx.outbound is not None
            or not ctx.authenticated_stream
            or view.name != "message"
            or view.type in ("groupchat", "error")
            or not view.from_attr
            or not (view.body and view.body.strip())
        ):
            return ctx, None
        found = self._contexts(view.from_attr, _stamp(view) or event.observed_at)
        return replace(ctx, context_registered=found is not None), found

    def _track_presence(self, event: NativeEvent, view: StanzaView) -> None:
        if view.from_attr is None or view.type in SUBSCRIPTION_PRESENCE_TYPES:
            return
        if view.muc_user is not None:
            muc = view.muc_user
            self.rooms(event.account).observe(view.from_attr, muc.item_jid, muc.item_role,
                                              muc.item_affiliation, view.type != "unavailable",
                                              event.observed_at)
            return
        availability = "unavailable" if view.type == "unavailable" else (view.presence_show or "available")
        presence = self.presence(event.account)
        if not is_availability_evidence(view.from_attr, availability, presence.subscription(view.from_attr)):
            return
        presence.observe(view.from_attr, availability, event.observed_at, view.presence_priority,
                         view.presence_status)

    def _context(
        self,
        account: str,
        outbound: OutboundRecord | None,
        view: StanzaView | None = None,
        reply_via: str | None = None,
    ) -> CorrelationContext:
        """What the fact builder needs beyond the stanza: presence, subscription, capabilities, timing."""
        presence = self.presence(account)
        addressee = outbound.to_jid if outbound is not None else (view.from_attr if view else None)
        known = presence.known_resources(addressee) if addressee else frozenset()
        available = presence.is_available(addressee) if addressee else None
        sender = view.from_attr if view is not None else None
        capability_jid = sender if sender and "/" in sender else addressee
        rooms = self.rooms(account)
        room = addressee if addressee and rooms.is_room(addressee) else None
        cap_receipts, cap_markers = (
            presence.supports_each(capability_jid, CLIENT_FEATURES) if capability_jid else (None, None)
        )
        return CorrelationContext(
            outbound=outbound,
            known_resources=known,
            recipient_available=available,
            addressee_resource_count=(
                len(presence.available_resources(addressee)) if addressee and available is not None else None
            ),
            subscription=presence.subscription(addressee) if addressee else None,
            cap_receipts=cap_receipts,
            cap_markers=cap_markers,
            cap_offline_storage=(
                FEATURE_OFFLINE_STORAGE in self._server_features[account]
                if account in self._server_features else None
            ),
            late=self._is_late(outbound, view),
            stop_suppression_enabled=self._stop_suppression_enabled,
            reply_via=reply_via,
            room_anonymity=rooms.anonymity(room) if room else None,
            occupant_real_jid=rooms.real_jid(sender) if room and sender and "/" in sender else None,
        )

    def _is_late(self, outbound: OutboundRecord | None, view: StanzaView | None) -> bool:
        """A receipt, marker or reply about a stanza whose timeout or expiry already fired (§29). The fact
        says so before it is classified, so the rules see it; the evidence is kept either way."""
        if self._late is None or outbound is None or view is None:
            return False
        if not (view.receipt_received or view.marker is not None or view.body is not None):
            return False
        return self._late(outbound)

    def _from_view(
        self, event: NativeEvent, view: StanzaView, ctx: CorrelationContext,
        tracking: TrackingContext | None = None,
    ) -> list[Observation]:
        try:
            fact = fact_from_stanza(view, ctx, self._commands)
        except NotEvidence:
            return []
        if view.marker is not None and ctx.outbound is not None and fact.get("correlated"):
            self._marked.add(ctx.outbound.stanza_id)
        tied = tracking if "context_registered" in fact else None
        return [self._classified(event, fact, ctx.outbound, sender=view.from_attr, view=view, tracking=tied)]

    def _inferred_markers(
        self, event: NativeEvent, view: StanzaView, named: OutboundRecord, ctx: CorrelationContext
    ) -> list[Observation]:
        """XEP-0333: a marker for message N also marks the earlier markable messages of the conversation."""
        sent = [*self._index.markables_before(conversation_of(named.to_jid), named.stanza_id), named]
        coverage = marker_coverage(sent, named.stanza_id, self._marked)
        observations = []
        for earlier in coverage.inferred if coverage else ():
            self._marked.add(earlier.stanza_id)
            inferred_ctx = replace(ctx, outbound=earlier, marker_inferred=True)
            fact = fact_from_stanza(view, inferred_ctx, self._commands)
            observations.append(
                self._classified(event, fact, earlier, inferred_from=named.stanza_id, sender=view.from_attr,
                                 view=view)
            )
        return observations

    def _classified(
        self, event: NativeEvent, fact: dict[str, Any], outbound: OutboundRecord | None,
        inferred_from: str | None = None, sender: str | None = None, view: StanzaView | None = None,
        tracking: TrackingContext | None = None,
    ) -> Observation:
        """The observation; one from a stanza carries its parsed view and the stanza's own time, if any."""
        return Observation(event, fact, self._classify(fact), outbound, inferred_from, sender,
                           _stamp(view) if view is not None else None, tracking, view)

    def _classify(self, fact: dict[str, Any]) -> Classification:
        """Classify, memoized per policy version: most facts repeat exactly (every sm_ack of a chat message
        to a bare JID looks the same), and the rule engine costs far more than a dict lookup. The key keeps
        the fact's field order (the fact builders add fields in a fixed order; an equal fact built in
        another order only costs a second entry)."""
        version = self._classifier.policy.version
        if version != self._cache_version or len(self._cache) >= CLASSIFICATION_CACHE_SIZE:
            self._cache.clear()
            self._cache_version = version
        key = tuple(fact.items())
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._classifier.classify(fact)
        return cached


def _stamp(view: StanzaView) -> datetime | None:
    """When the stanza's evidence happened, if it says so: a XEP-0203 delay or a XEP-0313 archive stamp."""
    return view.delay_stamp or view.archive_stamp


def _via(event: NativeEvent, ctx: CorrelationContext) -> CorrelationContext:
    """Mark the context of an event a component provider reported."""
    return replace(ctx, via_component=True) if event.detail.get("via_component") is True else ctx
