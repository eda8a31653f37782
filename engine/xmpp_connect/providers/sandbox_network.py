"""The simulated network's behaviour table: magic recipient JIDs, and the answers each gives to a send."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from xmpp_connect.providers.sandbox_stanzas import (
    ERROR_CONDITIONS,
    Outbound,
    StanzaWriter,
    parse_outbound,
    xml_text,
)

DOMAIN = "sandbox.invalid"
ROOM_SERVICE = f"conference.{DOMAIN}"
PUBSUB_SERVICE = f"pubsub.{DOMAIN}"
ROOM_JID = f"ops@{ROOM_SERVICE}"
NODE = "events"


# The magic recipients and what each does; the README's table is this text.
BEHAVIOURS: dict[str, str] = {
    "delivered": "online; the server acks, the client returns a XEP-0184 receipt",
    "displayed": "online; receipt, then a XEP-0333 displayed marker",
    "replies-ack": "online; receipt, then replies 'ACK' (XEP-0461 reply to the message)",
    "replies-text": "online; receipt, then replies with free text",
    "offline": "offline: the server stores it; the recipient comes online later and sends a delayed receipt",
    "blocked": "the server refuses: cancel/not-acceptable with urn:xmpp:blocking:errors",
    "no-receipts": "online, but its client never sends receipts or markers (server ack only)",
    "late-receipt": "online; the receipt arrives only after the adapter's receipt timeout",
    "two-devices": "online on two resources (phone, laptop); each returns its own receipt",
    "error-<condition>": "the server answers with that §24 stanza error, e.g. error-item-not-found",
    "anything-else": "no such account: cancel/service-unavailable (as Prosody answers for unknown users)",
}
ONLINE_RESOURCES: dict[str, tuple[str, ...]] = {
    "delivered": ("phone",),
    "displayed": ("phone",),
    "replies-ack": ("phone",),
    "replies-text": ("phone",),
    "no-receipts": ("legacy",),
    "late-receipt": ("phone",),
    "two-devices": ("phone", "laptop"),
}


@dataclass(frozen=True)
class SandboxTiming:
    """Seconds between the adapter's send and each simulated answer."""

    ack: float = 0.001
    receipt: float = 0.005
    displayed: float = 0.02
    reply: float = 0.03
    offline_delivery: float = 2.0
    late_receipt: float = 310.0


@dataclass
class Answer:
    """One simulated observation, ``delay`` seconds after the send."""

    delay: float
    kind: str
    raw: str | None = None
    stanza_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


class SandboxNetwork:
    """The behaviour table: an outbound stanza in, the answers the simulated network gives out."""

    def __init__(self, timing: SandboxTiming | None = None) -> None:
        self.timing = timing or SandboxTiming()
        self.writer = StanzaWriter()

    def roster(self) -> list[str]:
        """The sandbox account's contacts: every recipient that has presence, mutually subscribed."""
        return [*(f"{local}@{DOMAIN}" for local in ONLINE_RESOURCES), f"offline@{DOMAIN}"]

    def presence_snapshot(self, account_jid: str) -> list[str]:
        """The presence the sandbox roster sends when a session starts."""
        out = [
            self.writer.presence(f"{local}@{DOMAIN}/{resource}", account_jid, True)
            for local, resources in ONLINE_RESOURCES.items()
            for resource in resources
        ]
        out.append(self.writer.presence(f"offline@{DOMAIN}", account_jid, False))
        return out

    def answer(self, xml: str, account_jid: str) -> list[Answer]:
        """The answers to one outbound stanza sent by ``account_jid``."""
        out = parse_outbound(xml)
        if out is None or not out.stanza_id:
            return []
        if not out.sender:
            out = replace(out, sender=account_jid)
        answers = [Answer(self.timing.ack, "sm_ack", stanza_id=out.stanza_id)]
        if out.kind == "iq":
            return answers + self._pubsub(out)
        local, _, rest = out.to.partition("@")
        domain = rest.partition("/")[0] if rest else local.partition("/")[0]
        if not rest:
            local = ""
        if domain == ROOM_SERVICE:
            return answers + self._room(out, out.to.partition("/")[0])
        if domain != DOMAIN:
            return [*answers, self._error(out, "remote-server-not-found", sender=domain)]
        return answers + self._recipient(out, local)

    def _recipient(self, out: Outbound, local: str) -> list[Answer]:
        bare = f"{local}@{DOMAIN}"
        t = self.timing
        if local.startswith("error-") and local[6:] in ERROR_CONDITIONS:
            return [self._error(out, local[6:], sender=bare)]
        if local == "blocked":
            return [self._error(out, "not-acceptable", sender=bare, blocked=True)]
        if local == "offline":
            return self._receipts(out, bare, ("phone",), t.offline_delivery, delayed=True, comes_online=True)
        if local == "late-receipt":
            return self._receipts(out, bare, ("phone",), t.late_receipt)
        if local not in ONLINE_RESOURCES:
            return [self._error(out, "service-unavailable", sender=bare)]
        if local == "no-receipts":
            return []
        answers = self._receipts(out, bare, ONLINE_RESOURCES[local], t.receipt)
        full = f"{bare}/{ONLINE_RESOURCES[local][0]}"
        if local == "displayed" and out.markable:
            answers.append(self._inbound(t.displayed, self.writer.displayed(full, out.sender, out.stanza_id)))
        if local in ("replies-ack", "replies-text"):
            body = "ACK" if local == "replies-ack" else "Thanks, I will look at it tomorrow."
            answers.append(
                self._inbound(t.reply, self.writer.reply(full, out.sender, out.stanza_id, body, out.thread))
            )
        return answers

    def _receipts(
        self,
        out: Outbound,
        bare: str,
        resources: tuple[str, ...],
        delay: float,
        delayed: bool = False,
        comes_online: bool = False,
    ) -> list[Answer]:
        answers = []
        if comes_online:
            presence = self.writer.presence(f"{bare}/{resources[0]}", out.sender, True)
            answers.append(self._inbound(delay, presence))
        if out.receipt_requested:
            for resource in resources:
                stanza = self.writer.receipt(
                    f"{bare}/{resource}", out.sender, out.stanza_id, delay_from=DOMAIN if delayed else None
                )
                answers.append(self._inbound(delay, stanza))
        return answers

    def _room(self, out: Outbound, room: str) -> list[Answer]:
        if room != ROOM_JID:
            return [self._error(out, "item-not-found", sender=room)]
        if out.message_type != "groupchat":
            return [self._error(out, "not-acceptable", sender=room)]
        body = f"<body>{xml_text('(room copy)')}</body>"
        reflection = self.writer.room_reflection(room, "adapter", out.sender, out.stanza_id, body)
        return [self._inbound(self.timing.receipt, reflection)]

    def _pubsub(self, out: Outbound) -> list[Answer]:
        if out.to != PUBSUB_SERVICE or out.node is None:
            return [self._error(out, "service-unavailable", sender=out.to or DOMAIN)]
        if out.node != NODE:
            return [self._error(out, "item-not-found", sender=out.to)]
        item_id = out.item_id or self.writer.next_id("item")
        result = self.writer.publish_result(out.to, out.sender, out.stanza_id, out.node, item_id)
        return [self._inbound(self.timing.receipt, result)]

    def _error(self, out: Outbound, condition: str, sender: str, blocked: bool = False) -> Answer:
        raw = self.writer.error(out.kind, sender, out.sender, out.stanza_id, condition, blocked=blocked)
        return self._inbound(self.timing.receipt, raw)

    def _inbound(self, delay: float, raw: str) -> Answer:
        return Answer(delay, "stanza_received", raw=raw)
