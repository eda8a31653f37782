"""Messages with awkward content for the send path's tests: markup characters, non-ASCII, CR/LF, long ones."""

from __future__ import annotations

import random
from dataclasses import dataclass

from xmpp_connect.providers.stanza_builders import OutboundMessage, groupchat_xml, message_xml

AWKWARD = [
    "Incident 42: please acknowledge.",
    "",
    " ",
    "<b>bold</b> & 'quoted' \"double\" ]]> ]] >",
    "&amp; &lt; &#38; &unknown; <![CDATA[x]]> <!-- c --> <?pi x?>",
    "line one\nline two\r\nline three\rend\t\ttab",
    "naïve café – Ünïcödé 日本語 emoji 🚨🔥 \u200b zero-width \u00a0 nbsp",
    "body </body><body>second</body>",
    "x" * 20_000,
    "🚨" * 3_000 + "\n" * 100,
    "C1 \x85 \x9f controls, DEL \x7f",
    "\ufffd replacement",
]
THREADS = [None, "thread-1", "t <&> \"'", "multi\nline\ttab", "cr\r\nlf", "日本語 🧵", " "]
RECIPIENTS = ["bob@localhost", "bob@example.net/phone", "o'brien@example.net", 'quote"d@example.net',
              "bob@example.net/res with spaces", "ünï@example.net/日本", "bob@example.net/a\tb",
              "bob@example.net/a&b", "bob@example.net/<x>", ""]
STANZA_IDS = ["xc-0123456789abcdef0123456789abcdef", "x", "id'with'quotes", 'id"dq', "id&amp", "id\nnl"]


@dataclass(frozen=True)
class Case:
    message: OutboundMessage
    stanza_id: str
    groupchat: bool = False
    sender: str | None = None
    """A component's JID (its messages carry ``from`` and the component namespace)."""

    @property
    def text(self) -> str:
        if self.groupchat:
            return groupchat_xml(self.message, self.stanza_id)
        namespace = "jabber:component:accept" if self.sender else "jabber:client"
        return message_xml(self.message, self.stanza_id, sender=self.sender, namespace=namespace)


def awkward_messages() -> list[Case]:
    """Every awkward body in each shape, then 600 random mixes of awkward bodies, threads, ids, recipients."""
    cases = []
    for body in AWKWARD:
        for request_receipt, markable in ((True, False), (False, False), (True, True), (False, True)):
            cases.append(Case(OutboundMessage("bob@localhost", body, request_receipt=request_receipt,
                                              markable=markable), "xc-1"))
            cases.append(Case(OutboundMessage("room@conference.localhost", body, markable=markable), "xc-2",
                              groupchat=True))
    choice = random.Random(17)
    for _ in range(600):
        message = OutboundMessage(
            choice.choice(RECIPIENTS), choice.choice(AWKWARD)[:300], choice.choice(("chat", "normal")),
            request_receipt=choice.random() < 0.5, markable=choice.random() < 0.5,
            thread=choice.choice(THREADS),
        )
        sender = choice.choice((None, "notify.example.net", "comp'o\"nent.example.net"))
        cases.append(Case(message, choice.choice(STANZA_IDS), sender=sender))
    return cases
