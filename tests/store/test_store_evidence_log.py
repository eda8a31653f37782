"""The append-only evidence log: stored once, ordered by event time, dedupe, lateness, recomputation."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace

import psycopg
import pytest
from store_helpers import POLICY_VERSION, PRECEDENCE, T0, evidence, minutes

from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.evidence import INTERNAL_EVENT_TYPE


def test_appended_events_carry_every_field_and_feed_position(store, tenant):
    [event] = evidence(
        tenant,
        "m1",
        "delivered_to_client",
        T0,
        sender="bob@example.net/phone",
        stanza_id="s1",
        endpoint="ep_1",
    )
    result = store.append_evidence([event])

    [stored] = result.stored
    assert stored.seq is not None and stored.recorded_at is not None
    assert stored == replace(event, seq=stored.seq, recorded_at=stored.recorded_at) and event.seq is None
    read = store.get_event(tenant, event.event_id)
    assert read == stored and read.notes == event.notes and read.grade_dimensions == event.grade_dimensions
    assert read.event_type == "notification.endpoint.accepted"
    assert read.assessment.subclass == "success.delivered_to_client"
    assert read.grade == "delivery_receipt"
    assert read.rule_id == "test.delivered_to_client"
    assert read.policy_version == POLICY_VERSION
    assert (read.message_id, read.attempt_id, read.case_id, read.participant_id, read.correlation_id) == (
        "m1",
        "m1-a1",
        "case-1",
        "participant-1",
        "corr-1",
    )
    assert read.endpoint_ref == "ep_1"
    assert read.occurred_at == T0
    assert read.fact == {"kind": "receipt"}


def test_same_receipt_twice_is_stored_once(store, tenant):
    first = evidence(tenant, "m1", "delivered_to_client", T0, sender="bob@example.net/phone", stanza_id="s1")
    again = evidence(
        tenant, "m1", "delivered_to_client", T0 + minutes(1), sender="bob@example.net/phone", stanza_id="s1"
    )

    assert len(store.append_evidence(first).stored) == 1
    repeat = store.append_evidence(again)

    assert repeat.stored == () and repeat.duplicates == (again[0].event_id,)
    assert len(store.evidence_for_message(tenant, "m1")) == 1


def test_receipts_from_two_resources_are_two_pieces_of_evidence(store, tenant):
    phone = evidence(tenant, "m1", "delivered_to_client", T0, sender="bob@example.net/phone", stanza_id="s1")
    laptop = evidence(
        tenant, "m1", "delivered_to_client", T0, sender="bob@example.net/laptop", stanza_id="s1"
    )
    store.append_evidence(phone)
    store.append_evidence(laptop)
    assert len(store.evidence_for_message(tenant, "m1")) == 2


def test_a_classification_without_events_is_logged_as_internal_entry(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "receipt_timeout", T0))
    [entry] = store.evidence_for_message(tenant, "m1")
    assert entry.event_type == INTERNAL_EVENT_TYPE and not entry.emitted
    assert entry.assessment.subclass == "undef.receipt_requested_no_response"


def test_timeline_orders_by_event_time_with_delay_stamp_honoured(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0 + minutes(1)))
    # offline delivery: the receipt was observed later but carries an earlier XEP-0203 delay stamp
    store.append_evidence(
        evidence(
            tenant,
            "m1",
            "delivered_to_client",
            T0 + minutes(30),
            delay=T0 + minutes(5),
            sender="bob@example.net/phone",
            stanza_id="s1",
        )
    )
    store.append_evidence(evidence(tenant, "m1", "adapter_accepted", T0))

    entries = lifecycle.timeline(store.evidence_for_message(tenant, "m1"))
    assert [e.scenario for e in entries] == ["adapter_accepted", "server_acknowledged", "delivered_to_client"]
    assert entries[2].occurred_at == T0 + minutes(5)
    assert entries[2].recorded_at > entries[0].recorded_at or entries[2].seq < entries[0].seq


def test_receipt_before_server_ack_gives_the_same_assessment(store, tenant):
    ack = evidence(tenant, "m-in-order", "server_acknowledged", T0)
    receipt = evidence(
        tenant, "m-in-order", "delivered_to_client", T0 + minutes(1), sender="b@x/r", stanza_id="s"
    )
    store.append_evidence(ack)
    store.append_evidence(receipt)
    store.append_evidence(
        evidence(tenant, "m-reversed", "delivered_to_client", T0 + minutes(1), sender="b@x/r", stanza_id="s")
    )
    store.append_evidence(evidence(tenant, "m-reversed", "server_acknowledged", T0))

    in_order = lifecycle.assess(
        "m-in-order", store.evidence_for_message(tenant, "m-in-order"), PRECEDENCE, "v"
    )
    reversed_ = lifecycle.assess(
        "m-reversed", store.evidence_for_message(tenant, "m-reversed"), PRECEDENCE, "v"
    )
    assert in_order.subclass == reversed_.subclass == "success.delivered_to_client"
    assert [e.scenario for e in lifecycle.timeline(store.evidence_for_message(tenant, "m-reversed"))] == [
        "server_acknowledged",
        "delivered_to_client",
    ]


def test_late_receipt_after_timeout_is_kept_and_upgrades(store, tenant):
    """§29: sent 10:00, no receipt by 10:05 (timeout fires), receipt at 11:00 is recorded, flagged late."""
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
    store.schedule_timer(tenant, "m1", "receipt_timeout", T0 + minutes(5))
    assert not store.is_late(tenant, "m1")
    store.mark_timer_fired(store.claim_due_timers(T0 + minutes(5), minutes(1))[0].timer_id, T0 + minutes(5))
    store.append_evidence(evidence(tenant, "m1", "receipt_timeout", T0 + minutes(5)))

    late = store.is_late(tenant, "m1")
    store.append_evidence(
        evidence(
            tenant, "m1", "delivered_to_client", T0 + minutes(60), sender="b@x/r", stanza_id="s1", late=late
        )
    )

    log = store.evidence_for_message(tenant, "m1")
    receipt = next(e for e in log if e.scenario == "delivered_to_client")
    assert late and receipt.late and receipt.emitted
    result = lifecycle.assess("m1", log, PRECEDENCE, POLICY_VERSION)
    assert result.subclass == "success.delivered_to_client" and result.late_evidence


def test_late_weaker_evidence_never_downgrades(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "displayed_by_client", T0, sender="b@x/r", stanza_id="s"))
    store.append_evidence(evidence(tenant, "m1", "receipt_timeout", T0 + minutes(5), late=True))
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0 + minutes(6), late=True))
    result = lifecycle.assess("m1", store.evidence_for_message(tenant, "m1"), PRECEDENCE, POLICY_VERSION)
    assert (result.category, result.subclass) == ("success", "success.displayed_by_client")


def test_recomputation_after_restart_gives_the_same_assessment(store_factory, tenant):
    first = store_factory.open()
    observations = [
        evidence(tenant, "m1", "adapter_accepted", T0),
        evidence(tenant, "m1", "server_acknowledged", T0 + minutes(1)),
        evidence(tenant, "m1", "delivered_to_client", T0 + minutes(2), sender="b@x/r", stanza_id="s"),
        evidence(tenant, "m1", "stanza_error.item_not_found", T0 + minutes(3), sender="x", stanza_id="s"),
    ]
    for events in observations:
        first.append_evidence(events)
    before = lifecycle.assess("m1", first.evidence_for_message(tenant, "m1"), PRECEDENCE, POLICY_VERSION)
    first.close()

    restarted = store_factory.open()
    after = lifecycle.assess("m1", restarted.evidence_for_message(tenant, "m1"), PRECEDENCE, POLICY_VERSION)
    assert after == before
    assert before.subclass == "undef.conflicting_evidence" and before.conflict == "delivered_and_rejected"


def test_arrival_order_does_not_change_the_assessment(store, tenant):
    scenarios = ["adapter_accepted", "server_acknowledged", "delivered_to_client", "receipt_timeout"]
    answers = set()
    for round_ in range(4):
        message = f"m{round_}"
        order = scenarios[:]
        random.Random(round_).shuffle(order)
        for minute, scenario in enumerate(order):
            events = evidence(tenant, message, scenario, T0 + minutes(minute), sender="b@x/r", stanza_id="s")
            store.append_evidence(events)
        result = lifecycle.assess(message, store.evidence_for_message(tenant, message), PRECEDENCE, "v")
        answers.add((result.category, result.subclass, result.confidence, result.strongest_signal))
    assert answers == {("success", "success.delivered_to_client", "high", "success.delivered_to_client")}


def test_the_log_has_no_update_or_delete_operation(store):
    public = {name for name in dir(store) if not name.startswith("_")}
    assert not {
        n for n in public if "evidence" in n and n.split("_")[0] in {"update", "delete", "remove", "set"}
    }


def test_tenants_do_not_see_each_others_evidence(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
    store.append_evidence(
        evidence("other-tenant", "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s")
    )
    mine = store.evidence_for_message(tenant, "m1")
    assert [e.scenario for e in mine] == ["server_acknowledged"]
    assert store.get_event("other-tenant", mine[0].event_id) is None


def test_same_dedupe_basis_in_two_tenants_is_two_events(store, tenant):
    mine = evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s")
    theirs = evidence("other-" + tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s")
    assert store.append_evidence(mine).stored and store.append_evidence(theirs).stored


def test_duplicates_within_one_append_are_stored_once(store, tenant):
    [event] = evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s")
    result = store.append_evidence([event, replace(event)])
    assert len(result.stored) == 1 and result.duplicates == (event.event_id,)


def test_a_duplicate_among_fresh_events_is_reported_and_leaves_only_a_gap(store, tenant):
    [old] = evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s1")
    [new] = evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s2")
    first = store.append_evidence([old]).stored
    result = store.append_evidence([replace(old), new, replace(new)])
    assert [e.event_id for e in result.stored] == [new.event_id]
    assert sorted(result.duplicates) == sorted([old.event_id, new.event_id])
    assert [e.seq for e in store.evidence_for_message(tenant, "m1")] == [first[0].seq, result.stored[0].seq]
    assert result.stored[0].seq > first[0].seq


def test_a_clash_of_feed_positions_raises_instead_of_passing_as_a_duplicate(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
    with store.transaction():
        store._exec(store._conn(), "UPDATE counters SET last_value = 0 WHERE name = 'evidence_feed'")
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        store.append_evidence(evidence(tenant, "m2", "server_acknowledged", T0))
