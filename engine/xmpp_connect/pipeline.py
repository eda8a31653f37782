"""Native event -> parse -> correlation context -> fact -> classification -> a sink.

One pipeline serves every account. It remembers sent stanzas (an OutboundIndex), presence, subscription and
capabilities per account (a PresenceTracker each), and which markable stanzas a displayed marker already
covered, so that a cumulative marker (XEP-0333) yields one inferred fact per earlier markable stanza.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from xmpp_connect.classification import Classification
from xmpp_connect.commands import CommandTable
from xmpp_connect.correlation import CorrelationContext, OutboundRecord
from xmpp_connect.facts import NotEvidence, fact_for_event, fact_from_stanza
from xmpp_connect.markers import marker_coverage
from xmpp_connect.native import NativeEvent
from xmpp_connect.outbound_index import OutboundIndex, conversation_of
from xmpp_connect.presence import PresenceTracker
from xmpp_connect.stanzas import StanzaRejected, StanzaView, parse_stanza

log = logging.getLogger(__name__)

FEATURE_RECEIPTS = "urn:xmpp:receipts"
FEATURE_MARKERS = "urn:xmpp:chat-markers:0"
FEATURE_OFFLINE_STORAGE = "msgoffline"
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


class PolicyVersion(Protocol):
    version: str


class Classifier(Protocol):
    """xmpp_connect.classify.Classifier: stateless first-match, so a fact's classification depends only on the
    fact and the policy version."""

    @property
    def policy(self) -> PolicyVersion: ...

    def classify(self, fact: Mapping[str, Any]) -> Classification: ...


CLASSIFICATION_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Observation:
    """One classified piece of evidence: the native event, the fact it became, and what the policy says.

    ``inferred_from`` is the stanza id of the displayed marker whose cumulative meaning produced this
    observation (the event's raw stanza is that marker); None for direct evidence. ``sender`` is the
    stanza's raw ``from`` attribute (kept raw: a bounce from a malformed address can't be parsed back).
    """

    event: NativeEvent
    fact: dict[str, Any]
    classification: Classification
    outbound: OutboundRecord | None
    inferred_from: str | None = None
    sender: str | None = None


ObservationSink = Callable[[Observation], None]
DeadLetterSink = Callable[[NativeEvent, str], None]


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
        receipt_timeout: timedelta | None = None,
        stop_suppression_enabled: bool = False,
    ) -> None:
        self._classifier = classifier
        self._commands = commands
        self._index = index
        self._sink = sink
        self._dead_letter = dead_letter
        self._receipt_timeout = receipt_timeout
        self._stop_suppression_enabled = stop_suppression_enabled
        self._presence: dict[str, PresenceTracker] = {}
        self._server_features: dict[str, frozenset[str]] = {}
        self._marked: set[str] = set()
        self._cache: dict[tuple[tuple[str, Any], ...], Classification] = {}
        self._cache_version: str | None = None

    def presence(self, account: str) -> PresenceTracker:
        """The presence/subscription/capability view of one account's contacts."""
        return self._presence.setdefault(account, PresenceTracker())

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
        fact = fact_for_event(OUTBOUND_FACT_KINDS[event.kind], self._context(event.account, outbound))
        return self._classified(event, fact, outbound)

    def _capabilities(self, event: NativeEvent) -> list[Observation]:
        features = event.detail.get("features")
        if not isinstance(features, list) or event.raw is None:
            return []
        jid = str(event.detail["jid"])
        advertised = frozenset(str(f) for f in features)
        if "@" not in jid and "/" not in jid:
            self._server_features[event.account] = advertised
        else:
            self.presence(event.account).set_features(jid, advertised)
        outbound = self._index.latest(conversation_of(jid))
        view = parse_stanza(event.raw)
        return self._from_view(event, view, self._context(event.account, outbound, view))

    # ----------------------------------------------------------------- inbound stanzas

    def _stanza(self, event: NativeEvent) -> list[Observation]:
        assert event.raw is not None
        view = parse_stanza(event.raw)
        if view.name == "presence":
            self._track_presence(event, view)
        outbound, reply_via = self._correlate(view)
        ctx = self._context(event.account, outbound, view, reply_via)
        if event.detail.get("authenticated_stream") is False:
            ctx = replace(ctx, authenticated_stream=False)
        observations = self._from_view(event, view, ctx)
        if view.marker in CUMULATIVE_MARKERS and outbound is not None and observations:
            observations.extend(self._inferred_markers(event, view, outbound, ctx))
        return observations

    def _track_presence(self, event: NativeEvent, view: StanzaView) -> None:
        if view.from_attr is None or view.type in SUBSCRIPTION_PRESENCE_TYPES:
            return
        availability = "unavailable" if view.type == "unavailable" else (view.presence_show or "available")
        self.presence(event.account).observe(view.from_attr, availability, event.observed_at,
                                             view.presence_priority, view.presence_status)

    def _correlate(self, view: StanzaView) -> tuple[OutboundRecord | None, str | None]:
        """The outbound stanza this stanza is about, and for replies how it was tied to it."""
        lookup = self._index.lookup
        if view.type == "error":
            return (lookup(view.id) if view.id else None), None
        if view.receipt_received:
            ref = view.receipt_id or view.id
            return (lookup(ref) if ref else None), None
        if view.marker is not None:
            return (lookup(view.marker_id) if view.marker_id else None), None
        if view.name != "message" or view.from_attr is None:
            return self._latest_to(view.from_attr), None
        if view.reply_id is not None and (referenced := lookup(view.reply_id)) is not None:
            return referenced, "reply_reference"
        if view.thread is not None and (threaded := lookup(view.thread)) is not None:
            return threaded, "thread"
        latest = self._latest_to(view.from_attr)
        return latest, ("conversation" if latest is not None else "none")

    def _latest_to(self, jid: str | None) -> OutboundRecord | None:
        return self._index.latest(conversation_of(jid)) if jid else None

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
        return CorrelationContext(
            outbound=outbound,
            known_resources=known,
            recipient_available=available,
            addressee_resource_count=(
                len(presence.available_resources(addressee)) if addressee and available is not None else None
            ),
            subscription=presence.subscription(addressee) if addressee else None,
            cap_receipts=presence.supports(capability_jid, FEATURE_RECEIPTS) if capability_jid else None,
            cap_markers=presence.supports(capability_jid, FEATURE_MARKERS) if capability_jid else None,
            cap_offline_storage=(
                FEATURE_OFFLINE_STORAGE in self._server_features[account]
                if account in self._server_features else None
            ),
            late=self._is_late(outbound, view),
            stop_suppression_enabled=self._stop_suppression_enabled,
            reply_via=reply_via,
        )

    def _is_late(self, outbound: OutboundRecord | None, view: StanzaView | None) -> bool:
        """Evidence about a stanza that arrives after the receipt timeout (§29): kept, and marked late."""
        if self._receipt_timeout is None or outbound is None or outbound.sent_at is None or view is None:
            return False
        if not (view.receipt_received or view.marker is not None):
            return False
        return datetime.now(outbound.sent_at.tzinfo) - outbound.sent_at > self._receipt_timeout

    def _from_view(self, event: NativeEvent, view: StanzaView, ctx: CorrelationContext) -> list[Observation]:
        try:
            fact = fact_from_stanza(view, ctx, self._commands)
        except NotEvidence:
            return []
        if view.marker is not None and ctx.outbound is not None and fact.get("correlated"):
            self._marked.add(ctx.outbound.stanza_id)
        return [self._classified(event, fact, ctx.outbound, sender=view.from_attr)]

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
                self._classified(event, fact, earlier, inferred_from=named.stanza_id, sender=view.from_attr)
            )
        return observations

    def _classified(
        self, event: NativeEvent, fact: dict[str, Any], outbound: OutboundRecord | None,
        inferred_from: str | None = None, sender: str | None = None,
    ) -> Observation:
        return Observation(event, fact, self._classify(fact), outbound, inferred_from, sender)

    def _classify(self, fact: dict[str, Any]) -> Classification:
        """Classify, memoized per policy version: most facts repeat exactly (every sm_ack of a chat message
        to a bare JID looks the same), and the rule engine costs far more than a dict lookup."""
        version = self._classifier.policy.version
        if version != self._cache_version or len(self._cache) >= CLASSIFICATION_CACHE_SIZE:
            self._cache.clear()
            self._cache_version = version
        key = tuple(sorted(fact.items()))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._classifier.classify(fact)
        return cached
