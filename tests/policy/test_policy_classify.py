"""Fact -> Classification on the fixture policy: outputs come from the scenario; invalid facts are refused."""

from __future__ import annotations

import pytest

from xmpp_connect.evidence.classify import Classifier, FactError
from xmpp_connect.policy import Policy
from xmpp_connect.policy.vocabulary import MAX_FACT_FIELDS, Vocabulary

RECEIPT = {"kind": "receipt", "correlated": True, "sender_is_addressee": True, "sender_authenticated": True}


def test_receipt_is_client_delivery_with_grade_and_unproven_awareness(classifier: Classifier) -> None:
    result = classifier.classify(RECEIPT)
    assert result.scenario == "delivered_to_client"
    assert result.rule_id == "receipts.from_addressee"
    assert result.assessment.category == "success"
    assert result.assessment.subclass == "success.delivered_to_client"
    assert result.events == ("notification.endpoint.accepted",)
    assert result.attempt_state == "delivered_to_client"
    assert result.grade is not None and result.grade.id == "delivery_receipt"
    assert result.grade.strength == "strong"
    assert any("awareness is unproven" in note for note in result.notes)
    assert result.fact == RECEIPT
    assert not result.dead_letter


def test_unmatched_fact_is_unmapped_dead_letter_never_success(classifier: Classifier,
                                                               fixture_policy: Policy) -> None:
    result = classifier.classify({"kind": "presence", "presence_show": "available"})
    assert result.scenario == "unmapped"
    assert result.rule_id is None
    assert result.assessment.subclass == "undef.unmapped"
    assert result.dead_letter
    assert result.events == ()
    assert result.grade is None
    assert result.policy_version == fixture_policy.version


def test_stanza_error_scenario_carries_retryable(classifier: Classifier) -> None:
    result = classifier.classify({"kind": "stanza_error", "error_type": "wait",
                                  "error_condition": "resource_constraint"})
    assert result.scenario == "stanza_error.resource_constraint"
    assert result.retryable is True
    assert result.assessment.category == "undef"


def test_to_dict_is_json_ready(classifier: Classifier) -> None:
    out = classifier.classify(RECEIPT).to_dict()
    assert out["assessment"] == {"category": "success", "subclass": "success.delivered_to_client",
                                 "confidence": "high"}
    assert out["grade"]["id"] == "delivery_receipt"
    assert isinstance(out["events"], list)


@pytest.mark.parametrize(
    ("fact", "message"),
    [
        ({"correlated": True}, "missing required field 'kind'"),
        ({"kind": "receipt", "sid": "x"}, "unknown fact field 'sid'"),
        ({"kind": "receipt", "correlated": 1}, "field 'correlated': 1 is not a bool"),
        ({"kind": "telepathy"}, "field 'kind': 'telepathy' is not one of"),
        (["kind", "receipt"], "a fact is a JSON object, not list"),
        ({"kind": "receipt", **{f"f{i}": True for i in range(MAX_FACT_FIELDS)}}, "at most 200 fields"),
    ],
)
def test_invalid_facts_are_refused_clearly(classifier: Classifier, fact: object, message: str) -> None:
    with pytest.raises(FactError, match=message):
        classifier.classify(fact)  # type: ignore[arg-type]


def test_vocabulary_refuses_schema_keywords_it_would_not_enforce() -> None:
    schema = {"additionalProperties": False, "required": ["kind"],
              "properties": {"kind": {"enum": ["receipt"]}, "note": {"type": "string", "maxLength": 3}}}
    with pytest.raises(ValueError, match="'note' uses \\['maxLength'\\]"):
        Vocabulary.from_schema(schema)
    with pytest.raises(ValueError, match="additionalProperties must be false"):
        Vocabulary.from_schema({"properties": {}})
