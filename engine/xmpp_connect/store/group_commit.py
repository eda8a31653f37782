"""Group commit on an event loop's thread: the writes of one loop iteration share one transaction."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("xmpp_connect.store")


class CommitBatch:
    """The open batch transaction of one event loop thread, committed by a ``call_soon`` callback.

    ``join()`` opens the batch (``begin``) at the first write of an iteration and schedules its commit;
    every write of the iteration lands in it (each store call a part undone alone when it fails).
    ``durable()`` resolves once everything written so far is committed, or raises the commit's error (the
    batch is then rolled back)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        begin: Callable[[], object],
        commit: Callable[[], object],
        rollback: Callable[[], object],
    ) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._begin = begin
        self._commit = commit
        self._rollback = rollback
        self._open = False
        self._waiters: list[asyncio.Future[None]] = []

    def applies_here(self) -> bool:
        """Batching is for the loop's own thread; other threads keep one transaction per store call."""
        return threading.get_ident() == self._thread

    @property
    def is_open(self) -> bool:
        return self._open

    def join(self) -> None:
        """Make sure a batch is open; its commit runs after the callbacks already queued on the loop."""
        if not self._open:
            self._begin()
            self._open = True
            self._loop.call_soon(self.commit)

    def commit(self) -> None:
        """Commit the open batch now and wake whoever awaits ``durable()``."""
        if not self._open:
            return
        self._open = False
        waiters, self._waiters = self._waiters, []
        try:
            self._commit()
        except Exception as exc:
            log.error("group commit failed, batch rolled back (%s)", type(exc).__name__)
            self._rollback()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def durable(self) -> None:
        """Return once everything written so far on this thread is committed."""
        if not self._open:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
