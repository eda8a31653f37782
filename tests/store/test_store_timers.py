"""Timers: persisted due times fired by an asyncio loop, also after a restart; their evidence in the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from store_helpers import POLICY_VERSION, PRECEDENCE, T0, classification, evidence, minutes

from xmpp_connect.evidence import lifecycle
from xmpp_connect.model.evidence import DedupeBasis, EvidenceContext, build_evidence_events
from xmpp_connect.sending.timers import TimerFact, TimerService
from xmpp_connect.store.timer_table import NEXT_DUE_WINDOW

SCENARIO_OF_TIMER = {"receipt_timeout": "receipt_timeout", "expiry": "expired"}


def _recorder(store, fired: list[TimerFact]):
    """The callback the pipeline would give: classify the timer fact and append its evidence."""

    async def record(fact: TimerFact) -> None:
        fired.append(fact)
        context = EvidenceContext(
            tenant_id=fact.tenant_id,
            observed_at=fact.fired_at,
            message_id=fact.message_id,
            dedupe=DedupeBasis(f"timer:{fact.timer}", "adapter", fact.timer_id),
        )
        store.append_evidence(
            build_evidence_events(classification(SCENARIO_OF_TIMER[fact.timer], **fact.fact()), context)
        )

    return record


async def test_receipt_timeout_fires_and_records_no_response(store, tenant):
    fired: list[TimerFact] = []
    service = TimerService(
        store, _recorder(store, fired), default_receipt_timeout=timedelta(seconds=0.2), max_sleep=0.05
    )
    store.append_evidence(evidence(tenant, "m1", "server_acknowledged", datetime.now(UTC)))
    service.schedule_receipt_timeout(tenant, "m1", datetime.now(UTC))
    runner = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(30):  # generous for a loaded machine: returns once the timer fires
            while not fired:
                await asyncio.sleep(0.02)
    finally:
        service.stop()
        await asyncio.wait_for(runner, 5)

    assert [(f.message_id, f.timer, f.fact()) for f in fired] == [
        ("m1", "receipt_timeout", {"kind": "timer", "timer": "receipt_timeout"})
    ]
    assert store.is_late(tenant, "m1")
    result = lifecycle.assess("m1", store.evidence_for_message(tenant, "m1"), PRECEDENCE, POLICY_VERSION)
    assert result.subclass == "undef.receipt_requested_no_response" and result.category == "undef"


async def test_per_request_timeout_overrides_the_default(store, tenant):
    service = TimerService(store, _recorder(store, []), default_receipt_timeout=timedelta(minutes=5))
    default = service.schedule_receipt_timeout(tenant, "m1", T0)
    custom = service.schedule_receipt_timeout(tenant, "m2", T0, timeout=timedelta(seconds=30))
    assert default.due_at == T0 + minutes(5) and custom.due_at == T0 + timedelta(seconds=30)


async def test_timer_scheduled_before_restart_fires_after_it(store_factory, tenant):
    now = datetime.now(UTC)
    before = store_factory.open()
    TimerService(before, _recorder(before, []), default_receipt_timeout=timedelta(seconds=1)).schedule_expiry(
        tenant, "m1", now - timedelta(seconds=1)
    )
    before.close()

    after = store_factory.open()
    fired: list[TimerFact] = []
    service = TimerService(after, _recorder(after, fired), default_receipt_timeout=timedelta(minutes=5))
    assert await service.fire_due() == 1
    assert await service.fire_due() == 0
    assert [f.timer for f in fired] == ["expiry"]
    assert (
        lifecycle.assess("m1", after.evidence_for_message(tenant, "m1"), PRECEDENCE, "v").subclass
        == "fail.expired"
    )


async def test_expiry_does_not_override_stronger_evidence(store, tenant):
    store.append_evidence(evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s"))
    store.schedule_timer(tenant, "m1", "expiry", T0 + minutes(10))
    service = TimerService(
        store, _recorder(store, []), default_receipt_timeout=minutes(5), clock=lambda: T0 + minutes(11)
    )
    assert await service.fire_due() == 1
    result = lifecycle.assess("m1", store.evidence_for_message(tenant, "m1"), PRECEDENCE, POLICY_VERSION)
    assert result.subclass == "success.delivered_to_client"


async def test_a_failing_callback_leaves_the_timer_pending(store, tenant):
    async def broken(fact: TimerFact) -> None:
        raise RuntimeError("classifier down")

    store.schedule_timer(tenant, "m1", "receipt_timeout", T0)
    service = TimerService(
        store,
        broken,
        default_receipt_timeout=minutes(5),
        clock=lambda: T0 + minutes(1),
        lease=timedelta(seconds=30),
    )
    assert await service.fire_due() == 0
    [timer] = store.timers_for_message(tenant, "m1")
    assert timer.fired_at is None
    assert store.next_due_at() == T0 + minutes(1) + timedelta(seconds=30)  # no busy loop while leased
    # the lease expires; a healthy callback then fires it
    fired: list[TimerFact] = []
    healthy = TimerService(
        store, _recorder(store, fired), default_receipt_timeout=minutes(5), clock=lambda: T0 + minutes(2)
    )
    assert await healthy.fire_due() == 1 and fired[0].timer_id == timer.timer_id


def test_reschedule_moves_a_pending_timer_and_cancel_drops_it(store, tenant):
    store.schedule_timer(tenant, "m1", "receipt_timeout", T0 + minutes(5))
    moved = store.schedule_timer(tenant, "m1", "receipt_timeout", T0 + minutes(9))
    assert moved.due_at == T0 + minutes(9) and len(store.timers_for_message(tenant, "m1")) == 1
    assert store.next_due_at() == T0 + minutes(9)
    assert store.cancel_timer(tenant, "m1", "receipt_timeout") is True
    assert store.timers_for_message(tenant, "m1") == [] and store.next_due_at() is None


def test_a_fired_timer_is_not_rearmed(store, tenant):
    store.schedule_timer(tenant, "m1", "receipt_timeout", T0)
    [claimed] = store.claim_due_timers(T0, minutes(1))
    store.mark_timer_fired(claimed.timer_id, T0)
    again = store.schedule_timer(tenant, "m1", "receipt_timeout", T0 + minutes(10))
    assert again.fired_at == T0 and again.due_at == T0
    assert store.claim_due_timers(T0 + minutes(20), minutes(1)) == []


def test_two_replicas_claim_a_due_timer_once(store_factory, tenant):
    first, second = store_factory.open(), store_factory.open()
    for n in range(10):
        first.schedule_timer(tenant, f"m{n}", "receipt_timeout", T0)
    claimed = first.claim_due_timers(T0, minutes(1), limit=6) + second.claim_due_timers(T0, minutes(1))
    assert sorted(t.message_id for t in claimed) == sorted(f"m{n}" for n in range(10))


async def test_a_stop_before_the_first_step_ends_run(store, tenant):
    """A service stopped right after start must not wait forever for a timer loop that never saw the stop."""
    service = TimerService(store, _recorder(store, []), default_receipt_timeout=timedelta(minutes=5))
    running = asyncio.create_task(service.run())
    service.stop()
    await asyncio.wait_for(running, timeout=5)


def test_the_next_due_time_counts_leases_read_in_due_order_or_aggregated(store, tenant):
    for n in range(NEXT_DUE_WINDOW + 6):
        store.schedule_timer(tenant, f"m{n}", "receipt_timeout", T0 + timedelta(seconds=n))
    assert store.next_due_at() == T0
    store.claim_due_timers(T0 + minutes(2), minutes(10), limit=3)
    assert store.next_due_at() == T0 + timedelta(seconds=3)
    store.claim_due_timers(T0 + minutes(2), minutes(10), limit=NEXT_DUE_WINDOW)
    # the first window is all leased: the aggregate answers
    assert store.next_due_at() == T0 + timedelta(seconds=NEXT_DUE_WINDOW + 3)
    store.claim_due_timers(T0 + minutes(2), minutes(10), limit=NEXT_DUE_WINDOW)
    assert store.next_due_at() == T0 + minutes(12)


def _read_late(store, tenant: str, message_id: str) -> bool:
    """Lateness as the timer rows say it (the read ``is_late`` may answer from memory instead)."""
    row = store._one(
        "SELECT COUNT(*) AS n FROM timers WHERE tenant_id = ? AND message_id = ? AND fired_at IS NOT NULL"
        " AND timer IN ('expiry', 'receipt_timeout')",
        (tenant, message_id),
    )
    return bool(row["n"])


def test_a_message_created_here_is_late_exactly_when_its_timers_say_so(store, tenant):
    """Evidence about a message this process created is not late until a lateness timer of it is claimed
    and fired here: the same answer as the read, at every step."""
    now = datetime.now(UTC)
    store.timers_start_here(tenant, "m1")
    store.schedule_timer(tenant, "m1", "marker_timeout", now - timedelta(seconds=2))
    store.schedule_timer(tenant, "m1", "receipt_timeout", now - timedelta(seconds=1))
    assert store.is_late(tenant, "m1") is _read_late(store, tenant, "m1") is False
    claimed = store.claim_due_timers(now, timedelta(seconds=60))
    assert [t.timer for t in claimed] == ["marker_timeout", "receipt_timeout"]
    store.mark_timer_fired(claimed[0].timer_id, now)
    assert store.is_late(tenant, "m1") is _read_late(store, tenant, "m1") is False, "a marker is not late"
    store.mark_timer_fired(claimed[1].timer_id, now)
    assert store.is_late(tenant, "m1") is _read_late(store, tenant, "m1") is True


def test_a_lateness_timer_another_replica_fires_is_seen(store_factory, tenant):
    """On PostgreSQL another replica may claim and fire the timer of a message created here: lateness is
    always read there (SQLite has one service, which fires every timer itself)."""
    here = store_factory.open()
    if here.fired_only_here:
        return
    other = store_factory.open()
    now = datetime.now(UTC)
    here.timers_start_here(tenant, "m1")
    here.schedule_timer(tenant, "m1", "expiry", now - timedelta(seconds=1))
    [timer] = other.claim_due_timers(now, timedelta(seconds=60))
    other.mark_timer_fired(timer.timer_id, now)
    assert here.is_late(tenant, "m1") is True
