"""Recipient clients on slixmpp whose behaviour a test sets: receipts, markers, replies, blocking, disco."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prosody import ProsodyServer, TestUser
from slixmpp import ClientXMPP
from slixmpp.stanza import Message
from slixmpp.xmlstream import ET

RECEIPTS_NS = "urn:xmpp:receipts"
MARKERS_NS = "urn:xmpp:chat-markers:0"
REPLY_NS = "urn:xmpp:reply:0"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
WAIT = 30.0


@dataclass(frozen=True)
class Behaviour:
    """How a recipient client acts. Receipts are sent automatically when ``auto_receipt`` is on."""

    auto_receipt: bool = True
    advertise_receipts: bool = True
    advertise_markers: bool = True


class Recipient:
    """One logged-in resource of a test account."""

    def __init__(self, server: ProsodyServer, user: TestUser, resource: str = "phone",
                 behaviour: Behaviour | None = None) -> None:
        behaviour = behaviour or Behaviour()
        self.server = server
        self.user = user
        self.behaviour = behaviour
        self.full_jid = f"{user.jid}/{resource}"
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.client = ClientXMPP(self.full_jid, user.password)
        self.client.enable_direct_tls = False
        self.client.enable_plaintext = False
        self.client.ca_certs = server.cert_path
        self.client.register_plugin("xep_0030")
        self.client.register_plugin("xep_0184", {"auto_ack": behaviour.auto_receipt})
        self.client.register_plugin("xep_0333")
        self.client.register_plugin("xep_0191")
        self.client.register_plugin("xep_0203")
        self.client.add_event_handler("message", self._on_message)
        self.room_messages: asyncio.Queue[Message] = asyncio.Queue()
        self.receipts: asyncio.Queue[str] = asyncio.Queue()
        """Ids of our messages that a XEP-0184 receipt confirmed (the adapter answering our requests)."""
        self.client.add_event_handler("receipt_received", lambda m: self.receipts.put_nowait(m["receipt"]))
        self._joined: dict[str, asyncio.Future[str]] = {}
        self.client.add_event_handler("presence", self._on_room_presence)

    def _on_message(self, message: Message) -> None:
        if message["type"] in ("chat", "normal") and message["body"]:
            self.messages.put_nowait(message)
        elif message["type"] == "groupchat" and message["body"]:
            self.room_messages.put_nowait(message)

    def _on_room_presence(self, presence: Any) -> None:
        room = presence.xml.get("from", "").split("/", 1)[0]
        waiting = self._joined.get(room)
        if waiting is None or waiting.done():
            return
        if presence.xml.get("type") == "error":
            waiting.set_result("error")
        elif presence.xml.find(f"{{{MUC_USER_NS}}}x/{{{MUC_USER_NS}}}status[@code='110']") is not None:
            waiting.set_result("joined")

    async def join_room(self, room: str, nick: str, password: str | None = None) -> str:
        """Join a room as an occupant (no history); ``joined`` or ``error``, bounded."""
        self._joined[room] = asyncio.get_running_loop().create_future()
        presence = self.client.make_presence(pto=f"{room}/{nick}")
        x = ET.Element(f"{{{MUC_NS}}}x")
        ET.SubElement(x, f"{{{MUC_NS}}}history", {"maxstanzas": "0"})
        if password is not None:
            ET.SubElement(x, f"{{{MUC_NS}}}password").text = password
        presence.append(x)
        presence.send()
        return await asyncio.wait_for(self._joined[room], WAIT)

    def leave_room(self, room: str, nick: str) -> None:
        self.client.send_presence(pto=f"{room}/{nick}", ptype="unavailable")

    def say_in_room(self, room: str, body: str, reply_to_id: str | None = None,
                    reply_to_jid: str | None = None) -> None:
        """A groupchat message, optionally a XEP-0461 reply to the room's stanza-id ``reply_to_id``."""
        message = self.client.make_message(mto=room, mbody=body, mtype="groupchat")
        if reply_to_id is not None:
            reference = {"id": reply_to_id, "to": reply_to_jid or room}
            message.append(ET.Element(f"{{{REPLY_NS}}}reply", reference))
        message.send()

    def displayed_in_room(self, room: str, stable_id: str) -> None:
        """XEP-0333 in a room: the marker names the room's stanza-id of the message."""
        marker = self.client.make_message(mto=room, mtype="groupchat")
        marker.append(ET.Element(f"{{{MARKERS_NS}}}displayed", {"id": stable_id}))
        marker.send()

    async def online(self, presence: bool = True) -> Recipient:
        """Log in (and send initial presence); bounded."""
        started = asyncio.get_running_loop().create_future()
        self.client.add_event_handler("session_start", lambda _e: started.done() or started.set_result(True))
        self.client.connect("127.0.0.1", self.server.port)
        await asyncio.wait_for(started, WAIT)
        self._hide_features()
        if presence:
            self.client.send_presence()
        return self

    def _hide_features(self) -> None:
        """Plugins register their disco features at session bind: remove the hidden ones after it."""
        disco = self.client.plugin["xep_0030"]
        if not self.behaviour.advertise_receipts:
            disco.del_feature(feature=RECEIPTS_NS)
        if not self.behaviour.advertise_markers:
            disco.del_feature(feature=MARKERS_NS)

    async def offline(self) -> None:
        """Log out cleanly (the server then stores messages for this account offline)."""
        if self.client.transport is not None:
            await asyncio.wait_for(self.client.disconnect(wait=1.0), WAIT)

    async def round_trip(self) -> None:
        """Ask the server something and wait for the answer: by then the server has handled everything
        this client sent before (it handles a session's stanzas in order), e.g. an automatic receipt."""
        domain = self.user.jid.partition("@")[2]
        await self.client.plugin["xep_0030"].get_info(jid=domain, timeout=WAIT)

    async def next_message(self, timeout: float = WAIT) -> Message:
        return await asyncio.wait_for(self.messages.get(), timeout)

    def send_displayed(self, to: str, message_id: str) -> None:
        """XEP-0333 <displayed/> for ``message_id`` (cumulative: it covers earlier markable messages)."""
        marker = self.client.make_message(mto=to, mtype="chat")
        marker.append(ET.Element(f"{{{MARKERS_NS}}}displayed", {"id": message_id}))
        marker.send()

    def send_receipt(self, to: str, message_id: str) -> None:
        receipt = self.client.make_message(mto=to)
        receipt.append(ET.Element(f"{{{RECEIPTS_NS}}}received", {"id": message_id}))
        receipt.send()

    def reply(self, to: str, body: str, reply_to_id: str | None = None, reply_to_jid: str | None = None,
              thread: str | None = None) -> None:
        """A chat message, optionally a XEP-0461 reply to ``reply_to_id`` and/or in ``thread``."""
        message = self.client.make_message(mto=to, mbody=body, mtype="chat")
        if thread is not None:
            message["thread"] = thread
        if reply_to_id is not None:
            message.append(ET.Element(f"{{{REPLY_NS}}}reply", {"id": reply_to_id, "to": reply_to_jid or to}))
        message.send()

    def send_chat_state(self, to: str, state: str) -> None:
        message = self.client.make_message(mto=to, mtype="chat")
        message.append(ET.Element(f"{{http://jabber.org/protocol/chatstates}}{state}"))
        message.send()

    async def block(self, jid: str) -> None:
        await self.client.plugin["xep_0191"].block(jid, timeout=WAIT)

    def subscribe_to(self, jid: str) -> None:
        """Ask for a presence subscription; the adapter authorizes and subscribes back automatically."""
        self.client.send_presence(pto=jid, ptype="subscribe")
