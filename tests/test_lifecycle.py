"""Timeline and assessment as pure functions of the evidence log and the precedence (§8, §11)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from xmpp_connect.evidence.lifecycle import assess, attempt_state, timeline
from xmpp_connect.model.classification import Assessment, Conflict, Precedence
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.policy.load import load_policy

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
PRECEDENCE = Precedence(
    order=(
        "success.acknowledged_by_client",
        "success.displayed_by_client",
        "success.delivered_to_client",
        "fail.recipient_not_found",
        "fail.expired",
        "undef.receipt_requested_no_response",
        "undef.server_acknowledged_only",
        "undef.pending",
    ),
    conflicts=(
        Conflict(
            "delivered_and_rejected",
            frozenset({"success.delivered_to_client"}),
            frozenset({"fail.recipient_not_found"}),
            Assessment("undef", "undef.conflicting_evidence", "low"),
        ),
    ),
)
_seq = itertools.count(1)
SHIPPED = load_policy().precedence


def entry(
    subclass: str,
    minute: float,
    *,
    confidence: str = "high",
    state: str | None = None,
    late: bool = False,
    inferred: bool = False,
    scope: str = "message",
    event_type: str = "notification.endpoint.accepted",
) -> EvidenceEvent:
    return EvidenceEvent(
        tenant_id="t",
        event_id=f"e{next(_seq)}",
        event_type=event_type,
        scenario=subclass.split(".", 1)[1],
        rule_id="r",
        policy_version="v1",
        assessment=Assessment(subclass.split(".", 1)[0], subclass, confidence),
        grade=None,
        attempt_state=state,
        occurred_at=T0 + timedelta(minutes=minute),
        message_id="m1",
        late=late,
        inferred=inferred,
        scope=scope,
        seq=next(_seq),
    )


def test_no_evidence_is_pending():
    result = assess("m1", [], SHIPPED, "v1")
    assert (result.category, result.subclass, result.strongest_signal) == ("undef", "undef.pending", None)
    assert result.recommended_coordination_interpretation.startswith("undef.pending")


def test_strongest_signal_wins_and_interpretation_never_overclaims():
    log = [
        entry("undef.server_acknowledged_only", 0, confidence="medium"),
        entry("success.delivered_to_client", 1),
    ]
    result = assess("m1", log, SHIPPED, "v1")
    assert (result.category, result.subclass, result.confidence) == (
        "success",
        "success.delivered_to_client",
        "high",
    )
    assert result.strongest_signal == "success.delivered_to_client"
    assert "awareness_unproven" in result.recommended_coordination_interpretation
    assert len(result.evidence_summary) == 2 and result.evidence_count == 2


def test_late_weaker_evidence_does_not_downgrade_but_late_stronger_upgrades():
    delivered_then_timeout = [
        entry("success.delivered_to_client", 1),
        entry("undef.receipt_requested_no_response", 5),
    ]
    assert assess("m1", delivered_then_timeout, PRECEDENCE, "v1").subclass == "success.delivered_to_client"
    timeout_then_late_receipt = [
        entry("undef.server_acknowledged_only", 0),
        entry("undef.receipt_requested_no_response", 5),
        entry("success.delivered_to_client", 60, late=True),
    ]
    result = assess("m1", timeout_then_late_receipt, PRECEDENCE, "v1")
    assert result.subclass == "success.delivered_to_client" and result.late_evidence
    assert any("[late]" in line for line in result.evidence_summary)


def test_expiry_only_where_nothing_stronger_exists():
    assert (
        assess(
            "m1", [entry("undef.server_acknowledged_only", 0), entry("fail.expired", 9)], PRECEDENCE, "v1"
        ).subclass
        == "fail.expired"
    )
    assert (
        assess(
            "m1", [entry("success.delivered_to_client", 0), entry("fail.expired", 9)], PRECEDENCE, "v1"
        ).subclass
        == "success.delivered_to_client"
    )


def test_contradictory_evidence_is_conflicting_whatever_the_order():
    for log in (
        [entry("success.delivered_to_client", 0), entry("fail.recipient_not_found", 1)],
        [entry("fail.recipient_not_found", 0), entry("success.delivered_to_client", 1)],
    ):
        result = assess("m1", log, PRECEDENCE, "v1")
        assert (result.category, result.subclass, result.confidence) == (
            "undef",
            "undef.conflicting_evidence",
            "low",
        )
        assert result.conflict == "delivered_and_rejected"
        assert result.strongest_signal == "success.delivered_to_client"


def test_same_log_same_policy_same_answer_in_any_order():
    log = [
        entry("undef.server_acknowledged_only", 0),
        entry("success.displayed_by_client", 3, inferred=True),
        entry("success.delivered_to_client", 2),
        entry("undef.receipt_requested_no_response", 5),
    ]
    answers = {assess("m1", list(order), PRECEDENCE, "v1") for order in itertools.permutations(log)}
    assert len(answers) == 1
    assert next(iter(answers)).subclass == "success.displayed_by_client"


def test_equal_rank_prefers_higher_confidence():
    log = [entry("success.delivered_to_client", 0, confidence="low"), entry("success.delivered_to_client", 5)]
    assert assess("m1", log, PRECEDENCE, "v1").confidence == "high"


def test_timeline_orders_by_event_time_labels_inferred_and_drops_health():
    log = [
        entry("success.delivered_to_client", 2),
        entry("undef.server_acknowledged_only", 0),
        entry("success.displayed_by_client", 1, inferred=True),
        entry("success.sent_to_server", 0.5, scope="health"),
    ]
    ordered = timeline(log)
    assert [e.assessment.subclass for e in ordered] == [
        "undef.server_acknowledged_only",
        "success.displayed_by_client",
        "success.delivered_to_client",
    ]
    assert [e.inferred for e in ordered] == [False, True, False]
    assert "[inferred]" in assess("m1", log, PRECEDENCE, "v1").evidence_summary[1]


def test_participant_scope_keeps_message_level_and_own_evidence():
    mine = entry("success.delivered_to_client", 1)
    theirs = EvidenceEvent(
        **{
            **mine.__dict__,
            "event_id": "x",
            "participant_id": "p2",
            "assessment": Assessment("success", "success.acknowledged_by_client", "high"),
        }
    )
    result = assess("m1", [mine, theirs], PRECEDENCE, "v1", participant_id="p1")
    assert result.subclass == "success.delivered_to_client" and result.participant_id == "p1"


def test_attempt_state_is_that_of_the_strongest_evidence():
    log = [
        entry("undef.server_acknowledged_only", 0, state="server_acknowledged"),
        entry("success.delivered_to_client", 1, state="delivered_to_client"),
        entry("undef.receipt_requested_no_response", 2),
    ]
    assert attempt_state(log, PRECEDENCE, "created") == "delivered_to_client"
    assert attempt_state([], PRECEDENCE, "accepted_by_adapter") == "accepted_by_adapter"


def test_shipped_precedence_ranks_expiry_and_delivery_as_the_spec_asks():
    """On the real mappings/precedence.yaml: expiry outranks 'still waiting', never delivery evidence."""
    shipped = SHIPPED
    for waiting in (
        "undef.server_acknowledged_only",
        "undef.sent_to_server_only",
        "undef.receipt_requested_no_response",
        "undef.offline_stored",
        "undef.pending",
    ):
        log = [entry(waiting, 0), entry("fail.expired", 9)]
        assert assess("m1", log, shipped, "v1").subclass == "fail.expired", waiting
    for stronger in ("success.delivered_to_client", "success.displayed_by_client", "success.reply_received"):
        log = [entry(stronger, 0), entry("fail.expired", 9)]
        assert assess("m1", log, shipped, "v1").subclass == stronger
    late_receipt = [entry("undef.receipt_requested_no_response", 5), entry("success.delivered_to_client", 60)]
    assert assess("m1", late_receipt, shipped, "v1").subclass == "success.delivered_to_client"


def test_every_shipped_interpretation_stays_within_evidence_language():
    """mappings/precedence.yaml interpretations: every category has one, and none claims a result."""
    for category in ("success", "fail", "undef"):
        assert SHIPPED.interpretation(category, "no.such_subclass")
    for text in (*SHIPPED.interpretations.values(), *SHIPPED.category_interpretations.values()):
        lowered = text.lower()
        assert not any(word in lowered for word in ("legally", "read confirmed", "completed", "satisfied"))


def test_ranks_are_the_first_places_in_the_orders():
    """``rank`` and ``confidence_rank`` look places up instead of scanning: each name's first index, an
    unknown one after every listed one, as ``order.index`` gave."""
    repeated = Precedence(order=("a", "b", "a"), confidence_order=("low", "low"))
    for precedence in (PRECEDENCE, SHIPPED, repeated):
        for subclass in (*precedence.order, "unlisted.subclass"):
            order = precedence.order
            expected = order.index(subclass) if subclass in order else len(order)
            assert precedence.rank(subclass) == expected
        for confidence in (*precedence.confidence_order, "high", "medium", "unknown"):
            order = precedence.confidence_order
            expected = order.index(confidence) if confidence in order else len(order)
            assert precedence.confidence_rank(confidence) == expected
    assert Precedence(order=("a", "b")) == Precedence(order=("a", "b"))
