"""Which stanza we sent a received stanza is about, in the order the attribution rules apply (errors, archive
results, receipts, markers, iq answers, PubSub notifications, a room's copy of ours, reply references,
threads, then the conversation's latest send), and how a reply was tied to it."""

from __future__ import annotations

from dataclasses import replace

from xmpp_connect.facts.outbound_index import OutboundIndex, conversation_of
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.xmpp.stanzas import StanzaView


class Correlator:
    """Looks received stanzas up in the index of what we sent; notes a room's stable id on our stanza."""

    def __init__(self, index: OutboundIndex) -> None:
        self._index = index

    def correlate(self, view: StanzaView) -> tuple[OutboundRecord | None, str | None]:
        """The outbound stanza this stanza is about, and for replies how it was tied to it."""
        lookup = self._index.lookup
        if view.type == "error":
            return (lookup(view.id) if view.id else None), None
        if view.archived is not None:
            return self._first_known(view.archived.origin_id, view.archived.id), None
        if view.receipt_received:
            ref = view.receipt_id or view.id
            return (lookup(ref) if ref else None), None
        if view.marker is not None:
            return (lookup(view.marker_id) if view.marker_id else None), None
        if view.name == "iq":
            fetched = view.pubsub.item_ids if view.pubsub is not None else ()
            return self._first_known(view.id, *fetched) or self._latest_to(view.from_attr), None
        if view.pubsub_event is not None:
            return self._first_known(*view.pubsub_event.item_ids), None
        if view.name != "message" or view.from_attr is None:
            return self._latest_to(view.from_attr), None
        if view.type == "groupchat" and (echo := self._first_known(view.origin_id, view.id)) is not None:
            return echo, None
        if view.reply_id is not None:
            referenced = lookup(view.reply_id)
            return referenced, ("reply_reference" if referenced is not None else "unknown_reference")
        if view.thread is not None and (threaded := lookup(view.thread)) is not None:
            return threaded, "thread"
        latest = self._latest_to(view.from_attr)
        if view.type == "groupchat":
            return latest, "none"
        return latest, ("conversation" if latest is not None else "none")

    def _first_known(self, *ids: str | None) -> OutboundRecord | None:
        """The outbound stanza the first known of these ids names."""
        return next((found for i in ids if i and (found := self._index.lookup(i)) is not None), None)

    def note_stable_id(self, view: StanzaView, outbound: OutboundRecord) -> OutboundRecord:
        """The room's reflected copy carries the stanza-id the room assigned (by = the room): remember it."""
        room = conversation_of(view.from_attr or "")
        assigned = next((sid.id for sid in view.stanza_ids if sid.by and conversation_of(sid.by) == room),
                        None)
        if assigned is None or assigned == outbound.stable_id:
            return outbound
        updated = self._index.set_stable_id(outbound.stanza_id, assigned)
        return updated or replace(outbound, stable_id=assigned)

    def _latest_to(self, jid: str | None) -> OutboundRecord | None:
        return self._index.latest(conversation_of(jid)) if jid else None


def answers_stanza(view: StanzaView, outbound: OutboundRecord) -> bool:
    """A one-to-one receipt or marker from the addressed account about a stanza we sent."""
    return (
        (view.receipt_received or view.marker is not None)
        and view.type != "groupchat"
        and view.from_attr is not None
        and conversation_of(view.from_attr) == conversation_of(outbound.to_jid)
    )


def is_reflection(view: StanzaView, outbound: OutboundRecord) -> bool:
    """A groupchat stanza carrying our stanza's id or origin-id: the room's copy of our message."""
    ours = {outbound.stanza_id, outbound.origin_id}
    return view.id in ours or view.origin_id in ours
