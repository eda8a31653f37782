"""The facts of events about our own sent stanzas (written, acked) are reused while the account's presence,
room and server state stays as it was: each must equal the fact built afresh from the context."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import OUTBOUND_FACT_KINDS, EvidencePipeline
from xmpp_connect.facts.build import fact_for_event
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.stanza_builders import OutboundMessage, record_for

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "notify"



def _event(kind: str, raw: str | None = None, **detail: object) -> NativeEvent:
    return NativeEvent(kind, ACCOUNT, NOW, raw=raw, detail=detail)


def _receipt(sender: str, stanza_id: str) -> str:
    return (f"<message xmlns='jabber:client' from='{sender}' to='alerts@localhost/a'>"
            f"<received xmlns='urn:xmpp:receipts' id='{stanza_id}'/></message>")


def _disco(jid: str, *features: str) -> NativeEvent:
    query = "".join(f"<feature var='{f}'/>" for f in features)
    raw = (f"<iq xmlns='jabber:client' type='result' from='{jid}' to='alerts@localhost/a' id='d'>"
           f"<query xmlns='http://jabber.org/protocol/disco#info'>{query}</query></iq>")
    return _event("capabilities", raw, jid=jid, features=list(features))


def test_outbound_facts_follow_every_change_of_state(classifier: Classifier) -> None:
    pipeline = EvidencePipeline(classifier, CommandTable.from_mapping(classifier.policy.commands),
                                InMemoryOutboundIndex(), lambda _o: None)
    presence, rooms = pipeline.presence(ACCOUNT), pipeline.rooms(ACCOUNT)
    changes = [
        lambda: None,
        lambda: presence.observe("bob@localhost/phone", "available", NOW),
        lambda: pipeline.handle(_event("stanza_received", _receipt("bob@localhost/phone", "s1"))),
        lambda: pipeline.handle(_event("stanza_received", _receipt("bob@localhost/laptop", "s1"))),
        lambda: presence.set_subscription("bob@localhost", "both"),
        lambda: pipeline.handle(_disco("bob@localhost/phone", "urn:xmpp:receipts")),
        lambda: pipeline.handle(_disco("localhost", "msgoffline")),
        lambda: presence.observe("bob@localhost/phone", "unavailable", NOW),
        lambda: presence.observe("bob@localhost", "unavailable", NOW),
        lambda: rooms.set_features("room@muc.localhost", frozenset({"muc_semianonymous"})),
        lambda: rooms.observe("room@muc.localhost/bob", "bob@localhost/phone", "participant", "member", True,
                              NOW),
        lambda: None,
    ]
    messages = [OutboundMessage(to_jid="bob@localhost", body="x"),
                OutboundMessage(to_jid="bob@localhost/phone", body="x", markable=True),
                OutboundMessage(to_jid="room@muc.localhost", body="x", message_type="normal",
                                request_receipt=False)]
    n = 0
    for change in changes:
        change()
        for message in messages:
            for kind in ("message_sent", "sm_ack"):
                n += 1
                record = record_for(message, f"s{n}", NOW)
                for via in (False, True):
                    detail = {"outbound": record, **({"via_component": True} if via else {})}
                    observed = pipeline.handle(_event(kind, "<message/>", **detail))
                    context = pipeline._context(ACCOUNT, record)
                    if via:
                        context = context.__class__(**{**vars(context), "via_component": True})
                    expected = fact_for_event(OUTBOUND_FACT_KINDS[kind], context)
                    assert observed[0].fact == expected
                    assert list(observed[0].fact) == list(expected), "the same field order"
                    assert observed[0].classification == classifier.classify(expected)


def test_a_reused_fact_is_a_copy(classifier: Classifier) -> None:
    pipeline = EvidencePipeline(classifier, CommandTable.from_mapping(classifier.policy.commands),
                                InMemoryOutboundIndex(), lambda _o: None)
    record = record_for(OutboundMessage(to_jid="bob@localhost", body="x"), "s1", NOW)
    first = pipeline.handle(_event("message_sent", "<message/>", outbound=record))[0]
    first.fact["kind"] = "changed"
    again = pipeline.handle(_event("message_sent", "<message/>", outbound=record))[0]
    assert again.fact["kind"] == "send_accepted"


def test_a_reused_fact_is_classified_again_under_another_policy_version(classifier: Classifier) -> None:
    """The classification kept with a reused fact is the one ``_classify`` gave it under the same policy
    version: another version classifies the fact again."""

    class Versioned:
        def __init__(self) -> None:
            self.policy = SimpleNamespace(version="1")
            self.calls = 0

        def classify(self, fact: Mapping[str, Any]) -> str:
            self.calls += 1
            return f"{self.policy.version}:{fact['kind']}"

    versioned = Versioned()
    commands = CommandTable.from_mapping(classifier.policy.commands)
    pipeline = EvidencePipeline(versioned, commands,  # type: ignore[arg-type]
                                InMemoryOutboundIndex(), lambda _o: None)
    record = record_for(OutboundMessage(to_jid="bob@localhost", body="x"), "s1", NOW)
    seen = []
    for version in ("1", "1", "2", "2", "1"):
        versioned.policy.version = version
        seen.append(pipeline.handle(_event("message_sent", "<message/>", outbound=record))[0].classification)
    assert seen == ["1:send_accepted", "1:send_accepted", "2:send_accepted", "2:send_accepted",
                    "1:send_accepted"]
    assert versioned.calls == 3
