"""The timer loop is woken for a timer only when it is due before the loop would look anyway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from xmpp_connect.sending.timers import TimerFact, TimerService
from xmpp_connect.store.sqlite import SqliteStore

WAIT = 30.0


async def test_a_timer_due_after_the_loops_next_look_does_not_wake_it_and_one_due_before_does(
    tmp_path: Path,
) -> None:
    """The loop sleeps an hour (nothing pending, ``max_sleep``): a receipt timeout five minutes out is not
    worth waking it for (it looks again before then); an expiry due now wakes it, and fires."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    fired: list[TimerFact] = []

    async def record(fact: TimerFact) -> None:
        fired.append(fact)

    service = TimerService(store, record, default_receipt_timeout=timedelta(minutes=5), max_sleep=3600.0)
    wakes: list[None] = []
    wake = service.wake

    def counted() -> None:
        wakes.append(None)
        wake()

    service.wake = counted  # type: ignore[method-assign]
    service.schedule_receipt_timeout("t", "m0", datetime.now(UTC))
    assert wakes == [None], "before the loop runs: it looks at every timer when it starts"
    runner = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(WAIT):
            while service._looks_at is None:
                await asyncio.sleep(0.01)
            service.schedule_receipt_timeout("t", "m1", datetime.now(UTC))
            assert len(wakes) == 1, "due in five minutes, the loop looks within the hour: not woken"
            assert [t.timer for t in store.timers_for_message("t", "m1")] == ["receipt_timeout"]
            service.schedule_expiry("t", "m2", datetime.now(UTC))
            assert len(wakes) == 2, "due now: woken"
            while not fired:
                await asyncio.sleep(0.01)
    finally:
        service.stop()
        await asyncio.wait_for(runner, WAIT)
    assert [(f.message_id, f.timer) for f in fired] == [("m2", "expiry")]
    store.close()
