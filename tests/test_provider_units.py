"""Pure parts of the provider layer, without a server: stanza building, acceptance, index, presence.

They live beside the integration tests because this directory is the provider layer's test home; they need
no fixture and take milliseconds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_connect.config import settings as config
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.facts.presence import PresenceTracker
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.acceptance import AcceptanceTracker
from xmpp_connect.providers.base import Backoff
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.providers.slixmpp_matchers import MatchRootTag
from xmpp_connect.providers.stanza_builders import OutboundMessage, build_message, record_for
from xmpp_connect.xmpp.stanzas import parse_stanza

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)



@pytest.fixture(scope="module")
def commands(classifier: Classifier) -> CommandTable:
    return CommandTable.from_mapping(classifier.policy.commands)


def test_outbound_stanza_carries_id_origin_id_receipt_request_and_markable() -> None:
    message = OutboundMessage(to_jid="bob@localhost/phone", body="Reply ACK", markable=True)
    view = parse_stanza(ET.tostring(build_message(message, "xc-1")))
    assert (view.id, view.origin_id, view.type) == ("xc-1", "xc-1", "chat")
    assert view.to_attr == "bob@localhost/phone"
    assert view.receipt_requested and view.markable
    assert view.thread == "xc-1", "replies in the thread correlate by the stanza id"
    record = record_for(message, "xc-1", NOW)
    assert (record.endpoint_type, record.receipt_requested, record.markable) == ("full_jid", True, True)


def test_outbound_normal_message_without_requests() -> None:
    message = OutboundMessage(to_jid="bob@localhost", body="x", message_type="normal", request_receipt=False)
    view = parse_stanza(ET.tostring(build_message(message, "xc-2")))
    assert (view.type, view.receipt_requested, view.markable) == ("normal", False, False)
    assert record_for(message, "xc-2", NOW).endpoint_type == "bare_jid"
    with pytest.raises(ValueError, match="chat or normal"):
        build_message(OutboundMessage(to_jid="r@muc.localhost", body="x", message_type="groupchat"), "i")


def test_acceptance_unknown_only_for_stanzas_written_in_the_lost_session() -> None:
    tracker = AcceptanceTracker()
    tracker.new_session()
    tracker.written("a")
    tracker.written("b")
    assert tracker.acked("a") is True
    assert tracker.acked("a") is False, "a second ack settles nothing"
    assert tracker.session_lost() == ["b"]
    assert tracker.unknown == {"b"}
    tracker.new_session()
    tracker.written("c")
    assert tracker.session_lost() == ["c"]
    assert tracker.unknown == {"b", "c"}, "unknown stanzas are never forgotten"


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.2, maximum=1.0)
    assert [backoff.delay(n) for n in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def _record(stanza_id: str, to: str = "bob@localhost", markable: bool = True) -> OutboundRecord:
    return OutboundRecord(stanza_id=stanza_id, to_jid=to, endpoint_type="bare_jid",
                          origin_id=f"o-{stanza_id}", markable=markable)


def test_index_looks_up_by_id_or_origin_id_and_lists_markables_in_send_order() -> None:
    index = InMemoryOutboundIndex()
    for record in (_record("m1"), _record("m2", markable=False), _record("x1", to="carol@localhost"),
                   _record("m3"), _record("m4")):
        index.record(record)
    assert index.lookup("m3") is index.lookup("o-m3")
    assert index.lookup("nope") is None
    assert [r.stanza_id for r in index.markables_before("Bob@localhost", "m4")] == ["m1", "m3"]
    assert index.markables_before("bob@localhost", "unknown") == []
    latest = index.latest("bob@localhost")
    assert latest is not None and latest.stanza_id == "m4"


def test_presence_per_resource_subscription_and_capabilities() -> None:
    tracker = PresenceTracker()
    assert tracker.is_available("bob@localhost") is None
    tracker.observe("bob@localhost/phone", "available", NOW, priority=5)
    tracker.observe("bob@localhost/laptop", "dnd", NOW)
    assert tracker.available_resources("bob@localhost") == {"bob@localhost/phone", "bob@localhost/laptop"}
    tracker.observe("bob@localhost/phone", "unavailable", NOW)
    assert tracker.is_available("bob@localhost/phone") is False
    assert tracker.is_available("bob@localhost") is True
    tracker.set_subscription("Bob@localhost", "both")
    assert tracker.subscription("bob@localhost") == "both"
    assert tracker.supports("bob@localhost", "urn:xmpp:receipts") is None
    tracker.set_features("bob@localhost/laptop", frozenset({"urn:xmpp:receipts"}))
    assert tracker.supports("bob@localhost", "urn:xmpp:receipts") is True
    assert tracker.supports("bob@localhost/laptop", "urn:xmpp:chat-markers:0") is False
    tracker.observe("bob@localhost", "unavailable", NOW)
    assert tracker.is_available("bob@localhost") is False


def _native(kind: str, raw: str | None = None, **detail: object) -> NativeEvent:
    return NativeEvent(kind=kind, account="notify", observed_at=NOW, raw=raw, detail=dict(detail))


def _marker(stanza_id: str) -> str:
    return (f"<message xmlns='jabber:client' from='bob@localhost/phone' to='alerts@localhost/a' type='chat'>"
            f"<displayed xmlns='urn:xmpp:chat-markers:0' id='{stanza_id}'/></message>")


def test_pipeline_marks_bridged_stanzas_unauthenticated(classifier: Classifier,
                                                        commands: CommandTable) -> None:
    """A receipt handed in by an external bridge is not client-delivery evidence: no server vouched for it."""
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), lambda _o: None)
    message = OutboundMessage(to_jid="bob@localhost", body="x")
    pipeline.handle(_native("message_sent", outbound=record_for(message, "m1", NOW)))
    receipt = ("<message xmlns='jabber:client' from='bob@localhost/phone' to='alerts@localhost/a'>"
               "<received xmlns='urn:xmpp:receipts' id='m1'/></message>")
    bridged = pipeline.handle(_native("stanza_received", receipt, authenticated_stream=False))
    assert bridged[0].fact["sender_authenticated"] is False
    assert bridged[0].classification.assessment.category != "success"
    direct = pipeline.handle(_native("stanza_received", receipt))
    assert direct[0].classification.assessment.subclass == "success.delivered_to_client"


def test_pipeline_infers_cumulative_markers_once(classifier: Classifier, commands: CommandTable) -> None:
    seen: list[Observation] = []
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), seen.append)
    for n, markable in enumerate((True, False, True, True), start=1):
        message = OutboundMessage(to_jid="bob@localhost", body="x", markable=markable)
        pipeline.handle(_native("message_sent", outbound=record_for(message, f"m{n}", NOW)))
    marked_m3 = pipeline.handle(_native("stanza_received", _marker("m3")))
    covered = [(o.outbound.stanza_id, o.fact["marker_inferred"], o.inferred_from)
               for o in marked_m3 if o.outbound]
    assert covered == [("m3", False, None), ("m1", True, "m3")]
    assert marked_m3[0].classification.scenario == "displayed_by_client"
    assert marked_m3[1].classification.scenario == "displayed_inferred"
    marked_m4 = pipeline.handle(_native("stanza_received", _marker("m4")))
    assert [o.outbound.stanza_id for o in marked_m4 if o.outbound] == ["m4"], "no stanza is covered twice"
    assert len(seen) == 4 + 2 + 1


def test_pipeline_dead_letters_what_it_cannot_read(classifier: Classifier, commands: CommandTable) -> None:
    dead: list[tuple[NativeEvent, str]] = []
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), lambda _o: None,
                                dead_letter=lambda event, why: dead.append((event, why)))
    hostile = "<!DOCTYPE x [<!ENTITY a 'b'>]><message xmlns='jabber:client'>&a;</message>"
    assert pipeline.handle(_native("stanza_received", hostile)) == []
    assert len(dead) == 1 and dead[0][0].raw == hostile


def test_pipeline_health_events_and_server_capabilities(classifier: Classifier,
                                                        commands: CommandTable) -> None:
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), lambda _o: None)
    down = pipeline.handle(_native("stream_disconnected", will_retry=True))
    assert down[0].classification.scenario == "stream_down_retrying"
    failed = pipeline.handle(_native("authentication_failed", will_retry=False))
    assert failed[0].classification.assessment.subclass == "fail.authentication_failed"
    server = ("<iq xmlns='jabber:client' type='result' from='localhost' to='alerts@localhost/a' id='d1'>"
              "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='msgoffline'/></query></iq>")
    pipeline.handle(_native("capabilities", server, jid="localhost", features=["msgoffline"]))
    record = record_for(OutboundMessage(to_jid="bob@localhost", body="x"), "m1", NOW)
    pipeline.presence("notify").observe("bob@localhost/phone", "unavailable", NOW)
    acked = pipeline.handle(_native("sm_ack", outbound=record))
    assert acked[0].fact["cap_offline_storage"] is True
    assert acked[0].classification.scenario == "offline_stored"


def test_the_client_provider_takes_the_service_configuration_and_needs_a_password() -> None:
    service_account = config.AccountConfig(ref="incident_alert", provider="slixmpp", jid="alerts@localhost",
                                           password=config.Secret("s3cret"), host="127.0.0.1", port=5299,
                                           ca_certs="/tmp/ca.pem", verify_tls=False)
    provider = SlixmppProvider(service_account, lambda event: None)
    assert provider.provider_account_ref == "incident_alert" and provider.config is service_account
    health = provider.health()
    assert (health.xmpp_account_ref, health.server_ref) == ("incident_alert", "127.0.0.1")
    assert "tls_verification_disabled" in health.known_degradations
    assert "s3cret" not in repr(service_account)
    with pytest.raises(ValueError, match="no password"):
        SlixmppProvider(config.AccountConfig(ref="x", provider="slixmpp", jid="x@localhost"),
                        lambda event: None)


@pytest.mark.parametrize("xml", [
    "<message xmlns='jabber:client' id='a'><body>x</body></message>",
    "<presence xmlns='jabber:client'/>",
    "<iq xmlns='jabber:client' type='get' id='q'/>",
    "<message xmlns='jabber:server'/>",
    "<message xmlns='jabber:component:accept'/>",
    "<r xmlns='urn:xmpp:sm:3'/>",
])
@pytest.mark.parametrize("tag", ["{jabber:client}message", "{jabber:client}presence"])
def test_root_tag_matcher_matches_what_the_xpath_matcher_matched(xml: str, tag: str) -> None:
    stanza = StanzaBase(xml=ET.fromstring(xml))
    assert MatchRootTag(tag).match(stanza) == MatchXPath(tag).match(stanza)
