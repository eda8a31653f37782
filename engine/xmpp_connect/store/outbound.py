"""The store seen through correlation's OutboundIndex protocol, for one tenant and sending account."""

from __future__ import annotations

from xmpp_connect.correlation import OutboundRecord
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
        """Remember a sent stanza; recording the same stanza id again is a no-op."""
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
                message_id=outbound.message_id,
                attempt_id=outbound.attempt_id,
                receipt_requested=outbound.receipt_requested,
                markable=outbound.markable,
                sent_at=outbound.sent_at,
            )
        )

    def lookup(self, stanza_or_origin_id: str) -> OutboundRecord | None:
        """The stanza whose ``id`` or XEP-0359 origin-id is this value (the latest sent if several)."""
        found = self._store.find_outbound(
            self._tenant_id, stanza_id=stanza_or_origin_id, origin_id=stanza_or_origin_id
        )
        return found[-1] if found else None

    def markables_before(self, conversation: str, stanza_id: str) -> list[OutboundRecord]:
        return self._store.markables_before(self._tenant_id, conversation, stanza_id)

    def latest(self, conversation: str) -> OutboundRecord | None:
        return self._store.latest_outbound(self._tenant_id, conversation)
