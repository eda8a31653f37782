"""An account's messages from queueing to the server's XEP-0198 ack: held while no session is ready,
written when one is, acked by count, reported acceptance-unknown when a session ends unresumed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slixmpp.stanza import Message

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.providers.acceptance import AcceptanceTracker
from xmpp_connect.providers.slixmpp_session import AccountClient, SessionState

SM_REQUEST = "<r xmlns='urn:xmpp:sm:3'/>"


def message_id(stanza: Message) -> str:
    """``stanza["id"]`` of a message (its ``id`` attribute, "" when absent) read from its element: the
    stanza interface looks the key up through plugins and overrides first (~10k instructions, ~1k this way),
    and each message is read on being written and on being acked."""
    return stanza.xml.get("id") or ""

Emit = Callable[..., None]


class OutboundStanzas:
    """The provider's outbound messages and what became of each (``message_sent``, ``sm_ack``,
    ``acceptance_unknown``, ``message_not_sent``)."""

    def __init__(
        self,
        state: SessionState,
        client: Callable[[], AccountClient | None],
        emit: Emit,
        ack_request_delay: float,
    ) -> None:
        self.state = state
        self._client = client
        self._emit = emit
        self._ack_request_delay = ack_request_delay
        self.acceptance = AcceptanceTracker()
        self._raw_by_id: dict[str, str] = {}
        self._records: dict[str, OutboundRecord] = {}
        self._held: list[Message] = []
        self._ack_request_scheduled = False

    def queue(self, stanza: Message, record: OutboundRecord, raw: str) -> None:
        self._records[record.stanza_id] = record
        self._raw_by_id[record.stanza_id] = raw
        if self.state.fatal is not None or self.state.stopping:
            self._held.append(stanza)
            self.give_up(self.state.fatal or "provider_stopped")
        elif self.state.ready:
            self._require_client().send(stanza)
            self.schedule_ack_request()
        else:
            self._held.append(stanza)

    def give_up(self, reason: str) -> None:
        """Messages that will never be written (no session will come): each reported as not sent."""
        pending, self._held = self._held, []
        for stanza in pending:
            stanza_id = message_id(stanza)
            self._raw_by_id.pop(stanza_id, None)
            self._emit("message_not_sent", stanza_id=stanza_id,
                       detail={"reason": reason, "outbound": self._records.pop(stanza_id, None)})

    def flush(self) -> None:
        pending, self._held = self._held, []
        client = self._require_client()
        for stanza in pending:
            client.send(stanza)
        self.schedule_ack_request()

    def on_outgoing(self, stanza: Any) -> Any:
        """'out' filter: a tracked message is about to be written: note it, or hold it if the stream died."""
        if not isinstance(stanza, Message):
            return stanza
        stanza_id = message_id(stanza)
        record = self._records.get(stanza_id)
        if record is None:
            return stanza
        client = self._require_client()
        if client.transport is None or not self.state.ready:
            self._held.append(stanza)
            return None
        if self.state.sm_active:
            self.acceptance.written(stanza_id)
            raw = self._raw_by_id.get(stanza_id)
        else:
            # Without stream management no ack will ever settle it: nothing to keep.
            raw = self._raw_by_id.pop(stanza_id, None)
            self._records.pop(stanza_id, None)
        # Emitted in the same synchronous step that hands the bytes to transport.write (slixmpp's send loop
        # runs the 'out' filters, then writes): the outbox records "written" from this, not from queueing.
        self._emit("message_sent", raw=raw, stanza_id=stanza_id,
                   detail={"outbound": record, "stream_management": self.state.sm_active})
        return stanza

    def schedule_ack_request(self) -> None:
        """One <r/> after the stanzas queued within ``ack_request_delay`` (same FIFO send queue, so it
        follows them); the server's answer acks each of them by count."""
        if self._ack_request_scheduled or not self.state.sm_active:
            return
        self._ack_request_scheduled = True
        asyncio.get_running_loop().call_later(self._ack_request_delay, self.request_ack_now)

    def request_ack_now(self) -> None:
        self._ack_request_scheduled = False
        client = self._client()
        if client is not None and self.state.sm_active and client.plugin["xep_0198"].enabled_out:
            client.send(SM_REQUEST)

    def session_lost(self) -> None:
        for stanza_id in self.acceptance.session_lost():
            self._emit("acceptance_unknown", raw=self._raw_by_id.get(stanza_id), stanza_id=stanza_id,
                       detail={"outbound": self._records.get(stanza_id)})

    def on_stanza_acked(self, stanza: Any) -> None:
        if not isinstance(stanza, Message):
            return
        stanza_id = message_id(stanza)
        if self.acceptance.acked(stanza_id):
            self._emit("sm_ack", raw=self._raw_by_id.pop(stanza_id, None), stanza_id=stanza_id,
                       detail={"outbound": self._records.pop(stanza_id, None)})

    async def drained(self) -> None:
        """Until every written stanza is acked."""
        while self.acceptance.awaiting:
            await asyncio.sleep(0.01)

    def _require_client(self) -> AccountClient:
        client = self._client()
        if client is None:
            raise RuntimeError("provider is not started")
        return client
