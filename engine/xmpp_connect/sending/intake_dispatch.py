"""The core's side of the intake: carry out the requests the API workers accepted, in acceptance order.

Each request goes through ``Actions.perform`` like a request the core received itself (same records, same
evidence, same idempotency), with the time the worker accepted it. The position reached is kept in the
evidence store, so a restart resumes after the last request carried out; one carried out again after a crash
is an idempotent replay (no second stanza).

While the intake stays empty the core does not read it every few milliseconds: it waits on the intake's wake
socket, where a worker says it queued something (``Intake.notify``), reading the queue again at least every
``wake_poll`` seconds all the same. Where that socket cannot be had, it reads every ``idle_poll``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from xmpp_connect.sending.intake import Intake, IntakeItem

log = logging.getLogger(__name__)

Perform = Callable[[IntakeItem], Awaitable[Any]]


class ProgressStore(Protocol):
    def intake_position(self, instance_id: str) -> int: ...
    def advance_intake_position(self, instance_id: str, seq: int) -> None: ...
    async def durable(self) -> None: ...


class Wakes:
    """The core's end of the intake's wake socket: the datagrams workers send after queuing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def listen(cls, address: str) -> Wakes | None:
        """Bound to ``address``; None where it cannot be (no abstract sockets, or another core has it)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(address)
        except (OSError, ValueError):  # ValueError: a system without abstract sockets (a name with a NUL)
            sock.close()
            return None
        return cls(sock)

    def pending(self) -> bool:
        """Whether a worker said it queued something since the last look (those wakes are taken)."""
        woken = False
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(512)
                woken = True
        return woken

    def close(self) -> None:
        self.sock.close()


class IntakeDispatcher:
    """Reads the intake and carries out up to ``batch`` requests at a time; their store writes share group
    commits. Once a read finds it empty it reads again after ``idle_poll`` seconds, and if no worker queued
    anything meanwhile, waits for one to (see the module's docstring)."""

    def __init__(
        self,
        intake: Intake,
        store: ProgressStore,
        perform: Perform,
        *,
        batch: int = 256,
        idle_poll: float = 0.005,
        retry_after: float = 1.0,
        wake_poll: float = 1.0,
    ) -> None:
        self.intake = intake
        self.store = store
        self.perform = perform
        self.batch = batch
        self.idle_poll = idle_poll
        self.retry_after = retry_after
        self.wake_poll = wake_poll
        self.position = store.intake_position(intake.instance_id)
        self._stopping = False
        self._waiter: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Carry out accepted requests until ``stop()``."""
        wakes = Wakes.listen(self.intake.wake_address)
        try:
            while not self._stopping:
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
                    if wakes is not None and not wakes.pending():
                        await self._pause(self.wake_poll, wakes)
        finally:
            if wakes is not None:
                wakes.close()

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
        self._stopping = True
        if self._waiter is not None:
            _resolve(self._waiter)

    async def _pause(self, seconds: float, wakes: Wakes | None = None) -> None:
        """``seconds``, or until ``stop()``; with ``wakes``, or until a worker's wake arrives (the socket is
        watched only meanwhile: a busy core is not woken by every queued request). A future and a timer
        rather than ``asyncio.wait_for``, whose task costs an extra loop turn per pause (~40 µs)."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        if wakes is not None:
            loop.add_reader(wakes.sock.fileno(), _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if wakes is not None:
                loop.remove_reader(wakes.sock.fileno())
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
