"""Weighted rendezvous hashing (model/placement.py): every replica computes the same owner, shares follow
the weights, and a replica joining or leaving moves only the accounts it gains or loses."""

from __future__ import annotations

from collections import Counter

from xmpp_connect.model.placement import owner_of, placement

ACCOUNTS = [f"account-{n}" for n in range(3000)]


def test_the_same_inputs_give_the_same_owner_whatever_the_order():
    forward = {"a": 1.0, "b": 1.0, "c": 2.0}
    backward = dict(reversed(forward.items()))
    assert placement(ACCOUNTS, forward) == placement(ACCOUNTS, backward)
    assert owner_of("x", {}) is None


def test_shares_follow_the_weights():
    shares = Counter(placement(ACCOUNTS, {"a": 1.0, "b": 1.0, "c": 2.0}).values())
    assert abs(shares["c"] / len(ACCOUNTS) - 0.5) < 0.05
    assert abs(shares["a"] / len(ACCOUNTS) - 0.25) < 0.05
    assert abs(shares["b"] / len(ACCOUNTS) - 0.25) < 0.05


def test_a_replica_leaving_moves_only_its_own_accounts():
    before = placement(ACCOUNTS, {"a": 1.0, "b": 1.0, "c": 1.0})
    after = placement(ACCOUNTS, {"a": 1.0, "b": 1.0})
    moved = {account for account in ACCOUNTS if before[account] != after[account]}
    assert moved == {account for account in ACCOUNTS if before[account] == "c"}


def test_a_replica_joining_takes_accounts_only_for_itself():
    before = placement(ACCOUNTS, {"a": 1.0, "b": 1.0})
    after = placement(ACCOUNTS, {"a": 1.0, "b": 1.0, "d": 1.0})
    assert all(after[account] in (before[account], "d") for account in ACCOUNTS)
    assert abs(Counter(after.values())["d"] / len(ACCOUNTS) - 1 / 3) < 0.05
