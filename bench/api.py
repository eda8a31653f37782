"""Accepted sends/s through POST /adapter/actions (persisted, idempotent), concurrent clients on loopback.

Starts ``xmpp-connect serve`` in a subprocess (SQLite + sandbox provider; delivered@sandbox.invalid returns a
receipt for every message), then drives it with N concurrent HTTP clients for a bounded number of requests.
Prints sends/s, p50/p99 latency and how many receipts were recorded by the end.

    .venv/bin/python bench/api.py [--requests 6000] [--concurrency 32] [--policy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "bench-token-not-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, policy: Path | None) -> Path:
    lines = [
        f"data_dir: {directory}",
        f"storage: {{kind: sqlite, path: {directory / 'bench.sqlite3'}}}",
        "limits: {rate_per_second: 1000000, burst: 1000000}",
        "accounts: [{ref: sandbox, provider: sandbox, jid: bench@sandbox.invalid/service}]",
        "tenants: [{id: bench, token_env: XC_BENCH_TOKEN, accounts: [sandbox]}]",
    ]
    if policy is not None:
        lines.append(f"policy_dir: {policy.resolve()}")
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def request(i: int) -> dict[str, object]:
    return {
        "request_id": f"req-{i}",
        "action_type": "notification.send",
        "coordination_case_id": "case-bench",
        "participant_id": f"p-{i}",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": "delivered@sandbox.invalid"},
        "content": {"body": "A document is available."},
        "tracking_context": {"correlation_id": f"corr-{i}"},
        "idempotency_key": f"bench:{i}",
        "requested_at": "2026-01-01T12:00:00Z",
    }


async def drive(base: str, total: int, concurrency: int) -> tuple[float, list[float], int]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    accepted = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal accepted
            for i in counter:
                started = time.perf_counter()
                response = await client.post("/adapter/actions", json=request(i))
                latencies.append(time.perf_counter() - started)
                accepted += response.status_code == 202 and response.json()["accepted"] is True

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return elapsed, latencies, accepted


async def receipts_recorded(base: str) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    count, cursor = 0, None
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/adapter/events", params=params)).json()
            count += sum(e["scenario"].startswith("delivered_to_client") for e in page["events"])
            if not page["events"]:
                return count
            cursor = page["next_cursor"]


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the service did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--policy", type=Path, help="policy directory (default: the packaged policy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), args.policy)
        port = free_port()
        env = {**os.environ, "XC_BENCH_TOKEN": TOKEN}
        code = "import sys; from xmpp_connect.service import serve; sys.exit(serve(sys.argv[1:]))"
        server = subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, time.monotonic() + 20)
            elapsed, latencies, accepted = asyncio.run(drive(base, args.requests, args.concurrency))
            time.sleep(0.5)
            receipts = asyncio.run(receipts_recorded(base))
        finally:
            server.terminate()
            server.wait(timeout=10)
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"requests={args.requests} concurrency={args.concurrency} cores={os.cpu_count()}"
        " store=sqlite provider=sandbox"
    )
    print(
        f"accepted sends/s: {accepted / elapsed:,.0f} ({accepted}/{args.requests} accepted in {elapsed:.2f}s)"
    )
    print(f"latency p50: {quantiles[49] * 1000:.1f} ms  p99: {quantiles[98] * 1000:.1f} ms")
    print(f"receipts recorded (sandbox delivered@): {receipts}")


if __name__ == "__main__":
    main()
