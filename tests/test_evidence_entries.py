"""Log entries built from a classification's template are the entries ``EvidenceEvent(...)`` builds: equal,
with the same attributes in the same order, the same repr, and dicts of their own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.corpus import load_corpus
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.recorder import Evidence, Recorder
from xmpp_connect.model.classification import Classification
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.evidence import (
    INTERNAL_EVENT_TYPE,
    DedupeBasis,
    EvidenceContext,
    EvidenceEvent,
    build_evidence_events,
    dedupe_event_id,
    dedupe_key,
    endpoint_ref,
)
from xmpp_connect.model.ids import beside_message
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.paths import default_corpus_dir
from xmpp_connect.store.records import AppendResult, XmppMessage

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DIMENSIONS = ("strength", "actor_certainty", "authority_certainty", "payload_certainty",
              "interaction_certainty", "timing_certainty", "channel_certainty", "non_repudiation_strength")



def _constructed(classification: Classification, context: EvidenceContext, event_type: str,
                 fact: dict, new_id: str) -> EvidenceEvent:
    """The entry as the dataclass constructor builds it (the code before the templates)."""
    key = dedupe_key(context.message_id, context.dedupe, event_type) if context.dedupe else None
    event_id = (dedupe_event_id(context.tenant_id, context.message_id, key) if key
                else "evt_" + beside_message(context.message_id, new_id, 32))
    grade = classification.grade
    return EvidenceEvent(
        tenant_id=context.tenant_id, event_id=event_id, event_type=event_type,
        scenario=classification.scenario, rule_id=classification.rule_id,
        policy_version=classification.policy_version, assessment=classification.assessment,
        grade=grade.id if grade else None,
        grade_dimensions={name: getattr(grade, name) for name in DIMENSIONS} if grade else {},
        attempt_state=classification.attempt_state, occurred_at=context.delay_stamp or context.observed_at,
        message_id=context.message_id, attempt_id=context.attempt_id, case_id=context.case_id,
        participant_id=context.participant_id, correlation_id=context.correlation_id,
        endpoint_ref=context.endpoint_ref, raw_ref=context.raw_ref,
        late=context.late or fact.get("late") is True,
        inferred=(fact.get("marker_inferred") is True or fact.get("reply_via") == "conversation"
                  or fact.get("context_registered") is True),
        emitted=event_type != INTERNAL_EVENT_TYPE, scope=classification.scope, dedupe_key=key,
        notes=classification.notes, fact=fact, sender_jid=context.sender_jid,
        sender_resource=context.sender_resource,
    )


def _contexts() -> list[EvidenceContext]:
    return [
        EvidenceContext(tenant_id="t", observed_at=NOW),
        EvidenceContext(tenant_id="t", observed_at=NOW, delay_stamp=NOW - timedelta(seconds=3),
                        message_id="xmppmsg_0193a1b2c3d4" + "f" * 20, attempt_id="att_1", case_id="c",
                        participant_id="p", correlation_id="x", endpoint_ref="ep_1", raw_ref="raw_1",
                        late=True, dedupe=DedupeBasis("receipt", "bob@localhost/phone", "s1"),
                        sender_jid="bob@localhost/phone", sender_resource="phone"),
        EvidenceContext(tenant_id="u", observed_at=NOW, message_id="msg_legacy", raw_ref="raw_2",
                        dedupe=DedupeBasis("sm_ack:", "", "s2|s2")),
    ]


def test_entries_equal_the_constructors_over_the_corpus(classifier: Classifier) -> None:
    commands = CommandTable.from_mapping(classifier.policy.commands)
    classifications: list[Classification] = []
    for case in load_corpus(default_corpus_dir()):
        try:
            classifications.append(classifier.classify(case.build_fact(commands)))
        except ValueError:
            continue
    assert len(classifications) > 100
    for _ in range(2):  # the second time from the templates made the first time
        for classification in classifications:
            for context in _contexts():
                built = build_evidence_events(classification, context, new_id=lambda: "0" * 32)
                types = classification.events or (INTERNAL_EVENT_TYPE,)
                assert len(built) == len(types)
                for entry, event_type in zip(built, types, strict=True):
                    expected = _constructed(classification, context, event_type, dict(classification.fact),
                                            "0" * 32)
                    assert entry == expected
                    assert list(vars(entry).items()) == list(vars(expected).items())
                    assert repr(entry) == repr(expected)
                    assert type(entry.grade_dimensions) is dict and type(entry.fact) is dict
                assert len({id(e.grade_dimensions) for e in built}) == len(built)


def test_entries_do_not_share_their_dicts(classifier: Classifier) -> None:
    classification = classifier.classify({"kind": "sm_ack", "correlated": True, "late": False,
                                          "via_component": False, "correlation_ambiguous": False})
    first = build_evidence_events(classification, _contexts()[1])[0]
    second = build_evidence_events(classification, _contexts()[1])[0]
    assert first.grade_dimensions is not second.grade_dimensions and first.fact is not second.fact
    with pytest.raises(AttributeError):
        first.event_type = "other"  # type: ignore[misc]


class _AppendOnly:
    """What the recorder asks of a store to build and append entries; keeps what it is given."""

    def __init__(self, message: XmppMessage) -> None:
        self.message = message
        self.appended: list[EvidenceEvent] = []

    def get_message(self, tenant_id: str, message_id: str) -> XmppMessage | None:
        return self.message if message_id == self.message.message_id else None

    def append_evidence(self, events: Sequence[EvidenceEvent]) -> AppendResult:
        self.appended.extend(events)
        return AppendResult(stored=(), duplicates=())


@pytest.mark.parametrize("hide_jids", [False, True])
def test_the_recorders_entries_are_those_of_its_context(classifier: Classifier, hide_jids: bool) -> None:
    """The recorder gives ``evidence_entries`` the context's fields as a mapping: its entries, from an
    observation and from an ``Evidence``, equal those ``EvidenceEvent(...)`` builds from the context."""
    message = XmppMessage(tenant_id="t", message_id="xmppmsg_0193a1b2c3d4" + "e" * 20, created_at=NOW,
                          case_id="case", participant_id="part", tracking_context={"correlation_id": "corr"})
    store = _AppendOnly(message)
    recorder = Recorder(store, classifier.policy.precedence, hide_jids=hide_jids)  # type: ignore[arg-type]
    outbound = OutboundRecord(stanza_id="s1", to_jid="bob@localhost", endpoint_type="bare_jid",
                              message_type="chat", message_id=message.message_id, attempt_id="att_1.2",
                              receipt_requested=True, sent_at=NOW)
    fact = {"kind": "receipt", "message_type": "normal", "endpoint_type": "bare_jid",
            "receipt_requested": True, "markable": False, "late": True, "via_component": False,
            "correlation_ambiguous": False,
            "sender_authenticated": True, "sender_is_addressee": True, "delayed": True, "correlated": True}
    classification = classifier.classify(fact)
    event = NativeEvent("stanza_received", "notify", NOW, raw="<message/>", stanza_id="r1")
    stamp = NOW - timedelta(seconds=5)
    recorder.record_observation("t", Observation(event, fact, classification, outbound,
                                                 sender="bob@localhost/phone", delay_stamp=stamp), "raw_1")
    recorder.record(Evidence(tenant_id="t", classification=classification, observed_at=NOW,
                             message_id=message.message_id, attempt_id="att_1", endpoint_jid="bob@localhost",
                             sender="bob@localhost/phone", raw_ref="raw_2",
                             dedupe=DedupeBasis("receipt:", "bob@localhost/phone", "s1")))
    sender = {"sender_jid": None, "sender_resource": recorder._sender("t", "bob@localhost/phone")[1]} \
        if hide_jids else {"sender_jid": "bob@localhost/phone", "sender_resource": "phone"}
    common = {"tenant_id": "t", "message_id": message.message_id, "case_id": "case", "participant_id": "part",
              "correlation_id": "corr", "endpoint_ref": endpoint_ref("t", "bob@localhost"), **sender}
    contexts = [
        EvidenceContext(observed_at=NOW, delay_stamp=stamp, attempt_id="att_1.2", raw_ref="raw_1",
                        dedupe=DedupeBasis("receipt:", "bob@localhost/phone", "s1#2"), **common),
        EvidenceContext(observed_at=NOW, attempt_id="att_1", raw_ref="raw_2",
                        dedupe=DedupeBasis("receipt:", "bob@localhost/phone", "s1"), **common),
    ]
    assert len(store.appended) == 2
    for entry, context in zip(store.appended, contexts, strict=True):
        expected = _constructed(classification, context, classification.events[0], dict(fact), "")
        assert list(vars(entry).items()) == list(vars(expected).items())
