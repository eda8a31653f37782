"""Handing an accepted send to its account's provider: the outbound record first, then the stanza (or the
PubSub item), then its timers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.providers.base import RoomJoin, XmppProvider
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    PubSubItem,
    publish_record_for,
)
from xmpp_connect.sending.bodies import atom_entry
from xmpp_connect.sending.ids import attempt_id, message_id
from xmpp_connect.sending.outbox import Outbox
from xmpp_connect.sending.ports import ActionStore
from xmpp_connect.sending.targets import (
    TYPED_ENDPOINTS,
    endpoint_type,
    message_type,
    seconds,
    target_jid,
    timestamp,
)
from xmpp_connect.sending.timers import SendTimers
from xmpp_connect.store.outbox import OutboxEntry
from xmpp_connect.store.records import IdempotentOperation, XmppStanza
from xmpp_connect.xmpp.jids import bare, is_valid_jid


@dataclass(frozen=True)
class HandOver:
    """Hands an accepted outbox entry to the provider. ``reserve`` it once its records are written (before
    awaiting their durability): from then on nothing else in this process writes it (a replay of its key
    finds it in flight), until it is handed over or ``release``d (its records were not made durable)."""

    outbox: Outbox
    stanza_id: str
    account: str
    request: Mapping[str, Any]
    send: Callable[[], None]

    def reserve(self) -> None:
        self.outbox.handed_over(self.stanza_id, self.account, self.request)

    def release(self) -> None:
        self.outbox.settled(self.stanza_id)

    def __call__(self) -> None:
        self.outbox.handed_over(self.stanza_id, self.account, self.request)
        self.send()


class Dispatcher:
    """Writes accepted sends to the wire through the account's provider."""

    def __init__(
        self,
        store: ActionStore,
        providers: Mapping[str, XmppProvider],
        account_jids: Mapping[str, str],
        clock: Callable[[], datetime],
        timers: SendTimers | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.account_jids = account_jids
        self.clock = clock
        self.timers = timers
        self.outbox = outbox
        if outbox is not None:
            outbox.write = self.write_from_outbox

    def dispatch(
        self,
        tenant_id: str,
        account: str,
        request: Mapping[str, Any],
        body: str,
        stanza_id: str,
        message_id: str,
        attempt_id: str,
    ) -> None:
        """Hand the message (or PubSub item) to the account's provider, then start its timers."""
        target = request.get("target_endpoint") or {}
        to_jid = target_jid(target)
        to_type = endpoint_type(target, to_jid)
        options = request.get("options") or {}
        provider = self.providers[account]
        from_jid = self.account_jids[account]
        one_to_one = to_type not in TYPED_ENDPOINTS
        outbound = OutboundMessage(
            to_jid=to_jid,
            body=body,
            message_type=message_type(target, options.get("message_type", "chat")),
            request_receipt=one_to_one and options.get("request_receipt", True),
            markable=one_to_one and options.get("request_displayed", True),
            stanza_id=stanza_id,
            message_id=message_id,
            attempt_id=attempt_id,
        )
        outboxed = self.outbox is not None and self.outbox.in_flight(stanza_id)
        if to_type == "pubsub_node":
            # The item id and the iq id stay the same when the outbox publishes it again (a new attempt).
            item_id = (request.get("item") or {}).get("item_id") or stanza_id
            is_item = request.get("action_type") == "feed.publish_item"
            payload = body if is_item else atom_entry({"title": body})
            item = PubSubItem(to_jid, target["value"], item_id, payload, message_id, attempt_id)
            # The publish record's origin id is the item id: subscriber notifications correlate on it.
            self._record_outbound(tenant_id, from_jid, publish_record_for(item, stanza_id, self.clock()),
                                  "iq")
            provider.publish(to_jid, target["value"], item_id, payload, message_id, attempt_id,
                             stanza_id=stanza_id)
        else:
            self._record_message(tenant_id, from_jid, outbound, to_type)
            _send_to(provider, to_type, outbound)
        if outboxed:
            return  # the outbox starts its timers when the stanza is written (sending/outbox.py)
        self._start_timers(tenant_id, request, outbound)

    def stream_status(self, account: str) -> str | None:
        """The account's stream status (``connected``, ...); None when this service has no such account.
        A send reads it once: nothing it does before the hand-over awaits, so the status cannot move."""
        provider = self.providers.get(account)
        return None if provider is None else provider.stream_status()

    def holds(self, account: str, status: str | None) -> bool:
        """Whether a send on this account is accepted and held while its stream is down: the account holds,
        and its stream (``status``, as read for this send) may come back (a failed account, e.g. refused
        credentials, won't)."""
        return (self.outbox is not None and self.outbox.holds(account) and status is not None
                and status != "failed")

    def through_outbox(
        self,
        tenant_id: str,
        account: str,
        request: Mapping[str, Any],
        body: str,
        stanza_id: str,
        message_id: str,
        attempt_id: str,
        accepted_at: datetime,
        status: str | None,
    ) -> HandOver | None:
        """Put an accepted send in the outbox (in the caller's transaction); the returned call hands it to
        the provider. None when someone here already did, when another replica owns the account (its owner,
        woken by the outbox, writes it), or when the stream (``status``, as read for this send) is down:
        then it is held and the next session writes it."""
        outbox = self.outbox
        assert outbox is not None
        entry = outbox.accept(tenant_id, account, stanza_id, message_id, attempt_id, request, body,
                              accepted_at)
        if not outbox.should_write(entry) or not outbox.may_send(account):
            return None
        if status != "connected":
            outbox.hold(entry)
            return None
        outbox.handing(entry)
        send = partial(self.dispatch, tenant_id, account, request, body, stanza_id, message_id, attempt_id)
        return HandOver(outbox, stanza_id, account, request, send)

    def write_from_outbox(self, entry: OutboxEntry) -> None:
        """The outbox writes an entry's current attempt (after a restart, a lost session, a held wait)."""
        body = entry.body or ""
        self.dispatch(entry.tenant_id, entry.account_ref, entry.request, body, entry.stanza_id,
                      entry.message_id, entry.attempt_id)

    async def join_room_of(
        self, tenant: TenantConfig, request: Mapping[str, Any], op: IdempotentOperation
    ) -> RoomJoin | None:
        """Join the room a groupchat goes to; a failed join is not a refusal: the room's answer to the
        message is the evidence (item-not-found, not-acceptable, forbidden)."""
        target = request.get("target_endpoint") or {}
        account = request.get("account") or tenant.default_account
        room = target_jid(target)
        if (
            target.get("endpoint_type") != "muc_room_jid"
            or account not in self.providers
            or not is_valid_jid(room)
        ):
            return None
        nick = (request.get("options") or {}).get("nick") or bare(self.account_jids[account]).partition("@")[
            0
        ]
        return await self.providers[account].join_room(
            bare(room), nick, message_id=message_id(op.operation_id),
            attempt_id=attempt_id(op.operation_id),
        )

    def _start_timers(self, tenant_id: str, request: Mapping[str, Any], outbound: OutboundMessage) -> None:
        """Receipt timeout (per request, else the configured default), optional marker timeout, expiry."""
        if self.timers is None or outbound.message_id is None:
            return
        options = request.get("options") or {}
        sent_at = self.clock()
        message_id, attempt_id = outbound.message_id, outbound.attempt_id
        if outbound.request_receipt:
            timeout = seconds(options.get("receipt_timeout_s"))
            self.timers.schedule_receipt_timeout(tenant_id, message_id, sent_at, timeout, attempt_id)
        if outbound.markable and options.get("marker_timeout_s") is not None:
            timeout = seconds(options["marker_timeout_s"])
            self.timers.schedule_marker_timeout(tenant_id, message_id, sent_at, timeout, attempt_id)
        if request.get("expires_at"):
            self.timers.schedule_expiry(tenant_id, message_id, timestamp(request["expires_at"]))

    def _record_message(self, tenant_id: str, from_jid: str, sent: OutboundMessage, to_type: str) -> None:
        """Remember the message as sent (the stanza ``record_for`` describes, to the endpoint type of the
        request's target), built only when the store did not record it lately."""
        stanza_id, sent_at = sent.stanza_id, self.clock()
        assert stanza_id is not None
        if self.store.stanza_recorded_lately(tenant_id, stanza_id):
            return
        self.store.record_stanza(
            XmppStanza(
                tenant_id=tenant_id,
                stanza_ref=stanza_id,
                direction="outbound",
                stanza_type="message",
                from_jid=from_jid,
                to_jid=sent.to_jid,
                message_type=sent.message_type,
                endpoint_type=to_type,
                stanza_id=stanza_id,
                origin_id=stanza_id,
                message_id=sent.message_id,
                attempt_id=sent.attempt_id,
                receipt_requested=sent.request_receipt,
                markable=sent.markable,
                sent_at=sent_at,
            )
        )

    def _record_outbound(self, tenant_id: str, from_jid: str, sent: OutboundRecord, stanza_type: str) -> None:
        """Remember the stanza as sent, so even the fastest answer correlates."""
        self.store.record_stanza(
            XmppStanza(
                tenant_id=tenant_id,
                stanza_ref=sent.stanza_id,
                direction="outbound",
                stanza_type=stanza_type,
                from_jid=from_jid,
                to_jid=sent.to_jid,
                message_type=sent.message_type,
                endpoint_type=sent.endpoint_type,
                stanza_id=sent.stanza_id,
                origin_id=sent.origin_id,
                message_id=sent.message_id,
                attempt_id=sent.attempt_id,
                receipt_requested=sent.receipt_requested,
                markable=sent.markable,
                sent_at=sent.sent_at or self.clock(),
            )
        )


def _send_to(provider: XmppProvider, to_type: str, outbound: OutboundMessage) -> None:
    if to_type == "muc_room_jid":
        provider.send_groupchat(outbound)
    else:
        provider.send_message(outbound)
