"""A sent message is carried by the event that writes it and again by its server ack: the raw stanza (§30)
is kept once, when written, and the ack's evidence references that row and covers its digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.evidence.recorder import Recorder, TenantRecorder
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.records import XmppAttempt, XmppMessage

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
BODY = "Incident 42: please acknowledge."
SENT = ("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='st-1'><body>" + BODY + "</body>"
        "<request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='st-1'/></message>")



def _pipeline(store, tenant: str, classifier: Classifier) -> EvidencePipeline:
    sink = TenantRecorder(Recorder(store, classifier.policy.precedence), store, tenant)
    store.create_message(XmppMessage(tenant, "msg-1", T0, case_id="case-1", participant_id="p-1"))
    store.create_attempt(XmppAttempt(tenant, "att-1", "msg-1", "acct", "alerts@localhost", "bob@localhost",
                                     "bare_jid", T0, T0, stanza_id="st-1", origin_id="st-1"))
    return EvidencePipeline(classifier, CommandTable.from_mapping(classifier.policy.commands),
                            StoreOutboundIndex(store, tenant), sink, dead_letter=sink.dead_letter,
                            late=sink.is_late, contexts=sink.tracking_context)


def _written(attempt_id: str = "att-1", ms: int = 0) -> NativeEvent:
    record = OutboundRecord(stanza_id="st-1", to_jid="bob@localhost", endpoint_type="bare_jid",
                            message_type="chat", origin_id="st-1", message_id="msg-1", attempt_id=attempt_id,
                            receipt_requested=True, sent_at=T0)
    return NativeEvent("message_sent", "acct", T0 + timedelta(milliseconds=ms), raw=SENT, stanza_id="st-1",
                       detail={"outbound": record, "stream_management": True})


def _acked(written: NativeEvent, ms: int = 2) -> NativeEvent:
    return NativeEvent("sm_ack", "acct", T0 + timedelta(milliseconds=ms), raw=SENT, stanza_id="st-1",
                       detail={"outbound": written.detail["outbound"]})


def _handle(store, pipeline: EvidencePipeline, event: NativeEvent) -> None:
    with store.transaction():
        pipeline.handle(event)


def _cited(store, tenant: str) -> list[tuple[str, str]]:
    return [(e.raw_ref, e.scenario) for e in store.evidence_for_message(tenant, "msg-1")]


def test_the_ack_references_the_raw_stanza_kept_when_the_message_was_written(store, tenant, classifier):
    pipeline = _pipeline(store, tenant, classifier)
    written = _written()
    _handle(store, pipeline, written)
    _handle(store, pipeline, _acked(written))
    cited = _cited(store, tenant)
    assert [scenario for _, scenario in cited] == ["sent_to_server", "server_acknowledged"]
    assert len({ref for ref, _ in cited}) == 1
    ref, content = store.get_raw(tenant, cited[0][0])
    assert ref.received_at == T0 and ref.redacted and BODY not in content
    rows = store.chain_rows(tenant)
    assert len({row["raw_sha256"] for row in rows}) == 1 and rows[0]["raw_sha256"]
    report = store.verify_chain(tenant)
    assert report.ok and report.raw_checked == 2


def test_an_ack_keeps_its_own_copy_when_the_written_one_was_rolled_back(store, tenant, classifier):
    pipeline = _pipeline(store, tenant, classifier)
    written = _written()
    with pytest.raises(RuntimeError), store.transaction():
        pipeline.handle(written)
        raise RuntimeError("the unit fails after keeping the raw stanza")
    _handle(store, pipeline, _acked(written))
    [(ref, scenario)] = _cited(store, tenant)
    assert scenario == "server_acknowledged" and store.get_raw(tenant, ref) is not None
    assert store.verify_chain(tenant).ok


def test_a_message_written_again_is_kept_again_and_its_ack_cites_the_new_copy(store, tenant, classifier):
    pipeline = _pipeline(store, tenant, classifier)
    first = _written()
    _handle(store, pipeline, first)
    again = _written("att-1.1", ms=10)
    _handle(store, pipeline, again)
    _handle(store, pipeline, _acked(again, ms=12))
    first_ref, again_ref, acked_ref = (ref for ref, _ in _cited(store, tenant))
    assert first_ref != again_ref == acked_ref
    assert store.get_raw(tenant, again_ref)[0].received_at == T0 + timedelta(milliseconds=10)
    assert store.verify_chain(tenant).ok
