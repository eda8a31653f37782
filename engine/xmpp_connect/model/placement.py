"""Which replica should own an account: weighted rendezvous hashing (spec/replicas.md).

Every replica computes the same answer from the same list of live replicas and their weights, with no
coordination; a replica's share of the accounts follows its weight, and when a replica joins or leaves only
the accounts it gains or loses move.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

_SCALE = float(2**64)


def score(account_ref: str, replica_id: str, weight: float) -> float:
    """The replica's bid for the account: ``-weight / ln(u)`` with ``u`` a uniform hash in (0, 1)."""
    digest = hashlib.blake2b(f"{account_ref}\0{replica_id}".encode(), digest_size=8).digest()
    uniform = (int.from_bytes(digest, "big") + 0.5) / _SCALE
    return -weight / math.log(uniform)


def owner_of(account_ref: str, replicas: Mapping[str, float]) -> str | None:
    """The live replica with the highest bid (ties by id); None when no replica is alive."""
    if not replicas:
        return None
    return max(replicas, key=lambda replica: (score(account_ref, replica, replicas[replica]), replica))


def placement(accounts: Iterable[str], replicas: Mapping[str, float]) -> dict[str, str | None]:
    """Each account's desired owner."""
    return {account: owner_of(account, replicas) for account in accounts}
