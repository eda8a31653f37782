"""Where correlation looks up the stanzas the adapter sent (the store implements the same protocol)."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from xmpp_connect.model.correlation import OutboundRecord


def conversation_of(jid: str) -> str:
    """A one-to-one conversation is keyed by the peer's bare JID, lower-cased."""
    return jid.split("/", 1)[0].lower()


class OutboundIndex(Protocol):
    """Outbound stanzas by id, and per conversation in send order."""

    def record(self, outbound: OutboundRecord) -> None:
        """Remember a sent stanza; recording the same stanza id again is a no-op."""

    def lookup(self, stanza_or_origin_id: str) -> OutboundRecord | None:
        """The stanza whose ``id``, XEP-0359 origin-id or recorded stable id is this value."""

    def set_stable_id(self, stanza_id: str, stable_id: str) -> OutboundRecord | None:
        """Remember the XEP-0359 stanza-id a room assigned to our stanza (from its reflected copy): room
        markers and replies name it. Returns the updated record; None when the stanza is unknown."""

    def markables_before(self, conversation: str, stanza_id: str) -> list[OutboundRecord]:
        """Markable stanzas sent to this conversation before ``stanza_id``, oldest first."""

    def latest(self, conversation: str) -> OutboundRecord | None:
        """The last stanza sent to this conversation (the open conversation a bare reply belongs to)."""


class InMemoryOutboundIndex:
    """An OutboundIndex held in dictionaries; for a single process and for tests."""

    def __init__(self) -> None:
        self._by_id: dict[str, OutboundRecord] = {}
        self._by_conversation: dict[str, list[OutboundRecord]] = {}

    def record(self, outbound: OutboundRecord) -> None:
        if outbound.stanza_id in self._by_id:
            return
        self._by_id[outbound.stanza_id] = outbound
        if outbound.origin_id:
            self._by_id.setdefault(outbound.origin_id, outbound)
        self._by_conversation.setdefault(conversation_of(outbound.to_jid), []).append(outbound)

    def lookup(self, stanza_or_origin_id: str) -> OutboundRecord | None:
        return self._by_id.get(stanza_or_origin_id)

    def set_stable_id(self, stanza_id: str, stable_id: str) -> OutboundRecord | None:
        known = self._by_id.get(stanza_id)
        if known is None:
            return None
        if known.stable_id == stable_id:
            return known
        updated = replace(known, stable_id=stable_id)
        for key in (known.stanza_id, known.origin_id, stable_id):
            if key is not None:
                self._by_id[key] = updated
        sent = self._by_conversation[conversation_of(known.to_jid)]
        sent[sent.index(known)] = updated
        return updated

    def markables_before(self, conversation: str, stanza_id: str) -> list[OutboundRecord]:
        sent = self._by_conversation.get(conversation.lower(), [])
        ids = [record.stanza_id for record in sent]
        if stanza_id not in ids:
            return []
        return [record for record in sent[: ids.index(stanza_id)] if record.markable]

    def latest(self, conversation: str) -> OutboundRecord | None:
        sent = self._by_conversation.get(conversation.lower())
        return sent[-1] if sent else None
