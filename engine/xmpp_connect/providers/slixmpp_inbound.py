"""What an account receives: messages and presences forwarded raw (receipts answered), roster updates, and
disco#info of the server and of contacts as they come online."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Message

from xmpp_connect.providers.base import SessionTuning
from xmpp_connect.providers.groups import GroupChannels
from xmpp_connect.providers.slixmpp_session import AccountClient, SessionState
from xmpp_connect.providers.slixmpp_text import stanza_text
from xmpp_connect.providers.stanza_builders import receipt_answer
from xmpp_connect.xmpp.stanzas import view_of_tree


class InboundStanzas:
    """The provider's inbound handlers; each observation goes to ``emit`` as a native event."""

    def __init__(
        self,
        tuning: SessionTuning,
        state: SessionState,
        client: Callable[[], AccountClient],
        emit: Callable[..., None],
        groups: GroupChannels,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.discover_capabilities = tuning.discover_capabilities
        self.state = state
        self._client = client
        self._emit = emit
        self.groups = groups
        self._spawn = spawn
        self._discovered: set[str] = set()

    def on_message(self, stanza: Any) -> None:
        self._received(stanza)
        answer = receipt_answer(stanza.xml)
        if answer is not None and self.state.ready:
            client = self._client()
            # recv=True: the answer has its id, Message() need not look it up.
            client.send(Message(stream=client, xml=answer, recv=True))

    def on_presence(self, stanza: Any) -> None:
        sender = stanza.xml.get("from", "")
        own = self._client().boundjid
        if sender.split("/", 1)[0].lower() == own.bare.lower() or self.groups.on_presence(stanza.xml):
            return
        self._received(stanza)
        if (
            self.discover_capabilities
            and "/" in sender
            and stanza.xml.get("type") in (None, "available")
            and sender not in self._discovered
        ):
            self._discovered.add(sender)
            self._spawn(self.discover(sender))

    def _received(self, stanza: Any) -> None:
        """A received stanza as raw text, with the view of the tree slixmpp built (not parsed again)."""
        raw = stanza_text(stanza)
        self._emit("stanza_received", raw=raw, stanza_id=stanza.xml.get("id"),
                   view=view_of_tree(stanza.xml, raw, stanza.stream.default_ns))

    def on_roster_update(self, iq: Any) -> None:
        for jid, item in iq["roster"]["items"].items():
            self._emit("roster", raw=str(iq), detail={"jid": str(jid), "subscription": item["subscription"]})

    async def discover(self, jid: str, timeout: float = 5.0) -> None:
        """disco#info of a JID; the answer (or its error) arrives as a ``capabilities`` native event."""
        client = self._client()
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
