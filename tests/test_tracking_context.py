"""Registered tracking contexts (§4.2): the record kept on the endpoint, and when the pipeline looks one up.

Pure code, no server: the end-to-end proof over HTTP against both real servers is in
tests/api/test_attribution_servers.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.stanza_builders import OutboundMessage, record_for
from xmpp_connect.xmpp.jids import bare

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CONTEXT = TrackingContext({"correlation_id": "corr-1", "coordination_case_id": "case-1",
                           "participant_id": "p-1"}, NOW, NOW + timedelta(hours=1))
HELLO = ("<message xmlns='jabber:client' from='bob@localhost/phone' to='alerts@localhost/a' type='chat'>"
         "<body>Is the document still there?</body></message>")



class Contexts:
    """A ContextLookup over a dict of bare JIDs, recording what it was asked."""

    def __init__(self, by_bare: dict[str, TrackingContext]) -> None:
        self.by_bare = by_bare
        self.asked: list[str] = []

    def __call__(self, sender: str, at: datetime) -> TrackingContext | None:
        self.asked.append(sender)
        found = self.by_bare.get(bare(sender))
        return found if found is not None and found.live_at(at) else None


def pipeline(classifier: Classifier, contexts: Contexts, seen: list[Observation]) -> EvidencePipeline:
    commands = CommandTable.from_mapping(classifier.policy.commands)
    return EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), seen.append, contexts=contexts)


def native(raw: str, at: datetime = NOW, **detail: object) -> NativeEvent:
    return NativeEvent(kind="stanza_received", account="notify", observed_at=at, raw=raw, detail=dict(detail))


def test_registration_keeps_ids_and_expiry_on_the_endpoint() -> None:
    request = {"tracking_context": {"correlation_id": "corr-1"}, "coordination_case_id": "case-1",
               "participant_id": "p-1", "expires_at": "2026-01-01T13:00:00Z"}
    registered = TrackingContext.registered(request, NOW)
    assert registered == CONTEXT
    assert TrackingContext.from_metadata(registered.as_metadata()) == registered
    assert TrackingContext.from_metadata({}) is None
    assert registered.live_at(NOW + timedelta(minutes=59))
    assert not registered.live_at(NOW + timedelta(hours=1))


def test_unprompted_message_carries_the_live_context(classifier: Classifier) -> None:
    seen: list[Observation] = []
    contexts = Contexts({"bob@localhost": CONTEXT})
    [observed] = pipeline(classifier, contexts, seen).handle(native(HELLO))
    assert observed.fact["context_registered"] is True and observed.tracking == CONTEXT
    assert observed.classification.scenario == "context_interaction"
    assert contexts.asked == ["bob@localhost/phone"]


def test_expired_or_missing_context_is_known_false(classifier: Classifier) -> None:
    seen: list[Observation] = []
    flow = pipeline(classifier, Contexts({"bob@localhost": CONTEXT}), seen)
    [late] = flow.handle(native(HELLO, at=NOW + timedelta(hours=2)))
    [other] = flow.handle(native(HELLO.replace("bob@", "carol@")))
    for observed in (late, other):
        assert observed.fact["context_registered"] is False and observed.tracking is None
        assert observed.classification.rule_id == "inbound.not_linked"


def test_no_lookup_for_a_reply_to_ours_or_an_unvouched_sender(classifier: Classifier) -> None:
    """A message tied to one of our messages is that message's evidence; a bridged sender's claimed JID is
    not established, so it is tied to no context (the fact leaves context_registered unknown)."""
    seen: list[Observation] = []
    contexts = Contexts({"bob@localhost": CONTEXT})
    flow = pipeline(classifier, contexts, seen)
    [bridged] = flow.handle(native(HELLO, authenticated_stream=False))
    flow.handle(NativeEvent("message_sent", "notify", NOW, detail={
        "outbound": record_for(OutboundMessage(to_jid="bob@localhost", body="x"), "m1", NOW)}))
    [reply] = flow.handle(native(HELLO))
    assert contexts.asked == []
    for observed in (bridged, reply):
        assert "context_registered" not in observed.fact and observed.tracking is None
    assert reply.fact["reply_via"] == "conversation" and reply.outbound is not None
