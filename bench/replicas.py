"""Benchmark: one replica against three replicas on one PostgreSQL schema, on the same machine, one run.

A throwaway Prosody (tests/integration/prosody.py), ``--accounts`` sender accounts, one slixmpp recipient,
`xmpp-connect serve` processes on loopback (tests/api/replicas_harness.py). A: one replica owns every
account and takes every send; B: three replicas of equal weight, the accounts spread over them, each send
posted to the replicas in turn (so most go to a replica that does not own the account and is carried out by
its owner, woken by NOTIFY). Each run posts ``--sends`` sends, ``--concurrency`` at a time, and waits until
the recipient got them all. Printed per run: seconds, sends/s to the recipient, and each process's CPU time
(user + system, from /proc) in µs per send of the whole run, plus their sum.

    .venv/bin/python bench/replicas.py [--sends 600] [--accounts 6] [--concurrency 16] [--only-one]

``--only-one`` runs A alone (to profile one replica, or to compare two versions of the code in pairs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "api"))

from prosody import ProsodyServer  # noqa: E402
from recipients import Recipient  # noqa: E402
from replicas_harness import Account, ReplicaProcess, live_owners  # noqa: E402
from test_served_process import send  # noqa: E402

PG_DSN = os.environ.get("XMPP_CONNECT_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
WAIT = 180.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def run(server: ProsodyServer, base: Path, names: list[str], sends: int, accounts_n: int,
              concurrency: int) -> str:
    schema = "xc_bench_rep_" + secrets.token_hex(4)
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    accounts = [Account(f"acct{n}", server.fresh_user("svc")) for n in range(accounts_n)]
    replicas = [ReplicaProcess(base / schema, name, server, accounts, schema, PG_DSN) for name in names]
    recipient = await Recipient(server, server.fresh_user("rcpt"), "phone").online()
    try:
        await asyncio.gather(*(r.start() for r in replicas))
        deadline = time.monotonic() + WAIT
        while not await _all_connected(replicas, schema, accounts):
            assert time.monotonic() < deadline, "replicas did not settle"
            await asyncio.sleep(0.2)
        pids = {r.replica_id: r.process.pid for r in replicas if r.process is not None}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        limit = asyncio.Semaphore(concurrency)
        clients = [r.client() for r in replicas]

        async def one(n: int) -> None:
            request = {**send(uuid.uuid4().hex[:12], recipient.user.jid, f"bench {n}"),
                       "account": accounts[n % accounts_n].ref}
            async with limit:
                response = await clients[n % len(clients)].post("/adapter/actions", json=request)
            if response.status_code != 202 or response.json()["accepted"] is not True:
                logs = "\n".join(r.log_text()[-4000:] for r in replicas)
                raise AssertionError(f"{response.text}\n{logs}")

        await asyncio.gather(*(one(n) for n in range(sends)))
        got: set[str] = set()
        while len(got) < sends:
            got.add((await recipient.next_message(WAIT))["id"])
        seconds = time.monotonic() - started
        used = {name: (cpu_seconds(pid) - before[name]) * 1e6 / sends for name, pid in pids.items()}
        for client in clients:
            await client.aclose()
    finally:
        await recipient.offline()
        for replica in replicas:
            replica.stop()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    per_process = " ".join(f"{name}={us:,.0f}" for name, us in used.items())
    return (f"{len(names)} replica(s): {sends} sends in {seconds:.1f}s = {sends / seconds:.0f}/s;"
            f" CPU µs per send: {per_process}; sum={sum(used.values()):,.0f}")


async def _all_connected(replicas: list[ReplicaProcess], schema: str, accounts: list[Account]) -> bool:
    leases = live_owners(PG_DSN, schema)
    if set(leases) != {a.ref for a in accounts}:
        return False
    connected: set[str] = set()
    for replica in replicas:
        connected |= await replica.connected()
    return connected == set(leases)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=600)
    parser.add_argument("--accounts", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only-one", action="store_true", help="run A (one replica) only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xc-bench-replicas-") as directory:
        base = Path(directory)
        server = ProsodyServer(base / "prosody")
        server.prepare()
        server.start()
        try:
            for names in (["solo"],) if args.only_one else (["solo"], ["r1", "r2", "r3"]):
                print(await run(server, base, names, args.sends, args.accounts, args.concurrency), flush=True)
        finally:
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
