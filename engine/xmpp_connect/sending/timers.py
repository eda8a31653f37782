"""Persisted due timers (receipt/marker timeouts, expiry), fired by an asyncio loop.

Due times live in the store, so a timer scheduled before a restart fires after it. Firing hands a timer
fact (``{"kind": "timer", "timer": "receipt_timeout"}``) to a callback, which classifies and records it;
the timer is marked fired only after the callback returned, so a crash fires it again (evidence dedupe
keeps the log clean).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from xmpp_connect.store.base import EvidenceStore
from xmpp_connect.store.records import Timer
from xmpp_connect.store.timestamps import utc_now

log = logging.getLogger("xmpp_connect.sending.timers")


class SendTimers(Protocol):
    """Persisted due times for a sent message (TimerService below provides them; the actions and the
    outbox depend on this protocol only)."""

    def schedule_receipt_timeout(
        self,
        tenant_id: str,
        message_id: str,
        sent_at: datetime,
        timeout: timedelta | None = None,
        attempt_id: str | None = None,
    ) -> object: ...
    def schedule_marker_timeout(
        self,
        tenant_id: str,
        message_id: str,
        sent_at: datetime,
        timeout: timedelta | None = None,
        attempt_id: str | None = None,
    ) -> object: ...
    def schedule_expiry(self, tenant_id: str, message_id: str, expires_at: datetime) -> object: ...


@dataclass(frozen=True)
class TimerFact:
    """A fired timer, with the ids the callback records its evidence under."""

    tenant_id: str
    message_id: str
    attempt_id: str | None
    timer: str
    timer_id: str
    due_at: datetime
    fired_at: datetime

    def fact(self) -> dict[str, Any]:
        """The fact for the policy (spec/facts.schema.json)."""
        return {"kind": "timer", "timer": self.timer}


TimerCallback = Callable[[TimerFact], Awaitable[None]]


class TimerService:
    """Schedules timers in the store and fires due ones. One service per process; several replicas may
    run one each against a shared PostgreSQL store (claims are leased, so a timer fires once)."""

    def __init__(
        self,
        store: EvidenceStore,
        callback: TimerCallback,
        *,
        default_receipt_timeout: timedelta,
        default_marker_timeout: timedelta | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_sleep: float = 1.0,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 100,
    ) -> None:
        self._store = store
        self._callback = callback
        self.default_receipt_timeout = default_receipt_timeout
        self.default_marker_timeout = default_marker_timeout
        self._clock = clock
        self._max_sleep = max_sleep
        self._lease = lease
        self._batch = batch
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._looks_at: datetime | None = None
        """When the running loop looks at the due times next (it sleeps until then): a timer due no earlier
        needs no wake."""

    def schedule_receipt_timeout(
        self,
        tenant_id: str,
        message_id: str,
        sent_at: datetime,
        timeout: timedelta | None = None,
        attempt_id: str | None = None,
    ) -> Timer:
        """Receipt timeout for a message: ``timeout`` per request, else the configured default."""
        due = sent_at + (timeout if timeout is not None else self.default_receipt_timeout)
        return self._schedule(tenant_id, message_id, "receipt_timeout", due, attempt_id)

    def schedule_marker_timeout(
        self,
        tenant_id: str,
        message_id: str,
        sent_at: datetime,
        timeout: timedelta | None = None,
        attempt_id: str | None = None,
    ) -> Timer:
        chosen = timeout if timeout is not None else self.default_marker_timeout
        if chosen is None:
            raise ValueError("no marker timeout given and no default configured")
        return self._schedule(tenant_id, message_id, "marker_timeout", sent_at + chosen, attempt_id)

    def schedule_expiry(self, tenant_id: str, message_id: str, expires_at: datetime) -> Timer:
        return self._schedule(tenant_id, message_id, "expiry", expires_at, None)

    def _schedule(
        self, tenant_id: str, message_id: str, kind: str, due: datetime, attempt_id: str | None
    ) -> Timer:
        timer = self._store.schedule_timer(tenant_id, message_id, kind, due, attempt_id)
        if self._looks_at is None or due < self._looks_at:
            self.wake()
        return timer

    def wake(self) -> None:
        """Look at the due times again now: a timer was scheduled in the store (by this service or beside
        it, e.g. a held request's ``scheduled_send``) that may be due before the loop would wake."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def fire_due(self) -> int:
        """Fire every timer due now; returns how many fired."""
        fired = 0
        while True:
            now = self._clock()
            claimed = self._store.claim_due_timers(now, self._lease, self._batch)
            for timer in claimed:
                fact = TimerFact(
                    timer.tenant_id,
                    timer.message_id,
                    timer.attempt_id,
                    timer.timer,
                    timer.timer_id,
                    timer.due_at,
                    now,
                )
                try:
                    await self._callback(fact)
                except Exception:
                    log.exception("timer callback failed timer=%s timer_id=%s", timer.timer, timer.timer_id)
                    continue
                self._store.mark_timer_fired(timer.timer_id, now)
                log.info("timer fired timer=%s message_id=%s", timer.timer, timer.message_id)
                fired += 1
            if len(claimed) < self._batch:
                return fired

    async def run(self) -> None:
        """Fire due timers until ``stop()``; sleeps until the next due time (at most ``max_sleep``)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self._stopping:
            await self.fire_due()
            self._wake.clear()
            sleep = self._sleep_seconds()
            self._looks_at = self._clock() + timedelta(seconds=sleep)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep)
        self._loop = None
        self._looks_at = None
        # Reset here, not on entry: a stop() that came before the first step must not be lost.
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _sleep_seconds(self) -> float:
        due = self._store.next_due_at()
        if due is None:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (due - self._clock()).total_seconds()))
