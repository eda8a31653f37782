"""The real provider: one long-lived slixmpp client per account, reporting every observation as a NativeEvent.

Evidence is raw: inbound messages and presences are forwarded as ``stanza_received`` with their XML; the
provider does not interpret them. What only the stream knows is reported here: stanzas written
(``message_sent``), per-stanza XEP-0198 acks (``sm_ack``), stanzas whose acceptance became unknowable because
the session ended without resumption (``acceptance_unknown``), health (``stream_*``,
``authenticated``, ``authentication_failed``, ``tls_failed``), roster subscription (``roster``) and
disco#info (``capabilities``: ``detail = {"jid", "features": [...]}``, raw = the iq result). Rooms,
PubSub nodes and archive queries are ``groups.GroupChannels``; groupchat messages share the message path
(written, acked, acceptance-unknown like any message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Message
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.acceptance import AcceptanceTracker
from xmpp_connect.providers.archive import ArchiveQuery, ArchiveResult
from xmpp_connect.providers.base import AccountConfig, Backoff, ChannelHealth, EventSink, Feature, RoomJoin
from xmpp_connect.providers.groups import GroupChannels
from xmpp_connect.providers.pubsub import NodeInfo
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    endpoint_type_of,
    groupchat_record_for,
    groupchat_xml,
    message_xml,
    new_stanza_id,
    receipt_answer,
    record_for,
)

log = logging.getLogger(__name__)

SM_REQUEST = "<r xmlns='urn:xmpp:sm:3'/>"
CAPS_NS = "http://jabber.org/protocol/caps"


class _AccountClient(ClientXMPP):
    """A ClientXMPP whose connection retries follow the account's backoff instead of slixmpp's 1/3/7/... s."""

    def __init__(self, jid: str, password: str, backoff: Backoff) -> None:
        super().__init__(jid, password)
        self.backoff = backoff
        self.failed_attempts = 0

    def reschedule_connection_attempt(self) -> asyncio.Future[Any] | None:
        if self._current_connection_attempt is None:
            return None
        self._connect_loop_wait = self.backoff.delay(self.failed_attempts)
        self.failed_attempts += 1
        self._current_connection_attempt = asyncio.ensure_future(self._connect_loop(), loop=self.loop)
        return self._current_connection_attempt


class SlixmppProvider:
    """§22 provider on slixmpp for one account: STARTTLS (verified by default), SASL, XEP-0198, XEP-0199,
    XEP-0045 rooms, XEP-0060 nodes, XEP-0313 archive queries."""

    provider_name = "slixmpp"
    supported_features = frozenset(
        {
            Feature.CLIENT_TO_SERVER,
            Feature.DELIVERY_RECEIPTS,
            Feature.DISPLAYED_MARKERS,
            Feature.STREAM_MANAGEMENT,
            Feature.CHAT_STATE_NOTIFICATIONS,
            Feature.MULTI_USER_CHAT,
            Feature.PUBSUB,
            Feature.MESSAGE_ARCHIVE_MANAGEMENT,
        }
    )

    def __init__(self, config: AccountConfig, sink: EventSink) -> None:
        self.config = config
        self.provider_account_ref = config.account
        self._sink = sink
        self._client: _AccountClient | None = None
        self._acceptance = AcceptanceTracker()
        self._raw_by_id: dict[str, str] = {}
        self._records: dict[str, OutboundRecord] = {}
        self._outbox: list[Message] = []
        self._ready = False
        self._stopping = False
        self._fatal: str | None = None
        self._ack_request_scheduled = False
        self._first_outcome: asyncio.Future[bool] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._discovered: set[str] = set()
        self._stream_status = "unknown"
        self._auth_status = "unknown"
        self._tls_status = "unknown"
        self._sm_active = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._context_known = asyncio.Event()
        self.groups = GroupChannels(config, self._require_client, self._emit, lambda: self._ready,
                                    self._spawn)

    # ----------------------------------------------------------------- lifecycle

    async def start(self, timeout: float = 10.0) -> bool:
        """Connect; True once the first session is ready, False on auth/TLS failure or timeout.

        After a timeout the provider keeps retrying in the background."""
        loop = asyncio.get_running_loop()
        self._first_outcome = loop.create_future()
        self._client = self._make_client()
        self._connect()
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._first_outcome), timeout)
        except TimeoutError:
            return False
        if ready:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._context_known.wait(), timeout)
        return ready

    async def stop(self, drain_timeout: float = 1.0) -> None:
        """Ask for a last ack, close the stream, report what stayed unacked as acceptance-unknown."""
        self._stopping = True
        for task in (self._ping_task, self._reconnect_task):
            if task is not None:
                task.cancel()
        client = self._client
        if client is None:
            return
        if self._ready and self._acceptance.awaiting:
            self._request_ack_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_drained(), drain_timeout)
        client.cancel_connection_attempt()
        if client.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
        self._report_session_lost()
        self._give_up_outbox("provider_stopped")
        self._ready = False
        self._stream_status = "disconnected"

    async def _wait_drained(self) -> None:
        while self._acceptance.awaiting:
            await asyncio.sleep(0.01)

    def _make_client(self) -> _AccountClient:
        config = self.config
        client = _AccountClient(config.jid, config.password, config.backoff)
        client.enable_direct_tls = False
        client.enable_plaintext = False
        if config.verify_tls:
            if config.ca_file is not None:
                client.ca_certs = Path(config.ca_file)
        else:
            unverified = ssl.create_default_context()
            unverified.check_hostname = False
            unverified.verify_mode = ssl.CERT_NONE
            client.ssl_context = unverified
        # slixmpp: auto_authorize True approves, None leaves the request unanswered; auto_subscribe asks back.
        client.auto_authorize = None if config.subscription_requests == "ignore" else True
        client.auto_subscribe = config.subscription_requests == "approve_and_subscribe"
        client.register_plugin("xep_0030")
        # window=0: slixmpp's own ack request goes out before the stanza it should cover; we send ours after.
        client.register_plugin("xep_0198", {"window": 0})
        client.register_plugin("xep_0199", {"keepalive": False})
        client.add_filter("out", self._on_outgoing)
        client.register_handler(Callback("xc inbound message", MatchXPath("{jabber:client}message"),
                                         self._on_inbound))
        client.register_handler(Callback("xc inbound presence", MatchXPath("{jabber:client}presence"),
                                         self._on_presence))
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("sm_enabled", self._on_sm_enabled)
        client.add_event_handler("session_resumed", self._on_session_resumed)
        client.add_event_handler("session_end", self._on_session_end)
        client.add_event_handler("sm_failed", self._on_sm_failed)
        client.add_event_handler("stanza_acked", self._on_stanza_acked)
        client.add_event_handler("disconnected", self._on_disconnected)
        client.add_event_handler("connection_failed", self._on_connection_failed)
        client.add_event_handler("stream_error", self._on_stream_error)
        client.add_event_handler("failed_auth", self._on_failed_auth)
        client.add_event_handler("no_auth", self._on_no_auth)
        client.add_event_handler("ssl_invalid_chain", self._on_tls_failure)
        client.add_event_handler("roster_update", self._on_roster_update)
        return client

    def _connect(self) -> None:
        assert self._client is not None
        self._stream_status = "reconnecting" if self._stream_status != "unknown" else "unknown"
        if self.config.host is not None:
            self._client.connect(self.config.host, self.config.port)
        else:
            self._client.connect()

    # ----------------------------------------------------------------- sending

    def send_message(self, message: OutboundMessage) -> OutboundRecord:
        """Queue one message; it is written as soon as a stream-managed session is ready."""
        stanza_id = message.stanza_id or new_stanza_id()
        record = record_for(message, stanza_id, datetime.now(UTC))
        self._queue_xml(message_xml(message, stanza_id), record)
        return record

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        """Queue one groupchat message to a room (join it first); the room's reflected copy is evidence."""
        stanza_id = message.stanza_id or new_stanza_id()
        record = groupchat_record_for(message, stanza_id, datetime.now(UTC))
        self._queue_xml(groupchat_xml(message, stanza_id), record)
        return record

    def _queue_xml(self, raw: str, record: OutboundRecord) -> None:
        try:
            element = ET.fromstring(raw)
        except ET.ParseError as error:
            raise ValueError(f"message cannot be encoded as XML: {error}") from None
        self._queue(Message(stream=self._require_client(), xml=element), record, raw)

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        """Join a MUC room with a bounded wait (see ``GroupChannels.join_room``)."""
        return await self.groups.join_room(room_jid, nick, password, message_id=message_id,
                                           attempt_id=attempt_id)

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None) -> OutboundRecord:
        """Publish one item; the service's iq result or error arrives as a ``stanza_received`` event."""
        return self.groups.publish(service_jid, node, item_id, payload_xml, message_id, attempt_id)

    async def node_info(self, service_jid: str, node: str) -> NodeInfo:
        return await self.groups.node_info(service_jid, node)

    async def fetch_items(self, service_jid: str, node: str, item_ids: tuple[str, ...] = ()) -> None:
        """Retrieve items of a node; the result arrives as a ``stanza_received`` event."""
        await self.groups.fetch_items(service_jid, node, item_ids)

    async def query_archive(self, query: ArchiveQuery) -> ArchiveResult:
        """Read the account's (or a room's) archive; each match arrives as a ``stanza_received`` event."""
        return await self.groups.query_archive(query)

    def send_raw_message(self, xml: str, stanza_id: str, to_jid: str) -> OutboundRecord:
        """Send a prebuilt <message/> as is: for addresses the JID parser refuses (they need evidence too)."""
        element = ET.fromstring(xml)
        record = OutboundRecord(
            stanza_id=stanza_id,
            to_jid=to_jid,
            endpoint_type=endpoint_type_of(to_jid),
            message_type=element.get("type", "normal"),
            origin_id=stanza_id,
            receipt_requested=element.find("{urn:xmpp:receipts}request") is not None,
            markable=element.find("{urn:xmpp:chat-markers:0}markable") is not None,
            sent_at=datetime.now(UTC),
        )
        self._queue(Message(stream=self._require_client(), xml=element), record, xml)
        return record

    def _require_client(self) -> _AccountClient:
        if self._client is None:
            raise RuntimeError(f"provider for account {self.config.account!r} is not started")
        return self._client

    def _queue(self, stanza: Message, record: OutboundRecord, raw: str) -> None:
        self._records[record.stanza_id] = record
        self._raw_by_id[record.stanza_id] = raw
        if self._fatal is not None or self._stopping:
            self._outbox.append(stanza)
            self._give_up_outbox(self._fatal or "provider_stopped")
        elif self._ready:
            self._require_client().send(stanza)
            self._schedule_ack_request()
        else:
            self._outbox.append(stanza)

    def _give_up_outbox(self, reason: str) -> None:
        """Messages that will never be written (no session will come): each reported as not sent."""
        pending, self._outbox = self._outbox, []
        for stanza in pending:
            stanza_id = stanza["id"]
            self._raw_by_id.pop(stanza_id, None)
            self._emit("message_not_sent", stanza_id=stanza_id,
                       detail={"reason": reason, "outbound": self._records.pop(stanza_id, None)})

    def _flush_outbox(self) -> None:
        pending, self._outbox = self._outbox, []
        client = self._require_client()
        for stanza in pending:
            client.send(stanza)
        self._schedule_ack_request()

    def _on_outgoing(self, stanza: Any) -> Any:
        """'out' filter: a tracked message is about to be written: note it, or hold it if the stream died."""
        if not isinstance(stanza, Message):
            return stanza
        stanza_id = stanza["id"]
        record = self._records.get(stanza_id)
        if record is None:
            return stanza
        client = self._require_client()
        if client.transport is None or not self._ready:
            self._outbox.append(stanza)
            return None
        if self._sm_active:
            self._acceptance.written(stanza_id)
            raw = self._raw_by_id.get(stanza_id)
        else:
            # Without stream management no ack will ever settle it: nothing to keep.
            raw = self._raw_by_id.pop(stanza_id, None)
            self._records.pop(stanza_id, None)
        # Emitted in the same synchronous step that hands the bytes to transport.write (slixmpp's send loop
        # runs the 'out' filters, then writes): the outbox records "written" from this, not from queueing.
        self._emit("message_sent", raw=raw, stanza_id=stanza_id,
                   detail={"outbound": record, "stream_management": self._sm_active})
        return stanza

    def _schedule_ack_request(self) -> None:
        """One <r/> after the stanzas queued within ``ack_request_delay`` (same FIFO send queue, so it
        follows them); the server's answer acks each of them by count."""
        if self._ack_request_scheduled or not self._sm_active:
            return
        self._ack_request_scheduled = True
        asyncio.get_running_loop().call_later(self.config.ack_request_delay, self._request_ack_now)

    def _request_ack_now(self) -> None:
        self._ack_request_scheduled = False
        client = self._client
        if client is not None and self._sm_active and client.plugin["xep_0198"].enabled_out:
            client.send(SM_REQUEST)

    # ----------------------------------------------------------------- session events

    def _on_session_start(self, _event: Any) -> None:
        client = self._require_client()
        self._acceptance.new_session()
        self._stream_status = "connected"
        self._auth_status = "authenticated"
        client.failed_attempts = 0
        transport = client.transport
        tls_active = transport is not None and transport.get_extra_info("ssl_object") is not None
        self._tls_status = "active" if tls_active else "unavailable"
        if not tls_active and self.config.require_tls:
            self._fail_fatally("tls_failed", {"reason": "starttls_not_negotiated"})
            return
        self._emit("authenticated", detail={"jid": str(client.boundjid)})
        features = client.plugin["feature_bind"].features
        self._sm_active = features is not None and "sm" in features["features"]
        if not self._sm_active:
            self._become_ready(resumed=False)
        self._spawn(self._after_session_start())

    async def _after_session_start(self) -> None:
        """Roster (subscription states), initial presence, the server's disco#info (offline storage)."""
        client = self._require_client()
        with contextlib.suppress(IqError, IqTimeout):
            await client.get_roster(timeout=10)
        client.send_presence()
        await self.discover(client.boundjid.domain)
        await self.groups.session_started()
        self._context_known.set()

    def _on_sm_enabled(self, _event: Any) -> None:
        self._sm_active = True
        self._become_ready(resumed=False)

    def _on_sm_failed(self, _event: Any) -> None:
        """A failed resumption ends the old session; a failed enable leaves a session without acks."""
        self._report_session_lost()
        if self._stream_status == "connected" and not self._ready:
            self._sm_active = False
            self._become_ready(resumed=False)

    def _on_session_resumed(self, _event: Any) -> None:
        self._sm_active = True
        self._stream_status = "connected"
        self._require_client().failed_attempts = 0
        self._become_ready(resumed=True)

    def _become_ready(self, resumed: bool) -> None:
        self._ready = True
        client = self._require_client()
        self._emit(
            "stream_connected",
            detail={
                "resumed": resumed,
                "stream_management": self._sm_active,
                "tls": self._tls_status,
                "tls_verified": self.config.verify_tls,
                "jid": str(client.boundjid),
            },
        )
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(True)
        self._flush_outbox()
        if resumed:
            self._request_ack_now()
        if self._ping_task is None or self._ping_task.done():
            self._ping_task = asyncio.ensure_future(self._ping_loop())

    def _on_session_end(self, _event: Any) -> None:
        self._report_session_lost()

    def _report_session_lost(self) -> None:
        for stanza_id in self._acceptance.session_lost():
            self._emit("acceptance_unknown", raw=self._raw_by_id.get(stanza_id), stanza_id=stanza_id,
                       detail={"outbound": self._records.get(stanza_id)})

    def _on_stanza_acked(self, stanza: Any) -> None:
        if not isinstance(stanza, Message):
            return
        stanza_id = stanza["id"]
        if self._acceptance.acked(stanza_id):
            self._emit("sm_ack", raw=self._raw_by_id.pop(stanza_id, None), stanza_id=stanza_id,
                       detail={"outbound": self._records.pop(stanza_id, None)})

    def _on_disconnected(self, reason: Any) -> None:
        self._ready = False
        self._sm_active = False
        will_retry = not self._stopping and self._fatal is None
        self._stream_status = "reconnecting" if will_retry else "disconnected"
        self._emit("stream_disconnected", detail={"reason": _describe(reason), "will_retry": will_retry})
        if will_retry:
            client = self._require_client()
            delay = self.config.backoff.delay(client.failed_attempts)
            client.failed_attempts += 1
            self._reconnect_task = asyncio.ensure_future(self._reconnect_after(delay))

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping and self._fatal is None:
            self._connect()

    def _on_connection_failed(self, error: Any) -> None:
        self._stream_status = "reconnecting"
        self._emit("stream_error", detail={"condition": "connection-failed", "reason": _describe(error),
                                           "will_retry": not self._stopping})

    def _on_stream_error(self, error: Any) -> None:
        self._emit("stream_error", raw=str(error), detail={"condition": error["condition"],
                                                          "will_retry": not self._stopping})

    def _on_failed_auth(self, failure: Any) -> None:
        self._auth_status = "failed"
        self._fail_fatally("authentication_failed", {"condition": failure["condition"] if failure else None})

    def _on_no_auth(self, _event: Any) -> None:
        """No SASL mechanism is acceptable: slixmpp refuses every mechanism on a stream without TLS."""
        self._auth_status = "failed"
        self._fail_fatally("authentication_failed", {"condition": "no-acceptable-mechanism",
                                                     "tls": self._tls_status})

    def _on_tls_failure(self, error: Any) -> None:
        self._tls_status = "failed"
        self._fail_fatally("tls_failed", {"reason": _describe(error)})

    def _fail_fatally(self, kind: str, detail: dict[str, object]) -> None:
        """A configuration-level failure: report it once, stop retrying (retrying cannot fix it)."""
        if self._fatal is not None:
            return
        self._fatal = kind
        self._stream_status = "failed"
        self._emit(kind, detail={**detail, "will_retry": False})
        self._give_up_outbox(kind)
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(False)
        client = self._require_client()
        client.cancel_connection_attempt()
        client.abort()

    async def _ping_loop(self) -> None:
        """XEP-0199 liveness: a ping that times out aborts the stream, which starts the reconnect."""
        client = self._require_client()
        while not self._stopping:
            await asyncio.sleep(self.config.ping_interval)
            if not self._ready:
                continue
            try:
                await client.plugin["xep_0199"].ping(timeout=self.config.ping_timeout)
            except IqTimeout:
                self._emit("stream_error", detail={"condition": "ping-timeout", "will_retry": True})
                client.abort()
            except IqError:
                continue

    # ----------------------------------------------------------------- inbound

    def _on_inbound(self, stanza: Any) -> None:
        self._emit("stanza_received", raw=str(stanza), stanza_id=stanza.xml.get("id"))
        answer = receipt_answer(stanza.xml)
        if answer is not None and self._ready:
            client = self._require_client()
            client.send(Message(stream=client, xml=answer))

    def _on_presence(self, stanza: Any) -> None:
        sender = stanza.xml.get("from", "")
        own = self._require_client().boundjid
        if sender.split("/", 1)[0].lower() == own.bare.lower() or self.groups.on_presence(stanza.xml):
            return
        self._emit("stanza_received", raw=str(stanza), stanza_id=stanza.xml.get("id"))
        if (
            self.config.discover_capabilities
            and "/" in sender
            and stanza.xml.get("type") in (None, "available")
            and sender not in self._discovered
        ):
            self._discovered.add(sender)
            self._spawn(self.discover(sender))

    def _on_roster_update(self, iq: Any) -> None:
        for jid, item in iq["roster"]["items"].items():
            self._emit("roster", raw=str(iq), detail={"jid": str(jid), "subscription": item["subscription"]})

    async def discover(self, jid: str, timeout: float = 5.0) -> None:
        """disco#info of a JID; the answer (or its error) arrives as a ``capabilities`` native event."""
        client = self._require_client()
        try:
            result = await client.plugin["xep_0030"].get_info(jid=JID(jid), timeout=timeout, cached=False)
        except IqError as error:
            self._emit("capabilities", raw=str(error.iq), detail={"jid": jid, "features": None,
                                                                  "error": error.condition})
            return
        except IqTimeout:
            self._emit("capabilities", detail={"jid": jid, "features": None, "error": "timeout"})
            return
        features = sorted(str(feature) for feature in result["disco_info"]["features"])
        self._emit("capabilities", raw=str(result), detail={"jid": jid, "features": features})

    # ----------------------------------------------------------------- health

    def health(self) -> ChannelHealth:
        degradations: list[str] = []
        if not self.config.verify_tls:
            degradations.append("tls_verification_disabled")
        if self._stream_status in ("reconnecting", "disconnected"):
            degradations.append("stream_down")
        if self._ready and not self._sm_active:
            degradations.append("stream_management_unavailable")
        if self._fatal is not None:
            status = "failing"
        elif self._ready and not degradations:
            status = "healthy"
        elif self._ready or self._stream_status == "reconnecting":
            status = "degraded"
        else:
            status = "unknown"
        reachability = {"connected": "healthy", "reconnecting": "unavailable", "failed": "unavailable"}
        return ChannelHealth(
            xmpp_account_ref=self.config.account,
            server_ref=self.config.host or self.config.jid.split("@", 1)[-1],
            status=status,
            stream_status=self._stream_status,
            authentication_status=self._auth_status,
            tls_status=self._tls_status,
            server_reachability=reachability.get(self._stream_status, "unknown"),
            supported_extensions=tuple(sorted(str(f) for f in self.supported_features)),
            known_degradations=tuple(degradations),
        )

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def bound_jid(self) -> str | None:
        return None if self._client is None else str(self._client.boundjid)

    @property
    def acceptance_unknown(self) -> frozenset[str]:
        return frozenset(self._acceptance.unknown)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run background work, keeping a reference until it is done (the loop only keeps weak ones)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _emit(
        self, kind: str, raw: str | None = None, stanza_id: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        event = NativeEvent(kind=kind, account=self.config.account, observed_at=datetime.now(UTC), raw=raw,
                            stanza_id=stanza_id, detail=detail or {})
        log.debug("native event %s account=%s stanza=%s", kind, self.config.account, stanza_id)
        try:
            self._sink(event)
        except Exception:
            log.exception("event sink failed for %s (account=%s stanza=%s)", kind, self.config.account,
                          stanza_id)


def _describe(reason: Any) -> str | None:
    """A short reason for health details: an exception's type name, else the text."""
    if reason is None:
        return None
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
