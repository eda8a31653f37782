"""This process as one replica on PostgreSQL (spec/replicas.md): owned accounts get a session, the outbox
writes only for them, owner-only writes are fenced, and NOTIFY wakes the owner for sends other replicas
accepted (a slow sweep is only the safety net). Webhook subscriptions are leased the same way: each is
delivered by its owner only."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, MutableMapping, Sequence

from xmpp_connect.providers.base import XmppProvider
from xmpp_connect.sending.outbox import Outbox
from xmpp_connect.sending.ownership import LeaseTiming, Ownership
from xmpp_connect.sending.webhooks.subscriptions import Webhooks, subscription_of
from xmpp_connect.store.errors import LeaseLost
from xmpp_connect.store.notify_listener import NotifyListener
from xmpp_connect.store.postgres import PostgresStore

log = logging.getLogger(__name__)
CONNECTED = "connected"


class Replication:
    """Starts and stops account sessions and webhook deliveries as leases come and go; ``providers`` is the
    service's own map (a fresh provider per gained lease, made by ``new_provider``)."""

    def __init__(
        self,
        store: PostgresStore,
        replica_id: str,
        weight: float,
        lease_ttl_s: float,
        accounts: Sequence[str],
        providers: MutableMapping[str, XmppProvider],
        new_provider: Callable[[str], XmppProvider],
        outbox: Outbox,
        webhooks: Webhooks,
    ) -> None:
        self.store = store
        self.providers = providers
        self.new_provider = new_provider
        self.outbox = outbox
        self.webhooks = webhooks
        self.timing = LeaseTiming(lease_ttl_s)
        fixed = tuple(accounts)
        self.ownership = Ownership(store, replica_id, weight, lambda: [*fixed, *webhooks.lease_keys()],
                                   self._gained, self._losing, self.timing,
                                   retired=lambda key: subscription_of(key) is not None)
        outbox.may_send = self.ownership.may_send
        webhooks.fence = self.ownership.check
        self._sessions: dict[str, asyncio.Task[bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: NotifyListener | None = None

    def owns(self, account: str) -> bool:
        """Whether this replica writes the account's stanzas now."""
        return self.ownership.may_send(account)

    def fence(self, account: str) -> None:
        """Inside an owner-only write's transaction: LeaseLost unless this replica still owns the account."""
        self.ownership.check(account)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._listener = NotifyListener(
            self.store.connect_listener,
            self.store.outbox_channel,
            lambda payload: loop.call_soon_threadsafe(self.woken, payload),
            lambda: loop.call_soon_threadsafe(self.sweep),
        )
        self._listener.start()
        self._tasks = [
            asyncio.create_task(self.ownership.run(), name="xmpp-connect leases"),
            asyncio.create_task(self._sweep_periodically(), name="xmpp-connect outbox sweep"),
        ]

    async def stop(self) -> None:
        """Give every account up (sessions closed, leases released) so the others take over at once."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ownership.stop()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)

    def woken(self, payload: str) -> None:
        """A send was accepted (by any replica): write it if this replica owns its account and the stream is
        up (else the session's start writes it)."""
        try:
            account, tenant_id, stanza_id = json.loads(payload)
        except (ValueError, TypeError):
            log.warning("outbox notification with an unreadable payload dropped")
            return
        if self.outbox.in_flight(stanza_id):
            return  # this replica accepted it and is writing it: the usual case for an owned account
        self._as_owner(account, lambda: self.outbox.wake(tenant_id, stanza_id))

    def sweep(self) -> None:
        """Look at every owned account's outbox (after a lost listener connection, and now and then)."""
        for account in self.ownership.owned():
            self._as_owner(account, functools.partial(self.outbox.sweep, account))

    def _as_owner(self, account: str, write: Callable[[], None]) -> None:
        provider = self.providers.get(account)
        if not self.owns(account) or provider is None or provider.health().stream_status != CONNECTED:
            return
        try:
            with self.store.transaction():
                self.fence(account)
                write()
        except LeaseLost:
            log.warning("an account no longer owned here account=%s", account)

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.timing.ttl_s * 2)
            try:
                self.sweep()
            except Exception as exc:
                log.warning("outbox sweep failed (%s)", type(exc).__name__)

    async def _gained(self, account: str) -> None:
        """A fresh session for the account (its stream_connected event drains the outbox, spec/outbox.md), or
        a subscription's delivery."""
        if subscription_of(account) is not None:
            await self.webhooks.gained(account)
            return
        provider = self.providers[account] = self.new_provider(account)
        self._sessions[account] = asyncio.create_task(provider.start(), name=f"xmpp-connect login {account}")

    async def _losing(self, account: str) -> None:
        """End the account's session (what it had in flight is the next owner's to recover), or a
        subscription's delivery."""
        if subscription_of(account) is not None:
            await self.webhooks.losing(account)
            return
        login = self._sessions.pop(account, None)
        if login is not None:
            login.cancel()
            await asyncio.gather(login, return_exceptions=True)
        provider = self.providers.get(account)
        if provider is not None:
            with contextlib.suppress(Exception):
                await provider.stop()
        self.outbox.forget(account)
