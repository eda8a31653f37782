"""Held notification.schedule requests: the request and its scheduled_send timer in the store, taken out
exactly once (also by several replicas on one database), cancellable, bodiless in metadata-only mode."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from store_helpers import T0

from xmpp_connect.store import StoreOptions
from xmpp_connect.store.held_requests import SCHEDULED_SEND
from xmpp_connect.store.migrations import MIGRATIONS
from xmpp_connect.store.sql import SqlStore

if TYPE_CHECKING:
    from conftest import StoreFactory

SEND_AT = T0 + timedelta(minutes=5)
REQUEST = {
    "action_type": "notification.schedule",
    "idempotency_key": "k1",
    "content": {"body": "The confidential body text"},
    "send_at": "2026-01-01T10:05:00Z",
}
TEMPLATED = {
    "action_type": "notification.schedule",
    "idempotency_key": "k2",
    "template_ref": "reminder",
    "variables": {"summary": "incident 42"},
    "send_at": "2026-01-01T10:05:00Z",
}


def hold(store: SqlStore, tenant: str, op: str = "xmppop_1", request: dict | None = None) -> None:
    store.hold_request(tenant, op, "xmppmsg_" + op.removeprefix("xmppop_"), request or REQUEST, SEND_AT)


def test_held_request_has_a_scheduled_send_timer_and_is_released_once(store: SqlStore, tenant: str) -> None:
    hold(store, tenant)
    [timer] = store.timers_for_message(tenant, "xmppmsg_1")
    assert (timer.timer, timer.due_at) == (SCHEDULED_SEND, SEND_AT)
    assert store.held_request_for_message(tenant, "xmppmsg_1").operation_id == "xmppop_1"
    assert store.claim_due_timers(SEND_AT - timedelta(seconds=1), timedelta(seconds=60)) == []
    [due] = store.claim_due_timers(SEND_AT, timedelta(seconds=60))
    assert (due.tenant_id, due.message_id, due.timer) == (tenant, "xmppmsg_1", SCHEDULED_SEND)
    released = store.release_held_request(tenant, "xmppop_1")
    assert released is not None and released.request == REQUEST and released.body_kept is True
    assert store.release_held_request(tenant, "xmppop_1") is None
    assert store.held_request_for_message(tenant, "xmppmsg_1") is None
    assert store.is_late(tenant, "xmppmsg_1") is False


def test_holding_again_keeps_the_first_request(store: SqlStore, tenant: str) -> None:
    hold(store, tenant)
    hold(store, tenant, request=TEMPLATED)
    released = store.release_held_request(tenant, "xmppop_1")
    assert released is not None and released.request == REQUEST


def test_cancel_removes_the_request_and_its_timer(store: SqlStore, tenant: str) -> None:
    hold(store, tenant)
    assert store.cancel_held_request(tenant, "xmppop_1") is True
    assert store.timers_for_message(tenant, "xmppmsg_1") == []
    assert store.claim_due_timers(SEND_AT, timedelta(seconds=60)) == []
    assert store.release_held_request(tenant, "xmppop_1") is None
    assert store.cancel_held_request(tenant, "xmppop_1") is False


def test_requests_are_tenant_scoped(store: SqlStore, tenant: str) -> None:
    hold(store, tenant)
    assert store.release_held_request("other-" + tenant, "xmppop_1") is None
    assert store.cancel_held_request("other-" + tenant, "xmppop_1") is False
    assert store.held_request_for_message("other-" + tenant, "xmppmsg_1") is None
    assert store.release_held_request(tenant, "xmppop_1") is not None


def test_metadata_only_mode_holds_no_body(store_factory: StoreFactory, tenant: str) -> None:
    store = store_factory.open(StoreOptions(metadata_only=True))
    hold(store, tenant, "xmppop_1", REQUEST)
    hold(store, tenant, "xmppop_2", TEMPLATED)
    inline = store.release_held_request(tenant, "xmppop_1")
    assert inline is not None and inline.body_kept is False and "content" not in inline.request
    assert inline.request["send_at"] == REQUEST["send_at"]
    templated = store.release_held_request(tenant, "xmppop_2")
    assert templated is not None and templated.body_kept is True and templated.request == TEMPLATED


def test_a_restarted_store_finds_the_request_and_its_due_timer(
    store_factory: StoreFactory, tenant: str
) -> None:
    first = store_factory.open()
    hold(first, tenant)
    first.close()
    again = store_factory.open()
    [due] = again.claim_due_timers(SEND_AT, timedelta(seconds=60))
    assert due.timer == SCHEDULED_SEND
    held = again.held_request_for_message(tenant, due.message_id)
    assert held is not None and again.release_held_request(tenant, held.operation_id) is not None


def test_a_replica_that_claims_after_a_crashed_one_finds_nothing_to_send(
    store_factory: StoreFactory, tenant: str
) -> None:
    """Replica A took the request out and crashed before marking the timer fired: when A's lease ends,
    replica B fires the timer again and finds no request, so nothing is sent twice."""
    a, b = store_factory.open(), store_factory.open()
    hold(a, tenant)
    [claimed] = a.claim_due_timers(SEND_AT, timedelta(seconds=30))
    assert b.claim_due_timers(SEND_AT, timedelta(seconds=30)) == []
    assert a.release_held_request(tenant, "xmppop_1") is not None
    [again] = b.claim_due_timers(SEND_AT + timedelta(seconds=31), timedelta(seconds=30))
    assert again.timer_id == claimed.timer_id
    assert b.held_request_for_message(tenant, again.message_id) is None
    assert b.release_held_request(tenant, "xmppop_1") is None


def test_concurrent_replicas_release_a_request_exactly_once(store_factory: StoreFactory, tenant: str) -> None:
    replicas = 4
    stores = [store_factory.open() for _ in range(replicas)]
    for n in range(20):
        hold(stores[0], tenant, f"xmppop_{n}")
    got: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(replicas)

    def replica(store: SqlStore) -> None:
        start.wait()
        for n in range(20):
            held = store.release_held_request(tenant, f"xmppop_{n}")
            if held is not None:
                with lock:
                    got.append(held.operation_id)

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(got) == sorted(f"xmppop_{n}" for n in range(20))


def test_held_requests_arrive_by_a_versioned_migration(store: SqlStore) -> None:
    assert [m.version for m in MIGRATIONS][:2] == [1, 2]
    assert store.schema_version() >= 2
