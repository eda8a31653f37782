"""Observation -> the records kept beside the evidence log: presence per resource (§15), receipts and markers
(§16), inbound messages (§17), room events (§18) and PubSub items (§19).

Records are keyed so that the same stanza seen twice is stored once while every resource keeps its own:
a receipt or marker by (original stanza id, sender full JID), an inbound message by (sender full JID,
stanza id, body). Privacy is the store's: metadata-only mode drops presence status texts and inbound bodies.
A record names our message only when its fact is correlated. A stanza handed in by an external bridge
(no server vouched for its sender) is recorded with low confidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from xmpp_connect.evidence.observation import Observation
from xmpp_connect.facts.presence import PRESENCE_VISIBLE_SUBSCRIPTIONS
from xmpp_connect.policy.commands import sanitize_text
from xmpp_connect.store.base import EvidenceStore
from xmpp_connect.store.records import (
    DeliveryReceipt,
    DisplayedMarker,
    InboundMessage,
    MucEvent,
    PresenceState,
    PubSubItem,
)
from xmpp_connect.xmpp.jids import bare, resource
from xmpp_connect.xmpp.stanzas import StanzaView, parse_stanza

SUBSCRIPTION_PRESENCE_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"})
MUC_MARKER_EVENTS = {"displayed": "displayed", "acknowledged": "acknowledged"}
MUC_BANNED, MUC_KICKED = 301, 307
CONFIDENCES = frozenset({"low", "medium", "high"})

Writer = Callable[[Observation, StanzaView], None]


class ObservedRecords:
    """Writes the records one observation stands for, in the tenant's store (no evidence: the log has it)."""

    def __init__(self, store: EvidenceStore, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self._writers: dict[str, Writer] = {
            "presence": self._presence,
            "receipt": self._receipt,
            "marker": self._marker,
            "muc_marker": self._muc_marker,
            "inbound_message": self._inbound,
            "muc_message": self._muc_message,
            "muc_occupant": self._muc_occupant,
            "muc_reflection": self._muc_reflection,
            "pubsub_published": self._pubsub_items,
            "pubsub_notification": self._pubsub_items,
        }
        self._parsed: tuple[str, StanzaView] | None = None

    def __call__(self, observation: Observation) -> None:
        writer = self._writers.get(str(observation.fact.get("kind")))
        raw = observation.event.raw
        if writer is not None and raw is not None:
            writer(observation, observation.view or self._view(raw))

    def _view(self, raw: str) -> StanzaView:
        """The parsed stanza; a cumulative marker yields several observations of one stanza, parsed once."""
        if self._parsed is None or self._parsed[0] != raw:
            self._parsed = (raw, parse_stanza(raw))
        return self._parsed[1]

    # -- §15 presence ------------------------------------------------------------------------------

    def _presence(self, observation: Observation, view: StanzaView) -> None:
        sender = view.from_attr
        show = observation.fact.get("presence_show")
        if not sender or show is None or view.type in SUBSCRIPTION_PRESENCE_TYPES:
            return
        subscription = observation.fact.get("subscription")
        if observation.fact.get("presence_is_availability") is False:
            return
        self.store.record_presence(
            PresenceState(
                tenant_id=self.tenant_id,
                bare_jid=bare(sender),
                availability=str(show),
                observed_at=_when(view, observation.event.observed_at),
                resource=resource(sender),
                priority=view.presence_priority,
                status_text=view.presence_status,
                subscription_state=str(subscription or "unknown"),
                confidence=_presence_confidence(observation, subscription),
            )
        )

    # -- §16 receipts and markers ------------------------------------------------------------------

    def _receipt(self, observation: Observation, view: StanzaView) -> None:
        original = view.receipt_id or view.id
        sender = view.from_attr or ""
        if not original:
            return
        self.store.record_receipt(
            DeliveryReceipt(
                tenant_id=self.tenant_id,
                receipt_id=_record_id("rcpt", original, sender),
                original_stanza_id=original,
                from_jid=sender,
                to_jid=view.to_attr or "",
                received_at=observation.event.observed_at,
                message_id=_message_id(observation),
                resource=resource(sender) if sender else None,
                confidence=_confidence(observation),
            )
        )

    def _marker(self, observation: Observation, view: StanzaView) -> None:
        """A marker names one stanza; a cumulative one is recorded again, inferred, for each earlier one."""
        inferred = observation.inferred_from is not None and observation.outbound is not None
        original = observation.outbound.stanza_id if inferred and observation.outbound else view.marker_id
        sender = view.from_attr or ""
        marker_type = view.marker or "unknown"
        if not original:
            return
        self.store.record_marker(
            DisplayedMarker(
                tenant_id=self.tenant_id,
                marker_id=_record_id("mrk", original, sender, marker_type),
                original_stanza_id=original,
                marker_type=marker_type,
                from_jid=sender,
                to_jid=view.to_attr or "",
                received_at=observation.event.observed_at,
                message_id=_message_id(observation),
                resource=resource(sender) if sender else None,
                confidence=_confidence(observation),
                inferred=inferred,
            )
        )

    def _muc_marker(self, observation: Observation, view: StanzaView) -> None:
        self._marker(observation, view)
        event_type = MUC_MARKER_EVENTS.get(view.marker or "")
        if event_type is not None:
            self._muc_event(observation, view, event_type)

    # -- §17 inbound messages ----------------------------------------------------------------------

    def _inbound(self, observation: Observation, view: StanzaView) -> None:
        sender = view.from_attr or ""
        self.store.record_inbound(
            InboundMessage(
                tenant_id=self.tenant_id,
                inbound_message_id=_record_id("inb", sender, _stanza_key(observation, view), view.body or ""),
                from_jid=sender,
                to_jid=view.to_attr or "",
                message_type=str(observation.fact.get("message_type", "normal")),
                received_at=observation.event.observed_at,
                command_classification=str(observation.fact.get("command", "none")),
                body_text=sanitize_text(view.body) if view.body else None,
                stanza_id=view.id,
                message_id=_message_id(observation),
            )
        )

    def _muc_message(self, observation: Observation, view: StanzaView) -> None:
        self._inbound(observation, view)
        self._muc_event(observation, view, "message_received")

    # -- §18 rooms ---------------------------------------------------------------------------------

    def _muc_occupant(self, observation: Observation, view: StanzaView) -> None:
        codes = view.muc_user.status_codes if view.muc_user else ()
        if view.type != "unavailable":
            event_type = "joined"
        elif MUC_BANNED in codes:
            event_type = "banned"
        elif MUC_KICKED in codes:
            event_type = "kicked"
        else:
            event_type = "left"
        self._muc_event(observation, view, event_type)

    def _muc_reflection(self, observation: Observation, view: StanzaView) -> None:
        """The room's copy of our message: the room accepted it (not that any occupant saw it)."""
        self._muc_event(observation, view, "message_sent")

    def _muc_event(self, observation: Observation, view: StanzaView, event_type: str) -> None:
        occupant = view.from_attr or ""
        real_jid = view.muc_user.item_jid if view.muc_user else None
        self.store.record_muc_event(
            MucEvent(
                tenant_id=self.tenant_id,
                muc_event_id=_record_id("muc", occupant, event_type, _stanza_key(observation, view)),
                room_jid=bare(occupant),
                event_type=event_type,
                occurred_at=_when(view, observation.event.observed_at),
                occupant_jid=real_jid,
                occupant_nick=resource(occupant) if occupant else None,
                message_id=_message_id(observation),
                confidence="medium" if observation.fact.get("occupant_mapping_reliable") else "low",
            )
        )

    # -- §19 PubSub --------------------------------------------------------------------------------

    def _pubsub_items(self, observation: Observation, view: StanzaView) -> None:
        """Our publish confirmed (iq result) or an item notified (event message), one record per item."""
        published = view.pubsub if view.name == "iq" else view.pubsub_event
        service = view.from_attr or ""
        if published is None or not published.node or not service:
            return
        outbound = observation.outbound
        correlation = {"stanza_id": outbound.stanza_id} if outbound and _correlated(observation) else {}
        for item_id in published.item_ids:
            self.store.record_pubsub_item(
                PubSubItem(
                    tenant_id=self.tenant_id,
                    service_jid=bare(service),
                    node_id=published.node,
                    item_id=item_id,
                    published_at=_when(view, observation.event.observed_at),
                    publisher_jid=view.to_attr if view.name == "iq" else None,
                    message_id=_message_id(observation),
                    correlation=correlation,
                )
            )


def _correlated(observation: Observation) -> bool:
    return observation.outbound is not None and observation.fact.get("correlated") is True


def _message_id(observation: Observation) -> str | None:
    """Our message the record is about, only when the fact is correlated with it."""
    return observation.outbound.message_id if observation.outbound and _correlated(observation) else None


def _authenticated(observation: Observation) -> bool:
    return observation.fact.get("sender_authenticated") is not False


def _presence_confidence(observation: Observation, subscription: object) -> str:
    """§15: confidence follows the subscription state: high when the server shows us the contact's presence,
    medium for directed presence we could not otherwise see, low for a sender no server vouched for."""
    if not _authenticated(observation):
        return "low"
    return "high" if subscription in PRESENCE_VISIBLE_SUBSCRIPTIONS else "medium"


def _confidence(observation: Observation) -> str:
    """The policy's confidence in this evidence; low for a sender no server vouched for."""
    confidence = observation.classification.assessment.confidence
    if not _authenticated(observation) or confidence not in CONFIDENCES:
        return "low"
    return confidence


def _stanza_key(observation: Observation, view: StanzaView) -> str:
    """The stanza's id; without one, its content and arrival time (a redelivery then counts again)."""
    if view.id:
        return view.id
    return f"{observation.event.observed_at.isoformat()}|{_digest(observation.event.raw or '')}"


def _when(view: StanzaView, observed_at: datetime) -> datetime:
    return view.delay_stamp or observed_at


def _record_id(prefix: str, *parts: str) -> str:
    return f"{prefix}_{_digest(chr(0).join(parts))}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
