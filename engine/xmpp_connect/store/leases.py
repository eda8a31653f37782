"""Account leases and replica heartbeats (spec/replicas.md): who owns each XMPP account, with a fencing token.

Expiry is judged by the database's clock (``db_now``), never a replica's, so replicas on machines with
skewed clocks agree. Acquiring bumps the token; renewing keeps it; an owner-only write runs ``lease_check``
in its own transaction, which fails once another replica took the account over (and, on PostgreSQL, locks the
lease row FOR SHARE so a takeover waits until that write committed or rolled back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xmpp_connect.store.connection import SqlBase
from xmpp_connect.store.errors import LeaseLost


@dataclass(frozen=True)
class Lease:
    """One account's lease as stored; ``owner`` is None once released."""

    account_ref: str
    owner: str | None
    token: int
    expires_at: float
    acquired_at: float


class LeaseRecords(SqlBase):
    """The ``account_leases`` and ``replicas`` tables."""

    db_now = "((julianday('now') - 2440587.5) * 86400.0)"
    """The database's clock in seconds since the epoch, as SQL (the backend overrides it)."""
    share_lock = ""
    """What makes a SELECT lock the rows it read until commit (SQLite's write lock already covers it)."""

    def lease_acquire(self, account_ref: str, owner: str, ttl_s: float) -> int | None:
        """Take the lease when it is free, expired or already ``owner``'s: a new, larger token. None while
        another replica holds it."""
        now = self.db_now
        with self._write() as conn:
            row = self._exec(
                conn,
                "INSERT INTO account_leases (account_ref, owner, token, expires_at, acquired_at)"
                f" VALUES (?, ?, 1, {now} + ?, {now})"
                " ON CONFLICT (account_ref) DO UPDATE SET owner = excluded.owner,"
                " token = account_leases.token + 1, expires_at = excluded.expires_at,"
                " acquired_at = excluded.acquired_at"
                " WHERE account_leases.owner IS NULL OR account_leases.owner = excluded.owner"
                " OR account_leases.expires_at <= excluded.acquired_at RETURNING token",
                (account_ref, owner, ttl_s),
            ).fetchone()
        return None if row is None else int(row["token"])

    def lease_renew(self, owner: str, tokens: Mapping[str, int], ttl_s: float) -> set[str]:
        """Extend, in one statement, every lease ``owner`` still holds (not expired) with the given token per
        account; returns the accounts renewed (the others are lost)."""
        if not tokens:
            return set()
        now = self.db_now
        held = " OR ".join(["(account_ref = ? AND token = ?)"] * len(tokens))
        params = [value for account, token in tokens.items() for value in (account, token)]
        with self._write() as conn:
            rows = self._exec(
                conn,
                f"UPDATE account_leases SET expires_at = {now} + ?"
                f" WHERE owner = ? AND expires_at > {now} AND ({held}) RETURNING account_ref",
                (ttl_s, owner, *params),
            ).fetchall()
        return {row["account_ref"] for row in rows}

    def lease_release(self, account_ref: str, owner: str, token: int, forget: bool = False) -> bool:
        """Give the lease up at once (the token stays, so the next owner's is larger). ``forget`` deletes the
        row instead, for a key that never comes back (a deleted webhook subscription)."""
        self._local.fenced = set()
        now = self.db_now
        change = "DELETE FROM account_leases" if forget else \
            f"UPDATE account_leases SET owner = NULL, expires_at = {now}"
        with self._write() as conn:
            row = self._exec(
                conn,
                f"{change} WHERE account_ref = ? AND owner = ? AND token = ? RETURNING token",
                (account_ref, owner, token),
            ).fetchone()
        return row is not None

    def lease_check(self, account_ref: str, owner: str, token: int) -> None:
        """Fence an owner-only write: raise LeaseLost unless ``owner`` still holds the unexpired lease with
        ``token``. Call it inside the write's transaction: the row stays locked (shared) until it ends, so
        within that transaction the answer cannot change (SQLite: its write lock covers the row) and a second
        check of the same lease is answered from memory; a rollback, even of a savepoint, forgets it."""
        fenced = (account_ref, owner, token)
        if fenced in getattr(self._local, "fenced", ()) and self._in_transaction():
            return
        now = self.db_now
        with self._write() as conn:
            row = self._exec(
                conn,
                "SELECT token FROM account_leases WHERE account_ref = ? AND owner = ? AND token = ?"
                f" AND expires_at > {now}{self.share_lock}",
                (account_ref, owner, token),
            ).fetchone()
        if row is None:
            raise LeaseLost(account_ref)
        checked: set[tuple[str, str, int]] = getattr(self._local, "fenced", set())
        checked.add(fenced)

    def leases(self) -> dict[str, Lease]:
        """Every account's lease, by account (expired ones too)."""
        rows = self._all("SELECT account_ref, owner, token, expires_at, acquired_at FROM account_leases")
        return {r["account_ref"]: Lease(r["account_ref"], r["owner"], int(r["token"]), float(r["expires_at"]),
                                        float(r["acquired_at"])) for r in rows}

    def replica_heartbeat(self, replica_id: str, weight: float, ttl_s: float) -> None:
        """This replica is alive for ``ttl_s`` more seconds, with this weight."""
        now = self.db_now
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO replicas (replica_id, weight, expires_at, started_at)"
                f" VALUES (?, ?, {now} + ?, {now}) ON CONFLICT (replica_id) DO UPDATE"
                " SET weight = excluded.weight, expires_at = excluded.expires_at",
                (replica_id, weight, ttl_s),
            )

    def replica_leave(self, replica_id: str) -> None:
        """A replica stopping cleanly: the others rebalance without waiting for its heartbeat to expire."""
        with self._write() as conn:
            self._exec(conn, "DELETE FROM replicas WHERE replica_id = ?", (replica_id,))

    def replicas_alive(self) -> dict[str, float]:
        """The live replicas and their weights."""
        rows = self._all(f"SELECT replica_id, weight FROM replicas WHERE expires_at > {self.db_now}")
        return {r["replica_id"]: float(r["weight"]) for r in rows}
