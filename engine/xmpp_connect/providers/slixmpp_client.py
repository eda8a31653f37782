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
from collections.abc import Coroutine
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Message
from slixmpp.xmlstream.handler import Callback

from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.providers.archive import ArchiveQuery, ArchiveResult
from xmpp_connect.providers.base import ChannelHealth, EventSink, Feature, RoomJoin, SessionTuning
from xmpp_connect.providers.groups import GroupChannels
from xmpp_connect.providers.native_events import native_event
from xmpp_connect.providers.pubsub import NodeInfo
from xmpp_connect.providers.slixmpp_inbound import InboundStanzas
from xmpp_connect.providers.slixmpp_matchers import MatchRootTag
from xmpp_connect.providers.slixmpp_messages import chat_message, groupchat_message, prebuilt_message
from xmpp_connect.providers.slixmpp_outbound import OutboundStanzas
from xmpp_connect.providers.slixmpp_session import (
    AccountClient,
    SessionState,
    channel_health,
    describe,
    keep_alive,
    new_client,
)
from xmpp_connect.providers.slixmpp_text import as_written
from xmpp_connect.providers.stanza_builders import OutboundMessage
from xmpp_connect.xmpp.stanzas import StanzaView

log = logging.getLogger(__name__)


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

    def __init__(self, config: AccountConfig, sink: EventSink, tuning: SessionTuning | None = None) -> None:
        if config.password is None:
            raise ValueError(f"account {config.ref!r} has no password")
        self.config = config
        self.tuning = tuning or SessionTuning()
        self.provider_account_ref = config.ref
        self._sink = sink
        self._client: AccountClient | None = None
        self.state = SessionState()
        self.outbound = OutboundStanzas(self.state, lambda: self._client, self._emit,
                                        self.tuning.ack_request_delay)
        self._first_outcome: asyncio.Future[bool] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._context_known = asyncio.Event()
        self.groups = GroupChannels(config, self._require_client, self._emit, lambda: self.state.ready,
                                    self._spawn)
        self.inbound = InboundStanzas(self.tuning, self.state, self._require_client, self._emit, self.groups,
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
        self.state.stopping = True
        for task in (self._ping_task, self._reconnect_task):
            if task is not None:
                task.cancel()
        client = self._client
        if client is None:
            return
        if self.state.ready and self.outbound.acceptance.awaiting:
            self.outbound.request_ack_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbound.drained(), drain_timeout)
        client.cancel_connection_attempt()
        if client.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
        self.outbound.session_lost()
        self.groups.session_lost()
        self.outbound.give_up("provider_stopped")
        self.state.ready = False
        self.state.stream_status = "disconnected"

    def _make_client(self) -> AccountClient:
        client = new_client(self.config, self.tuning)
        client.add_filter("out", self._on_outgoing)
        client.add_filter("out_sce", as_written(client))
        client.register_handler(Callback("xc inbound message", MatchRootTag("{jabber:client}message"),
                                         self.inbound.on_message))
        client.register_handler(Callback("xc inbound presence", MatchRootTag("{jabber:client}presence"),
                                         self.inbound.on_presence))
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("sm_enabled", self._on_sm_enabled)
        client.add_event_handler("session_resumed", self._on_session_resumed)
        client.add_event_handler("session_end", self._on_session_end)
        client.add_event_handler("sm_failed", self._on_sm_failed)
        client.add_event_handler("stanza_acked", self.outbound.on_stanza_acked)
        client.add_event_handler("disconnected", self._on_disconnected)
        client.add_event_handler("connection_failed", self._on_connection_failed)
        client.add_event_handler("stream_error", self._on_stream_error)
        client.add_event_handler("failed_auth", self._on_failed_auth)
        client.add_event_handler("no_auth", self._on_no_auth)
        client.add_event_handler("ssl_invalid_chain", self._on_tls_failure)
        client.add_event_handler("roster_update", self.inbound.on_roster_update)
        return client

    def _on_outgoing(self, stanza: Any) -> Any:
        """The 'out' filter: messages, then publishes (one filter: slixmpp's send loop inspects each filter
        of each stanza it writes)."""
        stanza = self.outbound.on_outgoing(stanza)
        return None if stanza is None else self.groups.on_outgoing(stanza)

    def _connect(self) -> None:
        assert self._client is not None
        self.state.stream_status = "reconnecting" if self.state.stream_status != "unknown" else "unknown"
        self._client.connect(self.config.host, self.config.port)

    # ----------------------------------------------------------------- sending

    def send_message(self, message: OutboundMessage) -> OutboundRecord:
        """Queue one message; it is written as soon as a stream-managed session is ready."""
        return self._queue(*chat_message(message, self._require_client))

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        """Queue one groupchat message to a room (join it first); the room's reflected copy is evidence."""
        return self._queue(*groupchat_message(message, self._require_client))

    def _queue(self, stanza: Message, record: OutboundRecord, raw: str) -> OutboundRecord:
        self.outbound.queue(stanza, record, raw)
        return record

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        """Join a MUC room with a bounded wait (see ``GroupChannels.join_room``)."""
        return await self.groups.join_room(room_jid, nick, password, message_id=message_id,
                                           attempt_id=attempt_id)

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None, *,
                stanza_id: str | None = None) -> OutboundRecord:
        """Publish one item; the service's iq result or error arrives as a ``stanza_received`` event."""
        return self.groups.publish(service_jid, node, item_id, payload_xml, message_id, attempt_id,
                                   stanza_id=stanza_id)

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
        return self._queue(*prebuilt_message(xml, stanza_id, to_jid, self._require_client))

    def _require_client(self) -> AccountClient:
        if self._client is None:
            raise RuntimeError(f"provider for account {self.config.ref!r} is not started")
        return self._client

    # ----------------------------------------------------------------- session events

    def _on_session_start(self, _event: Any) -> None:
        client = self._require_client()
        self.outbound.acceptance.new_session()
        self.state.stream_status = "connected"
        self.state.auth_status = "authenticated"
        client.failed_attempts = 0
        transport = client.transport
        tls_active = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.state.tls_status = "active" if tls_active else "unavailable"
        if not tls_active and self.config.require_tls:
            self._fail_fatally("tls_failed", {"reason": "starttls_not_negotiated"})
            return
        self._emit("authenticated", detail={"jid": str(client.boundjid)})
        features = client.plugin["feature_bind"].features
        self.state.sm_active = features is not None and "sm" in features["features"]
        if not self.state.sm_active:
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
        self.state.sm_active = True
        self._become_ready(resumed=False)

    def _on_sm_failed(self, _event: Any) -> None:
        """A failed resumption ends the old session; a failed enable leaves a session without acks."""
        self.outbound.session_lost()
        self.groups.session_lost()
        if self.state.stream_status == "connected" and not self.state.ready:
            self.state.sm_active = False
            self._become_ready(resumed=False)

    def _on_session_resumed(self, _event: Any) -> None:
        self.state.sm_active = True
        self.state.stream_status = "connected"
        self._require_client().failed_attempts = 0
        self._become_ready(resumed=True)

    def _become_ready(self, resumed: bool) -> None:
        self.state.ready = True
        self.state.down_reported = False
        self.state.failures_while_down = 0
        client = self._require_client()
        self._emit(
            "stream_connected",
            detail={
                "resumed": resumed,
                "stream_management": self.state.sm_active,
                "tls": self.state.tls_status,
                "tls_verified": self.config.verify_tls,
                "jid": str(client.boundjid),
            },
        )
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(True)
        self.outbound.flush()
        self.groups.flush_publishes()
        if resumed:
            self.outbound.request_ack_now()
        if self._ping_task is None or self._ping_task.done():
            self._ping_task = asyncio.ensure_future(
                keep_alive(self._require_client(), self.state, self.tuning, self._stream_down))

    def _on_session_end(self, _event: Any) -> None:
        self.outbound.session_lost()
        self.groups.session_lost()

    def _on_disconnected(self, reason: Any) -> None:
        self.state.ready = False
        self.state.sm_active = False
        will_retry = not self.state.stopping and self.state.fatal is None
        self.state.stream_status = "reconnecting" if will_retry else "disconnected"
        self._stream_down("stream_disconnected", {"reason": describe(reason), "will_retry": will_retry})
        if will_retry:
            client = self._require_client()
            delay = self.tuning.backoff.delay(client.failed_attempts)
            client.failed_attempts += 1
            self._reconnect_task = asyncio.ensure_future(self._reconnect_after(delay))

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.state.stopping and self.state.fatal is None:
            self._connect()

    def _on_connection_failed(self, error: Any) -> None:
        self.state.stream_status = "reconnecting"
        self._stream_down("stream_error", {"condition": "connection-failed", "reason": describe(error),
                                           "will_retry": not self.state.stopping})

    def _on_stream_error(self, error: Any) -> None:
        detail: dict[str, object] = {"condition": error["condition"], "will_retry": not self.state.stopping}
        self._stream_down("stream_error", detail, raw=str(error))

    def _stream_down(self, kind: str, detail: dict[str, object], raw: str | None = None) -> None:
        """One outage, one fact: the stream-down fact is emitted on the transition from up to down; a further
        failure while the stream is still down (a failed reconnect, the disconnect after a stream error) is
        logged only. A give-up (``will_retry`` false) is its own fact: it changes the outage to a failure."""
        if self.state.down_reported and detail.get("will_retry") is not False:
            self.state.failures_while_down += 1
            log.info("account %s: still down (%s %s; failure %d of this outage)", self.config.ref, kind,
                     detail.get("condition") or detail.get("reason"), self.state.failures_while_down)
            return
        self.state.down_reported = True
        self._emit(kind, raw=raw, detail=detail)

    def _on_failed_auth(self, failure: Any) -> None:
        self.state.auth_status = "failed"
        self._fail_fatally("authentication_failed", {"condition": failure["condition"] if failure else None})

    def _on_no_auth(self, _event: Any) -> None:
        """No SASL mechanism is acceptable: slixmpp refuses every mechanism on a stream without TLS."""
        self.state.auth_status = "failed"
        self._fail_fatally("authentication_failed", {"condition": "no-acceptable-mechanism",
                                                     "tls": self.state.tls_status})

    def _on_tls_failure(self, error: Any) -> None:
        self.state.tls_status = "failed"
        self._fail_fatally("tls_failed", {"reason": describe(error)})

    def _fail_fatally(self, kind: str, detail: dict[str, object]) -> None:
        """A configuration-level failure: report it once, stop retrying (retrying cannot fix it)."""
        if self.state.fatal is not None:
            return
        self.state.fatal = kind
        self.state.stream_status = "failed"
        self._emit(kind, detail={**detail, "will_retry": False})
        self.outbound.give_up(kind)
        self.groups.give_up(kind)
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(False)
        client = self._require_client()
        client.cancel_connection_attempt()
        client.abort()

    async def discover(self, jid: str, timeout: float = 5.0) -> None:
        """disco#info of a JID; the answer (or its error) arrives as a ``capabilities`` native event."""
        await self.inbound.discover(jid, timeout)

    def health(self) -> ChannelHealth:
        return channel_health(self.config, self.state, self.supported_features)

    def stream_status(self) -> str:
        return self.state.stream_status

    @property
    def ready(self) -> bool:
        return self.state.ready

    @property
    def bound_jid(self) -> str | None:
        return None if self._client is None else str(self._client.boundjid)

    @property
    def acceptance_unknown(self) -> frozenset[str]:
        return frozenset(self.outbound.acceptance.unknown)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run background work, keeping a reference until it is done (the loop only keeps weak ones)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _emit(
        self, kind: str, raw: str | None = None, stanza_id: str | None = None,
        detail: dict[str, object] | None = None, view: StanzaView | None = None,
    ) -> None:
        event = native_event(kind, self.config.ref, raw, stanza_id, detail or {}, view)
        log.debug("native event %s account=%s stanza=%s", kind, self.config.ref, stanza_id)
        try:
            self._sink(event)
        except Exception:
            log.exception("event sink failed for %s (account=%s stanza=%s)", kind, self.config.ref,
                          stanza_id)
