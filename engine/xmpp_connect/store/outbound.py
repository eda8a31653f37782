"""The store seen through correlation's OutboundIndex protocol, for one tenant and sending account."""

from __future__ import annotations

from dataclasses import replace

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.store.base import EvidenceStore
from xmpp_connect.store.records import XmppStanza


class StoreOutboundIndex:
    """An ``outbound_index.OutboundIndex`` backed by the store, so correlation survives restarts and
    replicas."""

    def __init__(self, store: EvidenceStore, tenant_id: str, account_jid: str = "") -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._account_jid = account_jid

    def record(self, outbound: OutboundRecord) -> None:
        """Remember a sent stanza; recording the same stanza id again is a no-op (not even a record built
        when the store recorded it lately: the pipeline records it at every event that carries it)."""
        if self._store.stanza_recorded_lately(self._tenant_id, outbound.stanza_id):
            return
        self._store.record_stanza(
            XmppStanza(
                tenant_id=self._tenant_id,
                stanza_ref=outbound.stanza_id,
                direction="outbound",
                stanza_type="message",
                from_jid=self._account_jid,
                to_jid=outbound.to_jid,
                message_type=outbound.message_type,
                endpoint_type=outbound.endpoint_type,
                stanza_id=outbound.stanza_id,
                origin_id=outbound.origin_id,
                stable_id=outbound.stable_id,
                message_id=outbound.message_id,
                attempt_id=outbound.attempt_id,
                receipt_requested=outbound.receipt_requested,
                markable=outbound.markable,
                sent_at=outbound.sent_at,
            )
        )

    def lookup(self, stanza_or_origin_id: str) -> OutboundRecord | None:
        """The stanza whose ``id``, XEP-0359 origin-id or recorded stable id is this value (the latest sent
        if several)."""
        value = stanza_or_origin_id
        found = self._store.find_outbound(self._tenant_id, stanza_id=value, origin_id=value, stable_id=value)
        return found[-1] if found else None

    def set_stable_id(self, stanza_id: str, stable_id: str) -> OutboundRecord | None:
        """Remember the XEP-0359 stanza-id a room assigned to our stanza; None when the stanza is unknown."""
        found = self._store.find_outbound(self._tenant_id, stanza_id=stanza_id)
        if not found:
            return None
        self._store.set_stable_id(self._tenant_id, stanza_id, stable_id)
        return replace(found[-1], stable_id=stable_id)

    def markables_before(self, conversation: str, stanza_id: str) -> list[OutboundRecord]:
        return self._store.markables_before(self._tenant_id, conversation, stanza_id)

    def latest(self, conversation: str) -> OutboundRecord | None:
        return self._store.latest_outbound(self._tenant_id, conversation)
