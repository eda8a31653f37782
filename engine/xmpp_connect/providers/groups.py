"""Group and system channels of one slixmpp client session: MUC rooms (XEP-0045), PubSub nodes (XEP-0060)
and the account's message archive (XEP-0313 with XEP-0059 paging).

Like the rest of the provider it reports raw observations as native events and interprets nothing:
``room_join_sent`` (detail ``outbound``: the join presence as an OutboundRecord, so a refusal correlates),
``room_self_presence`` (our own occupant presence: never occupant evidence), ``message_sent`` when a publish
iq is written, ``stanza_received`` for iq results and errors, ``capabilities`` for room and node disco#info.
Every wait is bounded by the account's ``room_join_timeout`` or ``iq_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as PlainET
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from slixmpp import JID, ClientXMPP, Iq
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_connect.config.settings import AccountConfig, NodeConfig, RoomConfig
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.providers.archive import ArchiveQuery, ArchiveResult, page_end, query_element
from xmpp_connect.providers.base import RoomJoin
from xmpp_connect.providers.pubsub import (
    NodeInfo,
    configure_request,
    create_element,
    items_request,
    node_models,
    subscribe_element,
)
from xmpp_connect.providers.rooms import (
    STATUS_SELF,
    JoinAnswer,
    JoinWaiter,
    config_query,
    destroy_query,
    join_element,
    status_codes,
)
from xmpp_connect.providers.stanza_builders import PubSubItem, new_stanza_id, publish_record_for, publish_xml
from xmpp_connect.xmpp.stanzas import room_anonymity

log = logging.getLogger(__name__)


class Emit(Protocol):
    def __call__(self, kind: str, raw: str | None = None, stanza_id: str | None = None,
                 detail: dict[str, object] | None = None) -> None: ...


def _snake(condition: str) -> str:
    return condition.replace("-", "_")


class GroupChannels:
    """Rooms, nodes and archive queries over one account's client; ``ready`` says whether a session is up."""

    def __init__(self, config: AccountConfig, client: Callable[[], ClientXMPP], emit: Emit,
                 ready: Callable[[], bool], spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self._config = config
        self._client = client
        self._emit = emit
        self._ready = ready
        self._spawn = spawn
        self._joins = JoinWaiter()
        self.joined: dict[str, str] = {}
        """Rooms we are an occupant of now: bare room JID -> our nick."""
        self._room_joins: dict[str, RoomJoin] = {}
        """The join that made us an occupant, per room in ``joined``."""
        self._publishing: dict[str, tuple[OutboundRecord, str]] = {}
        """Publishes not answered yet (record and iq XML), by iq id; waiting for a session or sent."""
        self._answers: dict[str, asyncio.Future[Any]] = {}
        """The answer each sent publish awaits, by iq id."""

    # ----------------------------------------------------------------- session

    async def session_started(self) -> None:
        """A fresh session has no room presence: join the configured rooms, prepare the configured nodes."""
        self.joined.clear()
        for room in self._config.rooms:
            if room.join_at_start:
                await self.join_room(room.room_jid, room.nick)
        for node in self._config.nodes:
            await self.ensure_node(node)
            if node.subscribe:
                await self.subscribe(node.service_jid, node.node)

    def on_presence(self, presence: PlainET.Element) -> bool:
        """Settle a pending join; True when the presence is our own occupant presence (not evidence)."""
        self._joins.offer(presence)
        if STATUS_SELF not in status_codes(presence):
            return False
        room = presence.get("from", "").split("/", 1)[0].lower()
        if presence.get("type") == "unavailable":
            self.joined.pop(room, None)
        self._emit("room_self_presence", raw=PlainET.tostring(presence, encoding="unicode"),
                   detail={"room": room})
        return True

    # ----------------------------------------------------------------- rooms

    async def join_room(self, room_jid: str, nick: str, password: str | None = None, *,
                        message_id: str | None = None, attempt_id: str | None = None) -> RoomJoin:
        room = room_jid.split("/", 1)[0].lower()
        configured = self._config.room(room)
        settings = configured or RoomConfig(room_jid=room, nick=nick)
        nick = settings.nick if configured is not None else nick
        if room in self.joined and room in self._room_joins:
            # Still an occupant: joining again would change nothing but replay every occupant's presence.
            return self._room_joins[room]
        if not self._ready():
            return RoomJoin(room, nick, joined=False, error_condition="stream_unavailable")
        stanza_id = new_stanza_id()
        record = OutboundRecord(stanza_id=stanza_id, to_jid=room, endpoint_type="muc_room_jid",
                                message_type="groupchat", message_id=message_id, attempt_id=attempt_id,
                                sent_at=datetime.now(UTC))
        self._emit("room_join_sent", stanza_id=stanza_id, detail={"outbound": record})
        presence = self._client().make_presence(pto=f"{room}/{nick}")
        presence["id"] = stanza_id
        configured_password = None if settings.password is None else settings.password.reveal()
        presence.append(join_element(password if password is not None else configured_password,
                                     settings.history_stanzas))
        answer = self._joins.expect(room)
        presence.send()
        try:
            joined = await _bounded(answer, self._config.room_join_timeout)
        finally:
            self._joins.forget(room)
        if joined is None:
            return RoomJoin(room, nick, joined=False, error_condition="timeout")
        if not joined.joined:
            return RoomJoin(room, nick, joined=False, error_condition=joined.error_condition)
        if joined.created:
            refused = await self._set_up_new_room(room, settings)
            if refused is not None:
                return RoomJoin(room, nick, joined=False, error_condition=refused, created=True)
        self.joined[room] = nick
        features = await self.discover_features(room)
        self._room_joins[room] = RoomJoin(room, nick, joined=True, room_anonymity=room_anonymity(features),
                                          features=features, created=joined.created)
        return self._room_joins[room]

    async def _set_up_new_room(self, room: str, settings: RoomConfig) -> str | None:
        """Configure a room this join created (which unlocks it); or destroy it when we may not create
        rooms, reporting it missing. The error condition that stopped it, else None."""
        if not settings.create:
            await self._iq_set(room, destroy_query())
            return "item_not_found"
        return await self._iq_set(room, config_query(settings))

    async def discover_features(self, jid: str, node: str | None = None) -> frozenset[str]:
        """disco#info of a room, service or node, reported as a ``capabilities`` native event."""
        client = self._client()
        try:
            result = await client.plugin["xep_0030"].get_info(jid=JID(jid), node=node, cached=False,
                                                              timeout=self._config.iq_timeout)
        except IqError as error:
            self._emit("capabilities", raw=str(error.iq), detail={"jid": jid, "node": node, "features": None,
                                                                  "error": error.condition})
            return frozenset()
        except IqTimeout:
            self._emit("capabilities", detail={"jid": jid, "node": node, "features": None,
                                               "error": "timeout"})
            return frozenset()
        features = frozenset(str(f) for f in result["disco_info"]["features"])
        self._emit("capabilities", raw=str(result), detail={"jid": jid, "node": node,
                                                            "features": sorted(features)})
        return features

    # ----------------------------------------------------------------- PubSub

    def publish(self, service_jid: str, node: str, item_id: str, payload_xml: str,
                message_id: str | None = None, attempt_id: str | None = None, *,
                stanza_id: str | None = None) -> OutboundRecord:
        """Publish one item in an iq with ``stanza_id`` (else a new id); while no session is ready it waits
        for the next one. ``message_sent`` is reported when the iq is written (``on_outgoing``)."""
        item = PubSubItem(service_jid, node, item_id, payload_xml, message_id, attempt_id)
        stanza_id = stanza_id or new_stanza_id()
        raw = publish_xml(item, stanza_id)
        record = publish_record_for(item, stanza_id, datetime.now(UTC))
        self._forget_publish(stanza_id)
        self._publishing[stanza_id] = (record, raw)
        if self._ready():
            self._send_publish(stanza_id)
        return record

    def session_lost(self) -> None:
        """The session ended without resumption: no answer will come to the publishes it carried. Each is
        reported acceptance-unknown (the outbox may publish it again, under the same iq id)."""
        for stanza_id in list(self._answers):
            record, _raw = self._publishing.pop(stanza_id)
            self._forget_publish(stanza_id)
            self._emit("acceptance_unknown", stanza_id=stanza_id, detail={"outbound": record})

    def give_up(self, reason: str) -> None:
        """No session will come (refused credentials, TLS): publishes still waiting for one are never written;
        each is reported not sent."""
        for stanza_id in [s for s in self._publishing if s not in self._answers]:
            record, _raw = self._publishing.pop(stanza_id)
            self._emit("message_not_sent", stanza_id=stanza_id, detail={"reason": reason, "outbound": record})

    def flush_publishes(self) -> None:
        """A session is ready: send the publishes that waited for it."""
        for stanza_id in [s for s in self._publishing if s not in self._answers]:
            self._send_publish(stanza_id)

    def _send_publish(self, stanza_id: str) -> None:
        record, raw = self._publishing[stanza_id]
        answer = Iq(stream=self._client(), xml=ET.fromstring(raw)).send(timeout=self._config.iq_timeout)
        self._answers[stanza_id] = answer
        self._spawn(self._await_answer(answer, record))

    def _forget_publish(self, stanza_id: str) -> None:
        """Stop waiting for the answer to an earlier iq with this id (its timeout and handler too), so the
        id can be sent again."""
        answer = self._answers.pop(stanza_id, None)
        if answer is not None:
            client = self._client()
            client.cancel_schedule(f"IqTimeout_{stanza_id}")
            client.remove_handler(f"IqCallback_{stanza_id}")
            answer.cancel()

    def on_outgoing(self, stanza: Any) -> Any:
        """'out' filter: a publish iq is being written to the transport: report it (``message_sent``)."""
        if isinstance(stanza, Iq) and stanza["id"] in self._answers:
            record, raw = self._publishing[stanza["id"]]
            self._emit("message_sent", raw=raw, stanza_id=record.stanza_id, detail={"outbound": record})
        return stanza

    async def _await_answer(self, answer: asyncio.Future[Any], record: OutboundRecord) -> None:
        """The publish result or error is the evidence; no answer in time leaves acceptance unknown."""
        try:
            raw: str | None = str(await answer)
        except asyncio.CancelledError:
            if answer.cancelled():
                return  # forgotten: its session ended (reported then), or the id is being sent again
            raise
        except IqError as error:
            raw = str(error.iq)
        except IqTimeout:
            raw = None
        self._answers.pop(record.stanza_id, None)
        self._publishing.pop(record.stanza_id, None)
        if raw is None:
            self._emit("acceptance_unknown", stanza_id=record.stanza_id, detail={"outbound": record})
        else:
            self._emit("stanza_received", raw=raw, stanza_id=record.stanza_id)

    async def node_info(self, service_jid: str, node: str) -> NodeInfo:
        """Whether the node exists and its access/publisher models: from its disco#info meta-data, else
        (when we own it) from its configuration form."""
        client = self._client()
        try:
            result = await client.plugin["xep_0030"].get_info(jid=JID(service_jid), node=node, cached=False,
                                                              timeout=self._config.iq_timeout)
        except IqError as error:
            return NodeInfo(service_jid, node, exists=False, error_condition=_snake(error.condition))
        except IqTimeout:
            return NodeInfo(service_jid, node, exists=False, error_condition="timeout")
        self._emit("capabilities", raw=str(result), detail={"jid": service_jid, "node": node, "features": [
            str(f) for f in result["disco_info"]["features"]]})
        access, publisher = node_models(result.xml)
        if "unknown" in (access, publisher):
            configured = await self._iq(service_jid, configure_request(node), "get")
            if configured is not None:
                access, publisher = node_models(configured.xml)
        return NodeInfo(service_jid, node, exists=True, access_model=access, publisher_model=publisher)

    async def ensure_node(self, settings: NodeConfig) -> NodeInfo:
        """The node's info; a missing node is created first when the settings allow it."""
        info = await self.node_info(settings.service_jid, settings.node)
        if info.exists or not settings.create or info.error_condition != "item_not_found":
            return info
        refused = await self._iq_set(settings.service_jid, create_element(settings))
        if refused is not None and refused != "conflict":
            return NodeInfo(settings.service_jid, settings.node, exists=False, error_condition=refused)
        created = await self.node_info(settings.service_jid, settings.node)
        return replace(created, created=refused is None)

    async def fetch_items(self, service_jid: str, node: str, item_ids: tuple[str, ...] = ()) -> None:
        """Retrieve items as a subscriber would; the items result (or error) is a ``stanza_received``."""
        iq = self._client().make_iq_get(ito=service_jid)
        iq.append(items_request(node, item_ids))
        try:
            result = await iq.send(timeout=self._config.iq_timeout)
        except IqError as error:
            self._emit("stanza_received", raw=str(error.iq), stanza_id=iq["id"])
        except IqTimeout:
            log.info("items request to %s timed out", service_jid)
        else:
            self._emit("stanza_received", raw=str(result), stanza_id=iq["id"])

    async def subscribe(self, service_jid: str, node: str) -> str | None:
        """Subscribe this account's bare JID; the error condition that refused it, else None."""
        return await self._iq_set(service_jid, subscribe_element(node, self._client().boundjid.bare))

    # ----------------------------------------------------------------- archive

    async def query_archive(self, query: ArchiveQuery) -> ArchiveResult:
        """Page through the archive; each archived message arrives as a ``stanza_received`` MAM result."""
        query_id = new_stanza_id()
        after: str | None = None
        for page in range(1, query.max_pages + 1):
            iq = self._client().make_iq_set(ito=query.archive_jid)
            iq.append(query_element(query, query_id, after))
            try:
                result = await iq.send(timeout=self._config.iq_timeout)
            except IqError as error:
                return ArchiveResult(query_id, page - 1, complete=False,
                                     error_condition=_snake(error.condition))
            except IqTimeout:
                return ArchiveResult(query_id, page - 1, complete=False, error_condition="timeout")
            end = page_end(result.xml)
            if end.complete or end.last is None:
                return ArchiveResult(query_id, page, complete=True)
            after = end.last
        return ArchiveResult(query_id, query.max_pages, complete=False)

    # ----------------------------------------------------------------- iq helpers

    async def _iq(self, to: str, payload: PlainET.Element, kind: str) -> Iq | None:
        iq = self._client().make_iq_set(ito=to) if kind == "set" else self._client().make_iq_get(ito=to)
        iq.append(payload)
        with contextlib.suppress(IqError, IqTimeout):
            return await iq.send(timeout=self._config.iq_timeout)
        return None

    async def _iq_set(self, to: str, payload: PlainET.Element) -> str | None:
        """Send an iq set; the snake_case error condition (or ``timeout``) when refused, None on success."""
        iq = self._client().make_iq_set(ito=to)
        iq.append(payload)
        try:
            await iq.send(timeout=self._config.iq_timeout)
        except IqError as error:
            return _snake(error.condition)
        except IqTimeout:
            return "timeout"
        return None


async def _bounded(future: asyncio.Future[JoinAnswer], timeout: float) -> JoinAnswer | None:
    """The join's answer, or None when it did not come within ``timeout`` seconds."""
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(future, timeout)
    return None
