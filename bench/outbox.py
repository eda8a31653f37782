"""Benchmark: the outbox's crash-loop figures against a real Prosody, and its cost per send, A/B in one run.

1. Crash loop (tests/api/outbox_harness.py): a throwaway Prosody (tests/integration/prosody.py: loopback,
   STARTTLS, XEP-0198 with hibernation 30 s, MAM in memory), `xmpp-connect serve` in a subprocess on
   SQLite, one slixmpp recipient with automatic receipts. Each round posts ``--sends`` sends at once,
   SIGKILLs the service at a random moment, restarts it on the same data directory and posts every request
   again with its key. Printed: rounds, sends, lost (accepted, never received), duplicates (extra copies
   received, all with the same origin-id), untruthful timelines, sends not ending server_acked, seconds.
2. Cost per send: the service in process on the sandbox provider (``delivered@``: SM ack and receipt),
   SQLite in a temp directory, ``--cost-sends`` sends through ``AdapterService.perform_action`` (32 at a
   time) until every send's server ack is in the store. A: the outbox switched off (the send path as before
   issue 10); B: on. Runs alternate A/B ``--cost-rounds`` times; printed: CPU µs per send (process time) of
   each run and the median difference.

    .venv/bin/python bench/outbox.py [--rounds 10] [--sends 100] [--cost-sends 2000] [--cost-rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "api"))

from api_helpers import default_policy, send_request  # noqa: E402
from outbox_harness import crash_loop  # noqa: E402
from prosody import ProsodyServer  # noqa: E402
from recipients import Recipient  # noqa: E402
from test_served_process import CONFIG, PASSWORD_ENV, TOKEN_ENV, ServedProcess  # noqa: E402

from xmpp_connect.app.service import AdapterService  # noqa: E402
from xmpp_connect.config.loader import config_from_dict  # noqa: E402
from xmpp_connect.config.settings import TenantConfig  # noqa: E402
from xmpp_connect.model.native import NativeEvent  # noqa: E402
from xmpp_connect.store.sqlite import SqliteStore  # noqa: E402

CONCURRENCY = 32
WAIT = 120.0


async def run_crash_loop(rounds: int, sends: int) -> str:
    with tempfile.TemporaryDirectory(prefix="xc-bench-outbox-") as directory:
        base = Path(directory)
        server = ProsodyServer(base / "prosody")
        server.prepare()
        server.start()
        served: ServedProcess | None = None
        recipient: Recipient | None = None
        try:
            user = server.fresh_user("svc")
            config_path = base / "xmpp-connect.yaml"
            config_path.write_text(CONFIG.format(jid=user.jid, password_env=PASSWORD_ENV, port=server.port,
                                                 ca=server.cert_path, token_env=TOKEN_ENV))
            served = ServedProcess(config_path, user, base / "serve.log")
            await served.start()
            recipient = await Recipient(server, server.fresh_user("rcpt"), "phone").online()
            figures = await asyncio.wait_for(crash_loop(served, recipient, rounds, sends, 3.0), rounds * 60)
            return figures.line()
        finally:
            if recipient is not None:
                await recipient.offline()
            if served is not None:
                served.stop()
            server.cleanup()


def _ignore(_tenant_id: str, _event: NativeEvent) -> None:
    return None


async def cost_run(directory: Path, sends: int, outbox: bool) -> float:
    """CPU µs per send (process time) from the first request to the last server ack in the store."""
    config = config_from_dict(
        {
            "storage": {"kind": "sqlite", "path": str(directory / f"{uuid.uuid4().hex}.sqlite3")},
            "policy_dir": str(REPO),
            "accounts": [{"ref": "bench", "provider": "sandbox", "jid": "bench@sandbox.invalid/service"}],
            "tenants": [{"id": "t", "token_env": "XC_BENCH_TOKEN", "accounts": ["bench"]}],
        },
        directory,
        {"XC_BENCH_TOKEN": "bench-token-0123456789"},
    )
    assert config.storage.path is not None
    store = SqliteStore(config.storage.path)
    service = AdapterService(config, store, default_policy())
    if not outbox:
        service.actions.outbox = None
        service.outbox.observe = _ignore  # type: ignore[method-assign]
    await service.start()
    tenant = config.tenants[0]
    try:
        started = time.process_time()
        keys = [uuid.uuid4().hex for _ in range(sends)]
        for i in range(0, sends, CONCURRENCY):
            await asyncio.gather(*(_send(service, tenant, key) for key in keys[i:i + CONCURRENCY]))
        deadline = time.monotonic() + WAIT
        while _acked(store) < sends:
            assert time.monotonic() < deadline, "server acks never all recorded"
            await asyncio.sleep(0.05)
        return (time.process_time() - started) / sends * 1e6
    finally:
        await service.stop()
        store.close()


async def _send(service: AdapterService, tenant: TenantConfig, key: str) -> None:
    request: dict[str, Any] = send_request(key, "delivered@sandbox.invalid")
    outcome = await service.perform_action(tenant, request)
    assert outcome.result["accepted"] is True


def _acked(store: SqliteStore) -> int:
    row = store._one("SELECT COUNT(*) AS n FROM evidence_events WHERE scenario = 'server_acknowledged'")
    return int(row["n"]) if row else 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sends", type=int, default=100)
    parser.add_argument("--cost-sends", type=int, default=2000)
    parser.add_argument("--cost-rounds", type=int, default=3)
    parser.add_argument("--skip-crash-loop", action="store_true")
    args = parser.parse_args()
    if not args.skip_crash_loop:
        figures = await run_crash_loop(args.rounds, args.sends)
        print("crash loop (Prosody 0.12, served process, SQLite):", figures)
    runs: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="xc-bench-cost-") as directory:
        for round_number in range(args.cost_rounds):
            order = (False, True) if round_number % 2 == 0 else (True, False)
            for outbox in order:
                runs[outbox].append(await cost_run(Path(directory), args.cost_sends, outbox))
    off, on = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"cost per send (sandbox, in process, {args.cost_sends} sends x {args.cost_rounds} rounds, A/B):")
    print(f"  A outbox off: {', '.join(f'{v:.0f}' for v in runs[False])} µs CPU/send (median {off:.0f})")
    print(f"  B outbox on:  {', '.join(f'{v:.0f}' for v in runs[True])} µs CPU/send (median {on:.0f})")
    print(f"  outbox cost: {on - off:+.0f} µs/send ({(on - off) / off * 100:+.1f}%)")


if __name__ == "__main__":
    asyncio.run(main())
