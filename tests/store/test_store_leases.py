"""Account leases and replica heartbeats (spec/replicas.md) on SQLite and PostgreSQL: one owner at a time, a
token that only grows, a stale owner's writes refused in their own transaction, and NOTIFY at commit."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from psycopg import sql

from xmpp_connect.store.errors import LeaseLost
from xmpp_connect.store.outbox import ACCEPTED, OutboxEntry
from xmpp_connect.store.postgres import PostgresStore, outbox_channel

TTL = 60.0
EXPIRED = -1.0
"""A TTL already past: the lease (or heartbeat) is expired the moment it is written."""
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_one_owner_at_a_time_and_the_token_only_grows(store):
    first = store.lease_acquire("notify", "replica-a", TTL)
    assert first == 1
    assert store.lease_acquire("notify", "replica-b", TTL) is None, "held by a"
    assert store.lease_renew("replica-a", {"notify": first}, TTL) == {"notify"}
    assert store.lease_renew("replica-b", {"notify": first}, TTL) == set()
    assert store.lease_release("notify", "replica-a", first) is True
    second = store.lease_acquire("notify", "replica-b", TTL)
    assert second == 2, "a released lease keeps its token: the next owner's is larger"
    assert store.lease_renew("replica-a", {"notify": first}, TTL) == set(), "a's token is superseded"
    assert store.lease_release("notify", "replica-a", first) is False
    leases = store.leases()
    assert leases["notify"].owner == "replica-b" and leases["notify"].token == 2


def test_a_key_gone_for_good_leaves_no_lease_row(store):
    token = store.lease_acquire("webhook:t/sub-1", "replica-a", TTL)
    assert token is not None
    assert store.lease_release("webhook:t/sub-1", "replica-b", token, forget=True) is False, "not b's"
    assert "webhook:t/sub-1" in store.leases()
    assert store.lease_release("webhook:t/sub-1", "replica-a", token, forget=True) is True
    assert "webhook:t/sub-1" not in store.leases()
    with pytest.raises(LeaseLost):
        store.lease_check("webhook:t/sub-1", "replica-a", token)


def test_an_expired_lease_is_taken_over_with_a_larger_token(store):
    token = store.lease_acquire("notify", "replica-a", EXPIRED)
    assert token is not None
    assert store.lease_renew("replica-a", {"notify": token}, TTL) == set(), "expired: acquire again"
    taken = store.lease_acquire("notify", "replica-b", TTL)
    assert taken == token + 1
    with pytest.raises(LeaseLost):
        store.lease_check("notify", "replica-a", token)
    store.lease_check("notify", "replica-b", taken)


def test_a_stale_owners_outbox_advance_is_rolled_back(store, tenant):
    token = store.lease_acquire("notify", "replica-a", TTL)
    assert token is not None
    store.outbox_accept(OutboxEntry(tenant, "stanza-1", "notify", "xmppmsg_1", "xmppatt_1", ACCEPTED,
                                    {"action_type": "notification.send"}, "body", NOW))
    store.lease_release("notify", "replica-a", token)
    assert store.lease_acquire("notify", "replica-b", TTL) == token + 1
    with pytest.raises(LeaseLost), store.transaction():
        store.lease_check("notify", "replica-a", token)
        store.outbox_written(tenant, "stanza-1", NOW)
    entry = store.outbox_entry(tenant, "stanza-1")
    assert entry is not None and entry.state == ACCEPTED and entry.writes == 0


def test_replicas_are_alive_until_their_heartbeat_expires(store):
    store.replica_heartbeat("replica-a", 1.0, TTL)
    store.replica_heartbeat("replica-b", 2.5, TTL)
    store.replica_heartbeat("replica-c", 1.0, EXPIRED)
    assert store.replicas_alive() == {"replica-a": 1.0, "replica-b": 2.5}
    store.replica_leave("replica-a")
    store.replica_heartbeat("replica-b", 3.0, TTL)
    assert store.replicas_alive() == {"replica-b": 3.0}


@pytest.mark.postgres
@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
def test_an_accepted_send_notifies_the_owner_at_commit(store_factory, tenant):
    store = store_factory.open()
    assert isinstance(store, PostgresStore)
    with store.connect_listener() as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(outbox_channel(store.schema))))
        with store.transaction():
            store.outbox_accept(OutboxEntry(tenant, "stanza-9", "notify", "xmppmsg_9", "xmppatt_9", ACCEPTED,
                                            {"action_type": "notification.send"}, "body", NOW))
        payloads = [n.payload for n in listener.notifies(timeout=30, stop_after=1)]
    assert [json.loads(p) for p in payloads] == [["notify", tenant, "stanza-9"]]


@pytest.mark.postgres
@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
def test_a_lease_change_waits_for_the_owners_fenced_write_to_commit(store_factory):
    """The owner's check locks the lease row FOR SHARE: any change of the lease (here: giving it up, which
    lets a takeover follow) waits until the owner's transaction ended, so no owner write commits after it."""
    owner, other = store_factory.open(), store_factory.open()
    token = owner.lease_acquire("notify", "replica-a", TTL)
    assert token is not None
    released: list[bool] = []
    with owner.transaction():
        owner.lease_check("notify", "replica-a", token)
        thread = threading.Thread(target=lambda: released.append(other.lease_release("notify", "replica-a",
                                                                                   token)))
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and released == [], "the change waits for the owner's transaction"
    thread.join(timeout=30)
    assert released == [True]


def test_one_statement_renews_exactly_the_leases_still_held(store):
    tokens = {ref: store.lease_acquire(ref, "replica-a", TTL) for ref in ("one", "two", "three")}
    assert store.lease_acquire("four", "replica-a", EXPIRED) is not None
    store.lease_release("two", "replica-a", tokens["two"])
    store.lease_acquire("two", "replica-b", TTL)
    held = {**tokens, "four": 1, "five": 7}
    assert store.lease_renew("replica-a", held, TTL) == {"one", "three"}
    assert store.lease_renew("replica-a", {}, TTL) == set()


def test_a_check_repeated_in_one_transaction_still_sees_a_lease_given_up_in_it(store):
    token = store.lease_acquire("notify", "replica-a", TTL)
    assert token is not None
    with store.transaction():
        store.lease_check("notify", "replica-a", token)
        store.lease_check("notify", "replica-a", token)
        assert store.lease_release("notify", "replica-a", token) is True
        with pytest.raises(LeaseLost):
            store.lease_check("notify", "replica-a", token)
