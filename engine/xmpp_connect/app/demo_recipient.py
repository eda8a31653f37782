"""The demo's scripted recipient: a real slixmpp client that answers each chat message as a person's phone
would, one step after another: a XEP-0184 receipt, a XEP-0333 displayed marker, then an ``ACK`` reply
(XEP-0461, naming the message it answers)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.xmlstream import ET

MARKERS_NS = "urn:xmpp:chat-markers:0"
REPLY_NS = "urn:xmpp:reply:0"


class ScriptedRecipient:
    """Logged in as ``jid`` (resource ``phone``) on a loopback server whose certificate is ``ca_file``."""

    def __init__(self, jid: str, password: str, port: int, ca_file: Path, pause: float = 0.4) -> None:
        self.port = port
        self.pause = pause
        self.client = ClientXMPP(f"{jid}/phone", password)
        self.client.enable_direct_tls = False
        self.client.enable_plaintext = False
        self.client.ca_certs = ca_file
        self.client.register_plugin("xep_0030")
        self.client.register_plugin("xep_0184", {"auto_ack": True})
        self.client.register_plugin("xep_0333")
        self.client.add_event_handler("message", self._on_message)
        self._tasks: set[asyncio.Task[None]] = set()

    async def online(self, timeout: float = 20.0) -> None:
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def session_started(_event: Any) -> None:
            if not started.done():
                started.set_result(None)

        self.client.add_event_handler("session_start", session_started)
        self.client.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started, timeout)
        self.client.send_presence()

    def subscribe_to(self, jid: str) -> None:
        """Ask for a presence subscription; the adapter authorizes and subscribes back, so it learns this
        resource and can tell an answer from it apart from one by an unknown device."""
        self.client.send_presence(pto=jid, ptype="subscribe")

    def _on_message(self, message: Any) -> None:
        if message["type"] not in ("chat", "normal") or not message["body"]:
            return
        task = asyncio.ensure_future(self._answer(str(message["from"]), message["id"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, sender: str, message_id: str) -> None:
        """The receipt went out already (auto_ack); then the marker, then the reply."""
        await asyncio.sleep(self.pause)
        marker = self.client.make_message(mto=sender, mtype="chat")
        marker.append(ET.Element(f"{{{MARKERS_NS}}}displayed", {"id": message_id}))
        marker.send()
        await asyncio.sleep(self.pause)
        reply = self.client.make_message(mto=sender, mbody="ACK", mtype="chat")
        reply.append(ET.Element(f"{{{REPLY_NS}}}reply", {"id": message_id, "to": sender}))
        reply.send()

    async def offline(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.client.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.client.disconnect(wait=1.0), 5.0)
