"""The core's side of the intake: carry out the requests the API workers accepted, in acceptance order.

Each request goes through ``Actions.perform`` like a request the core received itself (same records, same
evidence, same idempotency), with the time the worker accepted it. The position reached is kept in the
evidence store, so a restart resumes after the last request carried out; one carried out again after a crash
is an idempotent replay (no second stanza)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from xmpp_connect.sending.intake import Intake, IntakeItem

log = logging.getLogger(__name__)

Perform = Callable[[IntakeItem], Awaitable[Any]]


class ProgressStore(Protocol):
    def intake_position(self, instance_id: str) -> int: ...
    def advance_intake_position(self, instance_id: str, seq: int) -> None: ...
    async def durable(self) -> None: ...


class IntakeDispatcher:
    """Polls the intake (every ``idle_poll`` seconds while it is empty) and carries out up to ``batch``
    requests at a time; their store writes share group commits."""

    def __init__(
        self,
        intake: Intake,
        store: ProgressStore,
        perform: Perform,
        *,
        batch: int = 256,
        idle_poll: float = 0.005,
        retry_after: float = 1.0,
    ) -> None:
        self.intake = intake
        self.store = store
        self.perform = perform
        self.batch = batch
        self.idle_poll = idle_poll
        self.retry_after = retry_after
        self.position = store.intake_position(intake.instance_id)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Carry out accepted requests until ``stop()``."""
        while not self._stopping.is_set():
            items: list[IntakeItem] = []
            try:
                items = self.intake.items_after(self.position, self.batch)
                done = await self.carry_out(items) if items else True
            except Exception as exc:  # the store or the intake failed: nothing was skipped, try again
                log.error("intake not read or position not stored, will retry (%s)", type(exc).__name__)
                done = False
            if not done:
                await self._pause(self.retry_after)
            elif not items:
                await self._pause(self.idle_poll)

    async def carry_out(self, items: list[IntakeItem]) -> bool:
        """Perform ``items`` concurrently; advance the position over the leading run that succeeded. False
        when one failed (it and those after it are tried again later: nothing is skipped)."""
        outcomes = await asyncio.gather(*(self.perform(item) for item in items), return_exceptions=True)
        done = 0
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.error(
                    "intake request not carried out yet, will retry operation_id=%s (%s)",
                    item.operation_id,
                    type(outcome).__name__,
                )
                break
            done += 1
        if done:
            self.position = items[done - 1].seq
            self.store.advance_intake_position(self.intake.instance_id, self.position)
            await self.store.durable()
        return done == len(items)

    def waiting(self, tenant_id: str, operation_id: str) -> IntakeItem | None:
        """The operation's accepted request if it has not been carried out yet."""
        return self.intake.pending(tenant_id, operation_id, self.position)

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
