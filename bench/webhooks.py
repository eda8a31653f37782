"""Webhook push while 1,000 sends with receipts run: delivery rate and lag, beside the same run without a
subscription (send throughput must not drop by more than 10%).

Starts ``xmpp-connect serve`` (sandbox provider, SQLite) twice: once without a webhook subscription, once with
a config-file subscription to a receiver on loopback (aiohttp's server in its own process, answering 204).
The two alternate ``--pairs`` times (the machine's load drifts). Each run sends ``--sends`` notifications to
``delivered@sandbox.invalid`` (server ack and XEP-0184 receipt) over ``--concurrency`` connections and waits
for every receipt. Prints accepted sends/s, the service's CPU per send while accepting them, receipts/s, and
for the subscribed run the events delivered per second (first send to last delivery) and the lag from an
event's ``recorded_at`` to the receiver's 2xx (p50, p99).

    .venv/bin/python bench/webhooks.py [--sends 1000] [--concurrency 16] [--pairs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from aiohttp import web

from api import SANDBOX_RECIPIENT, auth_header, await_receipts, drive, free_port, process_cpu, service

SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-32-bytes!!!").decode()


def receive(port: int) -> None:
    """The receiver, in its own process so it never competes with the load generator: aiohttp's server,
    204 to every POST; GET /arrivals lists (arrived, recorded_at) of each event of a message."""
    arrivals: list[tuple[float, float]] = []

    async def hook(request: web.Request) -> web.Response:
        data = json.loads(await request.read())["data"]
        if data["xmpp_message_id"]:
            arrivals.append((time.time(), datetime.fromisoformat(data["recorded_at"]).timestamp()))
        return web.Response(status=204)

    async def listed(_request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/arrivals", listed)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = multiprocessing.get_context("spawn").Process(target=receive, args=(self.port,))
        self.process.start()
        deadline = time.monotonic() + 30
        while not self._answers():
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/arrivals").status_code == 200
        except httpx.TransportError:
            return False

    def arrivals(self) -> list[tuple[float, float]]:
        return [tuple(a) for a in httpx.get(f"http://127.0.0.1:{self.port}/arrivals", timeout=30).json()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


def write_config(directory: Path, hook_port: int | None) -> Path:
    hooks = (
        f", webhooks: [{{id: engine, url: 'http://127.0.0.1:{hook_port}/hook', secret_env: XC_BENCH_HOOK}}]"
        if hook_port else ""
    )
    lines = [
        f"data_dir: {directory}",
        f"storage: {{kind: sqlite, path: {directory / 'bench.sqlite3'}}}",
        "limits: {rate_per_second: 1000000, burst: 1000000}",
        "timers: {receipt_timeout_s: 300}",
        "accounts: [{ref: bench, provider: sandbox, jid: 'bench@sandbox.invalid/bench'}]",
        f"tenants: [{{id: bench, token_env: XC_BENCH_TOKEN, accounts: [bench]{hooks}}}]",
    ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Run:
    sends_per_s: float
    receipts_per_s: float
    cpu_ms_per_send: float
    """The service process's CPU (user + system) while the sends were accepted, per send: robust to the
    machine's load, unlike the rates."""
    deliveries: int = 0
    delivered_per_s: float = 0.0
    lag_p50: float = 0.0
    lag_p99: float = 0.0


def one_run(sends: int, concurrency: int, subscribed: bool) -> Run:
    receiver = Receiver() if subscribed else None
    arrivals: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), receiver.port if receiver else None)
        with service(config, {"XC_BENCH_HOOK": SECRET}) as (base, port, pid):
            before = process_cpu(pid)["core"]
            load = asyncio.run(drive(port, sends, concurrency, SANDBOX_RECIPIENT))
            cpu = process_cpu(pid)["core"] - before
            found = asyncio.run(await_receipts(base, sends, timeout=300))
            if len(found) < sends:
                raise SystemExit(f"only {len(found)} of {sends} receipts")
            last_receipt = max(found)
            expected = 0
            if receiver is not None:
                expected = asyncio.run(_feed_size(base))
                deadline = time.monotonic() + 300
                while len(arrivals := receiver.arrivals()) < expected and time.monotonic() < deadline:
                    time.sleep(0.5)
                receiver.stop()
    run = Run(load.accepted / load.elapsed, len(found) / (last_receipt - load.started_at), 1000 * cpu / sends)
    if not arrivals:
        return run
    lags = sorted(arrived - recorded for arrived, recorded in arrivals)
    last = max(arrived for arrived, _ in arrivals)
    return Run(
        run.sends_per_s, run.receipts_per_s, run.cpu_ms_per_send, len(arrivals),
        len(arrivals) / (last - load.started_at),
        statistics.median(lags), lags[int(0.99 * (len(lags) - 1))],
    )


async def _feed_size(base: str) -> int:
    """The sends' events in the feed (the receiver counts the same: events of a message)."""
    count, cursor = 0, None
    async with httpx.AsyncClient(base_url=base, headers=auth_header(), timeout=30) as client:
        while True:
            params: dict[str, str | int] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/adapter/events", params=params)).json()
            count += sum(1 for e in page["events"] if e["xmpp_message_id"])
            if not page["events"]:
                return count
            cursor = page["next_cursor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=3, help="alternating runs without/with a subscription")
    args = parser.parse_args()
    print(f"{args.sends} sends to {SANDBOX_RECIPIENT}, {args.concurrency} connections, {args.pairs} pairs")
    columns = (("sends/s", 9), ("cpu/send", 10), ("receipts/s", 12), ("events/s", 10), ("lag p50", 10),
               ("lag p99", 10))
    print(" " * 18 + "".join(f"{name:>{width}}" for name, width in columns))
    ratios, cpu_ratios = [], []
    for _ in range(args.pairs):
        plain = one_run(args.sends, args.concurrency, subscribed=False)
        pushed = one_run(args.sends, args.concurrency, subscribed=True)
        ratios.append(pushed.sends_per_s / plain.sends_per_s)
        cpu_ratios.append(pushed.cpu_ms_per_send / plain.cpu_ms_per_send)
        for name, run in (("no subscription", plain), ("one subscription", pushed)):
            print(f"{name:18}{run.sends_per_s:>9.0f}{run.cpu_ms_per_send:>8.2f}ms", end="")
            print(f"{run.receipts_per_s:>12.0f}", end="")
            print(f"{run.delivered_per_s:>10.0f}{1000 * run.lag_p50:>8.0f}ms{1000 * run.lag_p99:>8.0f}ms"
                  if run.deliveries else "")
    print(f"with push, medians of the pairs: send rate {100 * statistics.median(ratios):.0f}%, "
          f"service CPU per accepted send {100 * statistics.median(cpu_ratios):.0f}% of without")


if __name__ == "__main__":
    main()
