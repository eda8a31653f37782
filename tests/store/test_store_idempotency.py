"""Idempotency (§29, §36.3): one key, one operation — across restarts and replicas; other payload:
conflict."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from xmpp_connect.store import IdempotencyConflict
from xmpp_connect.store.idempotency import operation_id, payload_hash, stanza_id
from xmpp_connect.store.timestamps import to_text

KEY = "case_123:participant_456:xmpp:notif_001"
PAYLOAD = {"action_type": "notification.send", "target_endpoint": {"value": "bob@example.net"}, "n": 1}


def test_first_claim_sends_and_replay_returns_the_original_result(store, tenant):
    first = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert first.replayed is False and first.result is None
    store.complete_operation(tenant, KEY, {"adapter_operation_id": first.operation_id, "accepted": True})

    again = store.claim_operation(tenant, KEY, payload_hash(dict(reversed(list(PAYLOAD.items())))))
    assert again.replayed is True
    assert again.operation_id == first.operation_id and again.stanza_id == first.stanza_id
    assert again.result == {"adapter_operation_id": first.operation_id, "accepted": True}


def test_replay_after_restart(store_factory, tenant):
    before = store_factory.open()
    first = before.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    before.complete_operation(tenant, KEY, {"accepted": True})
    before.close()

    after = store_factory.open().claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert after.replayed and after.operation_id == first.operation_id and after.result == {"accepted": True}


def test_ids_are_ordered_by_the_claim_time_and_a_later_replay_keeps_them(store, tenant):
    """spec/ids.md: another key claimed later sorts after; a repeat answers the first claim's ids. The core
    claims a send an API worker accepted with the operation id the worker answered."""
    at = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    first = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD), operation_id(tenant, KEY, at))
    other = KEY + ":2"
    later = store.claim_operation(
        tenant, other, payload_hash(PAYLOAD), operation_id(tenant, other, at + timedelta(milliseconds=1))
    )
    assert first.operation_id < later.operation_id and first.stanza_id < later.stanza_id
    assert first.stanza_id == stanza_id(tenant, KEY, first.operation_id)
    again = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert again.replayed and (again.operation_id, again.stanza_id) == (first.operation_id, first.stanza_id)


def test_a_claim_stored_with_the_digest_ids_of_before_is_replayed_with_them(store, tenant):
    old_operation, old_stanza = "xmppop_" + "ab" * 12, "xc-" + "cd" * 12
    with store._write() as conn:
        store._exec(
            conn,
            "INSERT INTO idempotency (tenant_id, idempotency_key, payload_hash, operation_id, stanza_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, KEY, payload_hash(PAYLOAD), old_operation, old_stanza, to_text(datetime.now(UTC))),
        )
    again = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert again.replayed and (again.operation_id, again.stanza_id) == (old_operation, old_stanza)


def test_same_key_with_another_payload_is_a_conflict(store, tenant):
    store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    with pytest.raises(IdempotencyConflict):
        store.claim_operation(tenant, KEY, payload_hash({**PAYLOAD, "n": 2}))


def test_the_stanza_id_is_derived_from_the_operation(store, tenant):
    mine = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    other_key = store.claim_operation(tenant, KEY + ":reminder", payload_hash(PAYLOAD))
    other_tenant = store.claim_operation("other-" + tenant, KEY, payload_hash(PAYLOAD))
    assert mine.stanza_id.startswith("xc-")
    assert len({mine.stanza_id, other_key.stanza_id, other_tenant.stanza_id}) == 3


def test_first_result_wins(store, tenant):
    store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    store.complete_operation(tenant, KEY, {"accepted": True})
    store.complete_operation(tenant, KEY, {"accepted": False})
    assert store.claim_operation(tenant, KEY, payload_hash(PAYLOAD)).result == {"accepted": True}


def test_racing_replicas_get_exactly_one_fresh_claim(store_factory, tenant):
    replicas = [store_factory.open() for _ in range(4)]
    outcomes = _at_once(
        replicas, lambda replica: replica.claim_operation(tenant, KEY, payload_hash(PAYLOAD)).replayed
    )
    assert sorted(outcomes) == [False, True, True, True]


def test_a_send_claims_its_key_with_its_result_in_one_row(store, tenant):
    """A first use of the key stores its ids and result together (with the send's records); a repeat, after
    a restart too, replays exactly what a claim and a completion would have left."""
    op = store.new_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert not store.operation_known(tenant, KEY), "making the ids stores nothing"
    assert op.stanza_id == stanza_id(tenant, KEY, op.operation_id) and not op.replayed
    with store.transaction():
        result = {"accepted": True, "adapter_operation_id": op.operation_id}
        assert store.claim_completed_operation(op, result)
    again = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert again.replayed and (again.operation_id, again.stanza_id) == (op.operation_id, op.stanza_id)
    assert again.result == {"accepted": True, "adapter_operation_id": op.operation_id}
    assert again.created_at == op.created_at and store.operation_completed(tenant, KEY)


def test_a_key_claimed_before_is_left_as_it_is(store, tenant):
    """Claimed before (by a claim whose send never completed, or with another payload): nothing is stored,
    and the claim that follows says what to do."""
    first = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    late = store.new_operation(tenant, KEY, payload_hash(PAYLOAD))
    other = store.new_operation(tenant, KEY, payload_hash({**PAYLOAD, "n": 2}))
    assert not store.claim_completed_operation(late, {"accepted": True})
    assert not store.claim_completed_operation(other, {"accepted": False})
    again = store.claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert again.replayed and again.operation_id == first.operation_id and again.result is None
    with pytest.raises(IdempotencyConflict):
        store.claim_operation(tenant, KEY, payload_hash({**PAYLOAD, "n": 2}))


def test_a_claim_rolled_back_with_its_records_leaves_the_key_free(store, tenant):
    op = store.new_operation(tenant, KEY, payload_hash(PAYLOAD))
    with pytest.raises(RuntimeError), store.transaction():
        store.claim_completed_operation(op, {"accepted": True})
        raise RuntimeError("the send's records failed")
    assert not store.operation_known(tenant, KEY)
    assert store.claim_operation(tenant, KEY, payload_hash(PAYLOAD)).replayed is False


def test_racing_replicas_get_exactly_one_claim_with_its_result(store_factory, tenant):
    """Replicas claiming the same key with their results at once: one stores its claim, every other finds it
    (the in-flight guard of the claim, kept)."""
    replicas = [store_factory.open() for _ in range(4)]

    def claim(replica) -> bool:
        op = replica.new_operation(tenant, KEY, payload_hash(PAYLOAD))
        with replica.transaction():
            return bool(replica.claim_completed_operation(op, {"by": op.operation_id}))

    outcomes = _at_once(replicas, claim)
    assert sorted(outcomes) == [False, False, False, True]
    stored = replicas[0].claim_operation(tenant, KEY, payload_hash(PAYLOAD))
    assert stored.replayed and stored.result == {"by": stored.operation_id}


def _at_once(replicas: list, claim: Callable[[object], bool]) -> list[bool]:
    """``claim(replica)`` for every replica on a thread of its own, all released together; their answers."""
    outcomes: list[bool] = []
    barrier = threading.Barrier(len(replicas))

    def run(replica: object) -> None:
        barrier.wait(timeout=10)
        outcomes.append(claim(replica))

    threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return outcomes
