"""The component provider (XEP-0114): the adapter connects to the server as an external component such as
``notify.example.net`` instead of logging in to a client account, and reports what it sees to the same sink.

What a component cannot observe is left out of ``supported_features`` on purpose: no roster presence (no
user's roster holds the component, so no presence arrives unless a user sends it), no stream management (a
XEP-0114 stream has no XEP-0198, so there are no per-stanza server acks: ``message_sent`` is the last thing
the server side says), no offline-storage knowledge. Every native event carries ``via_component: True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from slixmpp import JID, ComponentXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Message
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.providers.base import ChannelHealth, EventSink, Feature, RoomJoin, SessionTuning
from xmpp_connect.providers.stanza_builders import (
    OutboundMessage,
    endpoint_type_of,
    message_xml,
    new_stanza_id,
    record_for,
)

log = logging.getLogger(__name__)

COMPONENT_NS = "jabber:component:accept"


class ComponentProvider:
    """§22 provider over a XEP-0114 component stream; same native events as the client provider."""

    provider_name = "slixmpp-component"
    supported_features = frozenset(
        {
            Feature.COMPONENT_CONNECTION,
            Feature.DELIVERY_RECEIPTS,
            Feature.DISPLAYED_MARKERS,
            Feature.CHAT_STATE_NOTIFICATIONS,
        }
    )

    def __init__(self, config: AccountConfig, sink: EventSink, tuning: SessionTuning | None = None) -> None:
        if config.secret is None:
            raise ValueError(f"component account {config.ref!r} has no secret")
        self._secret = config.secret
        self.config = config
        self.tuning = tuning or SessionTuning()
        self.provider_account_ref = config.ref
        self._sink = sink
        self._client: ComponentXMPP | None = None
        self._ready = False
        self._stopping = False
        self._failed = False
        self._failures = 0
        self._down_reported = False
        self.failures_while_down = 0
        self._first_outcome: asyncio.Future[bool] | None = None
        self._reconnect: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> bool:
        """Connect and hand-shake; True once the component stream is up, False when refused or late."""
        self._first_outcome = asyncio.get_running_loop().create_future()
        client = ComponentXMPP(self.config.jid, self._secret.reveal(), self.config.host, self.config.port)
        client.register_plugin("xep_0030")
        for stanza in ("message", "presence"):
            matcher = MatchXPath(f"{{{COMPONENT_NS}}}{stanza}")
            client.register_handler(Callback(f"xc component {stanza}", matcher, self._on_inbound))
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("disconnected", self._on_disconnected)
        client.add_event_handler("stream_error", self._on_stream_error)
        self._client = client
        client.connect()
        try:
            return await asyncio.wait_for(asyncio.shield(self._first_outcome), timeout)
        except TimeoutError:
            return False

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        client = self._client
        if client is not None and client.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
        self._ready = False

    # ----------------------------------------------------------------- sending

    def send_message(self, message: OutboundMessage) -> OutboundRecord:
        """Write one message from the component's JID; without stream management, written is all we learn
        from the server side."""
        stanza_id = message.stanza_id or new_stanza_id()
        record = record_for(message, stanza_id, datetime.now(UTC))
        self._write(message_xml(message, stanza_id, sender=self.config.jid, namespace=COMPONENT_NS), record)
        return record

    def send_raw_message(self, xml: str, stanza_id: str, to_jid: str) -> OutboundRecord:
        record = OutboundRecord(stanza_id=stanza_id, to_jid=to_jid, endpoint_type=endpoint_type_of(to_jid),
                                origin_id=stanza_id, sent_at=datetime.now(UTC))
        self._write(xml, record)
        return record

    def _write(self, raw: str, record: OutboundRecord) -> None:
        if not self._ready or self._client is None:
            self._emit("message_not_sent", stanza_id=record.stanza_id,
                       detail={"reason": "stream_unavailable", "outbound": record})
            return
        self._client.send(Message(stream=self._client, xml=ET.fromstring(raw)))
        self._emit("message_sent", raw=raw, stanza_id=record.stanza_id,
                   detail={"outbound": record, "stream_management": False})

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        """Rooms are not offered over a component connection in this adapter."""
        return RoomJoin(room_jid, nick, joined=False, error_condition="feature_not_implemented")

    def send_groupchat(self, message: OutboundMessage) -> OutboundRecord:
        raise NotImplementedError("groupchat is not offered over a component connection: use an account")

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None, *,
                stanza_id: str | None = None) -> OutboundRecord:
        raise NotImplementedError("PubSub is not offered over a component connection: use an account")

    async def discover(self, jid: str) -> None:
        """disco#info of a JID from the component; the answer arrives as a ``capabilities`` event."""
        if self._client is None:
            return
        try:
            result = await self._client.plugin["xep_0030"].get_info(
                jid=JID(jid), ifrom=self.config.jid, cached=False, timeout=self.config.iq_timeout)
        except (IqError, IqTimeout) as error:
            self._emit("capabilities", detail={"jid": jid, "features": None, "error": type(error).__name__})
            return
        features = sorted(str(f) for f in result["disco_info"]["features"])
        self._emit("capabilities", raw=str(result), detail={"jid": jid, "features": features})

    # ----------------------------------------------------------------- stream events

    def _on_session_start(self, _event: Any) -> None:
        self._ready = True
        self._failures = 0
        self._down_reported = False
        self.failures_while_down = 0
        self._emit("authenticated", detail={"jid": self.config.jid})
        self._emit("stream_connected", detail={"component": True, "stream_management": False,
                                               "resumed": False, "jid": self.config.jid})
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(True)

    def _on_stream_error(self, error: Any) -> None:
        condition = error["condition"]
        if not self._ready and condition == "not-authorized":
            self._failed = True
            self._emit("authentication_failed", detail={"condition": condition, "will_retry": False})
            if self._first_outcome is not None and not self._first_outcome.done():
                self._first_outcome.set_result(False)
            return
        detail: dict[str, object] = {"condition": condition, "will_retry": not self._stopping}
        self._stream_down("stream_error", detail, str(error))

    def _on_disconnected(self, reason: Any) -> None:
        self._ready = False
        will_retry = not self._stopping and not self._failed
        self._stream_down("stream_disconnected", {"reason": str(reason) if reason else None,
                                                  "will_retry": will_retry})
        if will_retry:
            delay = self.tuning.backoff.delay(self._failures)
            self._failures += 1
            self._reconnect = asyncio.ensure_future(self._reconnect_after(delay))

    def _stream_down(self, kind: str, detail: dict[str, object], raw: str | None = None) -> None:
        """One outage, one fact (as the client provider): a further failure while the stream is still down is
        logged only; a give-up (``will_retry`` false) is its own fact."""
        if self._down_reported and detail.get("will_retry") is not False:
            self.failures_while_down += 1
            log.info("component %s: still down (%s; failure %d of this outage)", self.config.ref, kind,
                     self.failures_while_down)
            return
        self._down_reported = True
        self._emit(kind, raw=raw, detail=detail)

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping and self._client is not None:
            self._client.connect()

    def _on_inbound(self, stanza: Any) -> None:
        self._emit("stanza_received", raw=str(stanza), stanza_id=stanza.xml.get("id"))

    # ----------------------------------------------------------------- health

    def health(self) -> ChannelHealth:
        status = "failing" if self._failed else ("healthy" if self._ready else "degraded")
        stream = self.stream_status()
        authentication = "failed" if self._failed else ("authenticated" if self._ready else "unknown")
        return ChannelHealth(
            xmpp_account_ref=self.config.ref,
            server_ref=self.config.host,
            status=status,
            stream_status=stream,
            authentication_status=authentication,
            tls_status="unavailable",
            server_reachability="healthy" if self._ready else "unknown",
            supported_extensions=tuple(sorted(str(f) for f in self.supported_features)),
            known_degradations=("component: no roster presence", "component: no stream management acks"),
        )

    def stream_status(self) -> str:
        return "failed" if self._failed else ("connected" if self._ready else "disconnected")

    @property
    def ready(self) -> bool:
        return self._ready

    def _emit(self, kind: str, raw: str | None = None, stanza_id: str | None = None,
              detail: dict[str, object] | None = None) -> None:
        event = NativeEvent(kind=kind, account=self.config.ref, observed_at=datetime.now(UTC), raw=raw,
                            stanza_id=stanza_id, detail={**(detail or {}), "via_component": True})
        try:
            self._sink(event)
        except Exception:
            log.exception("event sink failed for %s (account=%s stanza=%s)", kind, self.config.ref,
                          stanza_id)
