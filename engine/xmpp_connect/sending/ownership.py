"""This replica's share of the XMPP accounts and webhook subscriptions (spec/replicas.md): heartbeat, leases,
rebalance, fencing.

Every ``renew_every_s`` the replica heartbeats, renews the leases it holds, reads the keys to share out (an
account's ref, or a subscription's ``webhook:`` key), computes each key's desired owner from the live replicas
(model/placement.py) and acquires what should be its own or gives up what should not (or is gone).
It sends as an account's owner only while its last successful renewal is younger than ``send_window_s``,
well inside the lease's TTL, so a replica cut off from the database has stopped before its lease can expire
and be taken over; owner-only writes are fenced by the lease's token in the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from xmpp_connect.model.placement import placement
from xmpp_connect.store.errors import LeaseLost
from xmpp_connect.store.leases import LeaseRecords

log = logging.getLogger(__name__)
T = TypeVar("T")
Hook = Callable[[str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class LeaseTiming:
    """The lease's TTL and what follows from it: renew five times per TTL, send for 60% of it."""

    ttl_s: float = 5.0

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 5

    @property
    def send_window_s(self) -> float:
        """How long after a successful renewal began this replica may still send as owner."""
        return self.ttl_s * 0.6


@dataclass
class _Held:
    token: int
    renewed_at: float
    """The loop time at which the last successful renewal (or the acquisition) was sent."""
    watchdog: asyncio.TimerHandle | None = None


class Ownership:
    """The keys (accounts, webhook subscriptions) this replica owns, out of those ``keys`` returns each
    round (called in the lease thread). ``gained`` starts a key's work; ``losing`` ends it (awaited before a
    lease is given up; on a lost lease, right away)."""

    def __init__(
        self,
        store: LeaseRecords,
        replica_id: str,
        weight: float,
        keys: Callable[[], Iterable[str]],
        gained: Hook,
        losing: Hook,
        timing: LeaseTiming | None = None,
        retired: Callable[[str], bool] = lambda _key: False,
    ) -> None:
        self.store = store
        self.replica_id = replica_id
        self.weight = weight
        self.keys = keys
        self.retired = retired
        """Whether a key gone from ``keys`` is gone for good: its lease row is deleted, not released."""
        self.timing = timing or LeaseTiming()
        self._gained = gained
        self._losing = losing
        self._held: dict[str, _Held] = {}
        self._leaving: set[str] = set()
        self._stopping: dict[str, asyncio.Task[None]] = {}
        """Accounts whose session is being ended after a lost lease: not acquired again until it ended."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xmpp-connect leases")
        """Lease calls run in a thread of their own: a database that hangs never stalls the event loop."""

    def owned(self) -> list[str]:
        return sorted(self._held)

    def may_send(self, account: str) -> bool:
        """Whether this replica may write to the account's stream now: it holds the lease, is not giving it
        up, and renewed it within the send window."""
        held = self._held.get(account)
        if held is None or account in self._leaving:
            return False
        return asyncio.get_running_loop().time() < held.renewed_at + self.timing.send_window_s

    def check(self, account: str) -> None:
        """Fence an owner-only write (call it inside the write's transaction): LeaseLost unless this replica
        holds the account's lease with its current token."""
        held = self._held.get(account)
        if held is None:
            raise LeaseLost(account)
        self.store.lease_check(account, self.replica_id, held.token)

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.timing.renew_every_s)

    async def tick(self) -> None:
        """One round: heartbeat, renew, then acquire or give up keys per the desired placement (and give up
        the keys that are gone)."""
        ttl = self.timing.ttl_s
        try:
            await self._call(self.store.replica_heartbeat, self.replica_id, self.weight, ttl)
            await self._renew()
            replicas = await self._call(self.store.replicas_alive)
            keys = await self._call(lambda: sorted(set(self.keys())))
        except Exception as exc:
            log.warning("lease round failed (%s); sending stops when the send window ends",
                        type(exc).__name__)
            return
        replicas[self.replica_id] = self.weight
        desired = placement(keys, replicas)
        for gone in set(self._held) - set(desired) - self._leaving:
            await self.give_up(gone, forget=self.retired(gone))
        for account, owner in desired.items():
            if owner == self.replica_id and account not in self._held and account not in self._stopping:
                await self._acquire(account)
            elif owner != self.replica_id and account in self._held and account not in self._leaving:
                await self.give_up(account)

    async def stop(self) -> None:
        """Give every account up (sessions ended first) and leave, so the others take over at once."""
        for account in list(self._held):
            await self.give_up(account)
        await asyncio.gather(*self._stopping.values(), return_exceptions=True)
        try:
            await self._call(self.store.replica_leave, self.replica_id)
        except Exception as exc:
            log.warning("could not leave the replica table (%s)", type(exc).__name__)
        self._executor.shutdown(wait=False)

    async def give_up(self, account: str, forget: bool = False) -> None:
        """End the account's session, then release its lease for the replica that should own it (``forget``:
        delete it, the key is gone for good)."""
        held = self._held.get(account)
        if held is None:
            return
        self._leaving.add(account)
        try:
            await self._losing(account)
            await self._call(self.store.lease_release, account, self.replica_id, held.token, forget)
            log.info("account given up account=%s token=%d", account, held.token)
        except Exception as exc:
            log.warning("giving up account=%s failed (%s); its lease expires", account, type(exc).__name__)
        finally:
            self._leaving.discard(account)
            self._forget(account)

    async def _acquire(self, account: str) -> None:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        token = await self._call(self.store.lease_acquire, account, self.replica_id, self.timing.ttl_s)
        if token is None:
            return
        self._held[account] = _Held(token, sent_at)
        self._watch(account)
        log.info("account acquired account=%s token=%d", account, token)
        await self._gained(account)

    async def _renew(self) -> None:
        """Renew every held lease in one statement; an account whose lease did not renew is lost here."""
        held = dict(self._held)
        sent_at = asyncio.get_running_loop().time()
        tokens = {account: h.token for account, h in held.items()}
        renewed = await self._call(self.store.lease_renew, self.replica_id, tokens, self.timing.ttl_s)
        for account, h in held.items():
            if self._held.get(account) is not h:
                continue
            if account in renewed:
                h.renewed_at = sent_at
                self._watch(account)
            else:
                self._lost(account, "lease taken over or expired")

    def _watch(self, account: str) -> None:
        """Once the send window after the last renewal ends without another one, the account is lost here."""
        held = self._held[account]
        if held.watchdog is not None:
            held.watchdog.cancel()
        loop = asyncio.get_running_loop()
        deadline = held.renewed_at + self.timing.send_window_s
        held.watchdog = loop.call_at(deadline, self._overdue, account, held)

    def _overdue(self, account: str, held: _Held) -> None:
        if self._held.get(account) is held:
            self._lost(account, "no renewal within the send window")

    def _lost(self, account: str, reason: str) -> None:
        """Stop sending as the account's owner now: its session ends in the background."""
        log.warning("account lost account=%s (%s)", account, reason)
        self._forget(account)
        task = asyncio.get_running_loop().create_task(self._losing(account), name=f"lose {account}")
        self._stopping[account] = task
        task.add_done_callback(lambda _: self._stopping.pop(account, None))

    def _forget(self, account: str) -> None:
        held = self._held.pop(account, None)
        if held is not None and held.watchdog is not None:
            held.watchdog.cancel()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
