"""Ownership of accounts between replicas sharing one store (sending/ownership.py, spec/replicas.md): the
accounts spread per the placement, a replica stopping hands its accounts over at once, and a replica that
can no longer renew stops sending as owner before its lease can be taken over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from xmpp_connect.model.placement import placement
from xmpp_connect.sending.ownership import LeaseTiming, Ownership
from xmpp_connect.store.errors import LeaseLost
from xmpp_connect.store.sql import SqlStore

ACCOUNTS = [f"acct-{n}" for n in range(8)]
WAIT = 30.0


class Replica:
    """An Ownership whose sessions are a log of (monotonic time, event, account)."""

    def __init__(self, store: SqlStore, replica_id: str, ttl: float, log: list[tuple[float, str, str]],
                 keys: list[str] = ACCOUNTS) -> None:
        self.log = log
        self.ownership = Ownership(store, replica_id, 1.0, lambda: list(keys), self._gained, self._losing,
                                   LeaseTiming(ttl_s=ttl), retired=lambda key: key.startswith("webhook:"))

    async def _gained(self, account: str) -> None:
        self.log.append((time.monotonic(), f"{self.ownership.replica_id} gained", account))

    async def _losing(self, account: str) -> None:
        self.log.append((time.monotonic(), f"{self.ownership.replica_id} stopped", account))


async def until(condition: Callable[[], bool], tick: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await tick()  # type: ignore[misc]
        await asyncio.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
async def test_accounts_spread_and_move_at_once_when_a_replica_stops(store_factory):
    log: list[tuple[float, str, str]] = []
    a, b = (Replica(store_factory.open(), name, 60.0, log) for name in ("a", "b"))
    both = placement(ACCOUNTS, {"a": 1.0, "b": 1.0})

    async def rounds() -> None:
        await a.ownership.tick()
        await b.ownership.tick()

    mine = {name: sorted(k for k, v in both.items() if v == name) for name in ("a", "b")}
    assert mine["a"] and mine["b"], "both replicas get accounts"
    await until(lambda: a.ownership.owned() == mine["a"] and b.ownership.owned() == mine["b"], rounds)
    leases = store_factory.opened[0].leases()
    assert {k: lease.owner for k, lease in leases.items()} == both

    await b.ownership.stop()
    stopped = {account for _, event, account in log if event == "b stopped"}
    assert stopped == {k for k, v in both.items() if v == "b"}
    await until(lambda: a.ownership.owned() == ACCOUNTS, a.ownership.tick)
    tokens = {k: lease.token for k, lease in store_factory.opened[0].leases().items()}
    assert all(tokens[k] > leases[k].token for k in stopped), "taken over with a larger token"
    await a.ownership.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
async def test_a_replica_that_cannot_renew_stops_before_its_lease_can_be_taken(store_factory):
    """b holds everything, then stops renewing (as if cut off from the database): its send window ends at 60%
    of the TTL, so it has stopped every session before a's acquisitions can succeed (at 100%)."""
    log: list[tuple[float, str, str]] = []
    ttl = 2.0
    b = Replica(store_factory.open(), "b", ttl, log)
    await b.ownership.tick()
    assert b.ownership.owned() == ACCOUNTS
    assert all(b.ownership.may_send(account) for account in ACCOUNTS)
    a = Replica(store_factory.open(), "a", ttl, log)
    a.ownership.weight = 1000.0  # a should own everything once it can

    await until(lambda: a.ownership.owned() == ACCOUNTS, a.ownership.tick)
    assert not any(b.ownership.may_send(account) for account in ACCOUNTS)
    last_stop = max(at for at, event, _ in log if event == "b stopped")
    first_gain = min(at for at, event, _ in log if event == "a gained")
    assert {account for _, event, account in log if event == "b stopped"} == set(ACCOUNTS)
    assert last_stop < first_gain, log
    with pytest.raises(LeaseLost):
        b.ownership.check(ACCOUNTS[0])
    await a.ownership.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
async def test_the_keys_are_read_every_round_and_a_vanished_key_is_given_up(store_factory):
    """Webhook subscriptions come and go while running: a new key is acquired on the next round, a key no
    longer listed is stopped and its lease given up: released for an account (its config may list it again),
    deleted for a retired key (a deleted subscription never comes back)."""
    log: list[tuple[float, str, str]] = []
    keys = ["acct-0", "acct-1"]
    a = Replica(store_factory.open(), "a", 60.0, log, keys)
    await a.ownership.tick()
    assert a.ownership.owned() == ["acct-0", "acct-1"]
    keys.append("webhook:t/new")
    await a.ownership.tick()
    assert a.ownership.owned() == ["acct-0", "acct-1", "webhook:t/new"]
    keys.remove("webhook:t/new")
    keys.remove("acct-1")
    await a.ownership.tick()
    assert a.ownership.owned() == ["acct-0"]
    assert {(event, key) for _at, event, key in log[-2:]} == {("a stopped", "webhook:t/new"),
                                                              ("a stopped", "acct-1")}
    leases = store_factory.opened[0].leases()
    assert leases["acct-1"].owner is None, "released for whoever lists it next"
    assert "webhook:t/new" not in leases, "a retired key leaves no row behind"
    await a.ownership.stop()
