"""Accepted sends/s through POST /adapter/actions (persisted, idempotent), concurrent clients on loopback.

Starts ``xmpp-connect serve`` in a subprocess with a fresh SQLite store, then drives it with N concurrent
keep-alive HTTP clients for a bounded number of ``notification.send`` requests, each with its own
idempotency key. Prints accepted sends/s, p50/p99 latency, and the end-to-end rate: receipts recorded as
``delivered_to_client`` evidence per second, from the first request to the last receipt's ``recorded_at``.

    .venv/bin/python bench/api.py [--requests 6000] [--concurrency 32] [--policy DIR] [--api-workers N]
    .venv/bin/python bench/api.py --prosody [--requests 3000]   # a real Prosody and a receipt-sending client

By default it measures the service as one process (the baseline), then with one API worker process
(``serve --api-workers 1``), in the same run, and prints the ratio. It also prints the CPU time each server
process spent per send, which a loaded machine distorts less than the rates.

Default: the sandbox provider (``delivered@sandbox.invalid`` returns an SM ack and a XEP-0184 receipt for
every message). ``--prosody``: a throwaway Prosody on loopback (tests/integration/prosody.py, MAM in memory)
and a slixmpp recipient with automatic receipts (tests/integration/recipients.py) in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

SQL_TRACE_HOOK = """\
import os, sqlite3
_out = open(os.path.join(os.environ["XC_SQL_TRACE"], f"{os.getpid()}.sql"), "a", buffering=1)
_connect = sqlite3.connect


def connect(database, *args, **kwargs):
    conn = _connect(database, *args, **kwargs)
    tag = os.path.basename(str(database))
    conn.set_trace_callback(lambda text: _out.write(f"{tag}\\t{' '.join(text.split())}\\n"))
    return conn


sqlite3.connect = connect
"""
"""A ``sitecustomize`` for the served processes with ``--sql-trace``: every SQLite statement each process
runs, one line (file name, text) in ``<dir>/<pid>.sql``."""

TOKEN = "bench-token-not-secret"
PASSWORD_ENV = "XC_BENCH_PASSWORD"
SANDBOX_RECIPIENT = "delivered@sandbox.invalid"
DELIVERED = "delivered_to_client"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    started_at: float
    elapsed: float
    latencies: list[float]
    accepted: int


@dataclass
class CpuUse:
    """CPU seconds (user + system) of the service's processes: while the sends were accepted, and until the
    last receipt was recorded. Robust to a noisy machine, unlike the rates."""

    accepting: dict[str, float]
    until_receipts: dict[str, float]


def process_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid`` ("core") and of each child process ("worker N")."""
    tick = os.sysconf("SC_CLK_TCK")

    def seconds(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    children = sorted(
        int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()
    )
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return {"core": seconds(pid), **{f"worker {i}": seconds(c) for i, c in enumerate(workers)}}


def cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database(directory: Path) -> Path:
    """The service's SQLite store in the run's directory."""
    return directory / "bench.sqlite3"


def write_config(directory: Path, accounts: str, policy: Path | None) -> Path:
    lines = [
        f"data_dir: {directory}",
        f"storage: {{kind: sqlite, path: {database(directory)}}}",
        "limits: {rate_per_second: 1000000, burst: 1000000}",
        "timers: {receipt_timeout_s: 300}",
        f"accounts: [{accounts}]",
        "tenants: [{id: bench, token_env: XC_BENCH_TOKEN, accounts: [bench]}]",
    ]
    if policy is not None:
        lines.append(f"policy_dir: {policy.resolve()}")
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def send_request(run: str, i: int, to: str) -> dict[str, object]:
    return {
        "request_id": f"req-{run}-{i}",
        "action_type": "notification.send",
        "coordination_case_id": "case-bench",
        "participant_id": f"p-{i}",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": to},
        "content": {"body": "A document is available."},
        "tracking_context": {"correlation_id": f"corr-{run}-{i}"},
        "idempotency_key": f"bench:{run}:{i}",
        "requested_at": "2026-01-01T12:00:00Z",
    }


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive connection (Content-Length bodies only).

    The load generator must not be the bottleneck: httpx.AsyncClient with 32 concurrent requests managed
    ~370 requests/s against a trivial Starlette endpoint on this machine, this client ~6,000/s."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, port: int) -> KeepAliveClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, payload: bytes) -> tuple[int, Any]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self._writer.write(head.encode() + payload)
        status_line, *headers = (await self._reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:"))
        return int(status_line.split(" ", 2)[1]), json.loads(await self._reader.readexactly(length))

    def close(self) -> None:
        self._writer.close()


async def drive(port: int, total: int, concurrency: int, to: str) -> Load:
    """``total`` sends over ``concurrency`` connections; counts 202 responses with ``accepted: true``."""
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    accepted = 0
    # Encoded before the clock starts: the load generator's own JSON work is not the service's.
    payloads = iter([json.dumps(send_request(run, i, to)).encode() for i in range(total)])
    clients = [await KeepAliveClient.connect(port) for _ in range(concurrency)]

    async def worker(client: KeepAliveClient) -> None:
        nonlocal accepted
        for payload in payloads:
            began = time.perf_counter()
            status, result = await client.post("/adapter/actions", payload)
            latencies.append(time.perf_counter() - began)
            accepted += status == 202 and result.get("accepted") is True

    started_at = time.time()
    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    elapsed = time.perf_counter() - began
    for client in clients:
        client.close()
    return Load(started_at, elapsed, latencies, accepted)


class ReceiptCounter:
    """Reads the receipts' evidence from the service's SQLite file (WAL: a reader never blocks the
    writer), once from the start, then only what is new at each poll. Reading them through the feed
    (``GET /adapter/events``) billed the bench's own counting to the core: ~13% of its CPU per send."""

    def __init__(self, database: Path) -> None:
        self._conn = sqlite3.connect(database)
        self._seq = 0
        self.times: list[float] = []
        """``recorded_at`` (epoch seconds) of every delivered_to_client event read so far."""

    def poll(self) -> None:
        rows = self._conn.execute(
            "SELECT seq, scenario, recorded_at FROM evidence_events WHERE seq > ? AND emitted = 1"
            " ORDER BY seq",
            (self._seq,),
        ).fetchall()
        self._seq = rows[-1][0] if rows else self._seq
        self.times += [datetime.fromisoformat(at).timestamp() for _, scenario, at in rows
                       if scenario.startswith(DELIVERED)]

    def close(self) -> None:
        self._conn.close()


async def await_receipts(database: Path, expected: int, timeout: float) -> list[float]:
    """Poll the store until ``expected`` receipts are recorded or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    counter = ReceiptCounter(database)
    try:
        while True:
            counter.poll()
            if len(counter.times) >= expected or time.monotonic() > deadline:
                return counter.times
            # The core's CPU is read when this returns: a long pause would bill it the idle time after the
            # last receipt (its timers, health report and polls) as "until the last receipt".
            await asyncio.sleep(0.1)
    finally:
        counter.close()


def auth_header() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def wait_until(check: Callable[[], bool], deadline: float, what: str) -> None:
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} within the deadline")


def stream_connected(base: str) -> bool:
    health = httpx.get(f"{base}/adapter/health", headers=auth_header(), timeout=1).json()
    return all(a.get("stream_status") == "connected" for a in health.get("accounts", [])) and bool(
        health.get("accounts")
    )


@contextmanager
def service(config: Path, env: dict[str, str], api_workers: int = 0) -> Iterator[tuple[int, int]]:
    """``xmpp-connect serve`` in a subprocess; yields its port and pid once its streams are up."""
    port = free_port()
    code = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--config", str(config), "--port", str(port),
         "--api-workers", str(api_workers)],
        env={**os.environ, "XC_BENCH_TOKEN": TOKEN, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: stream_connected(base), time.monotonic() + 30, "the service did not connect")
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


class SqlTrace:
    """Counts the statements the core ran on the store file between ``mark()`` and ``count()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir()
        (directory / "sitecustomize.py").write_text(SQL_TRACE_HOOK)
        self._offset = 0

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(self.directory), os.environ.get("PYTHONPATH")) if p)
        return {"XC_SQL_TRACE": str(self.directory), "PYTHONPATH": path}

    def mark(self, pid: int) -> None:
        self._offset = (self.directory / f"{pid}.sql").stat().st_size

    def count(self, pid: int, store: str, output: Path) -> Counter[str]:
        """Writes the statements to ``output``, one a line, and counts them by kind."""
        with (self.directory / f"{pid}.sql").open("rb") as trace:
            trace.seek(self._offset)
            lines = trace.read().decode().splitlines()
        statements = [text for tag, _, text in (line.partition("\t") for line in lines) if tag == store]
        output.write_text("".join(f"{text}\n" for text in statements))
        return Counter(map(statement_kind, statements))


def statement_kind(text: str) -> str:
    """A statement's verb and table ("INSERT evidence_events", "SELECT counters", "SAVEPOINT")."""
    words = text.replace("(", " ").split()
    verb = words[0].upper() if words else ""
    table = {"INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM", "SELECT": "FROM"}.get(verb)
    upper = [w.upper() for w in words]
    if table is None or table not in upper[:-1]:
        return verb
    return f"{verb} {words[upper.index(table) + 1]}"


def print_statements(counts: Counter[str], sends: int) -> None:
    total = sum(counts.values())
    print(f"SQLite statements of the core on the store per send: {total / sends:.2f}")
    for kind, n in counts.most_common():
        print(f"  {n / sends:6.2f}  {kind}")


@contextmanager
def sampled(pid: int, output: Path) -> Iterator[None]:
    """py-spy samples ``pid`` (100 Hz, collapsed stacks) for the duration of the block."""
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-r", "100", "--nonblocking",
         "--format", "raw", "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


def profile_top(collapsed: Path, count: int = 25) -> None:
    """The functions the sampled process spent its time in: inclusive and own share of the samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1] for f in stack.split(";") if f]
        if not frames:
            continue
        n = int(samples)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"py-spy: {total} samples of the core process")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"  top {count} by {title} share:")
        for frame, n in counter.most_common(count):
            print(f"    {n / total:6.1%}  {frame}")


def load_integration_helpers() -> None:
    """tests/integration holds the Prosody harness and the slixmpp recipient the tests use."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))


@asynccontextmanager
async def prosody_recipient(server: Any) -> AsyncIterator[str]:
    """A logged-in slixmpp client that returns a XEP-0184 receipt for every message; yields its bare JID."""
    from recipients import Recipient

    recipient = await Recipient(server, server.fresh_user("rcpt"), "phone").online()
    try:
        yield recipient.user.jid
    finally:
        await recipient.offline()


def run_sandbox(args: argparse.Namespace, directory: Path) -> tuple[Load, list[float]]:
    account = "{ref: bench, provider: sandbox, jid: bench@sandbox.invalid/service}"
    config = write_config(directory, account, args.policy)
    with service(config, {}, args.api_workers) as (port, pid):
        before = process_cpu(pid)
        load = asyncio.run(drive(port, args.requests, args.concurrency, SANDBOX_RECIPIENT))
        accepting = cpu_between(before, process_cpu(pid))
        found = asyncio.run(await_receipts(database(directory), load.accepted, args.receipt_wait))
        args.cpu = CpuUse(accepting, cpu_between(before, process_cpu(pid)))
    return load, found


async def bare_client(server: Any, total: int, window: int, adapter_elements: bool = False) -> float:
    """The baseline: a bare slixmpp client (bench/provider.py) sends ``total`` messages with receipt
    requests through the same Prosody, ``window`` in flight; its receipts/s."""
    from provider import run_bare

    result = await run_bare(server, total, window, adapter_elements)
    which = "bare slixmpp client with the adapter's <thread> and <origin-id>" if adapter_elements else (
        "bare slixmpp client")
    print(f"{which}, same Prosody: {result.rate:,.0f} receipts/s"
          f" (CPU {result.cpu_us_per_message:,.0f} µs per message, sender and recipient in one process;"
          f" Prosody's {result.server_cpu_us_per_message:,.0f} µs per message)")
    return result.rate


def run_prosody(args: argparse.Namespace, directory: Path) -> tuple[Load, list[float]]:
    load_integration_helpers()
    from prosody import ProsodyServer

    server = ProsodyServer(directory / "prosody")
    server.prepare()
    server.start()
    try:
        args.bare = asyncio.run(bare_client(server, args.requests, args.concurrency))
        if args.bare_with_adapter_elements:
            server.restart()
            args.bare_elements = asyncio.run(bare_client(server, args.requests, args.concurrency, True))
        server.restart()  # the in-memory archive grows with every message and slows Prosody down
        user = server.fresh_user("svc")
        account = (
            f"{{ref: bench, provider: slixmpp, jid: {user.jid}/adapter, password_env: {PASSWORD_ENV},"
            f" host: 127.0.0.1, port: {server.port}, ca_certs: {server.cert_path}}}"
        )
        config = write_config(directory, account, args.policy)
        trace = SqlTrace(directory / "trace") if args.sql_trace else None
        env = {PASSWORD_ENV: user.password, **(trace.env() if trace else {})}
        with service(config, env, args.api_workers) as (port, pid):

            async def measure() -> tuple[Load, list[float]]:
                profiled = sampled(pid, args.py_spy) if args.py_spy else nullcontext()
                async with prosody_recipient(server) as jid:
                    if trace:
                        trace.mark(pid)
                    before = process_cpu(pid)
                    server_before = server.cpu_seconds()
                    with profiled:
                        load = await drive(port, args.requests, args.concurrency, jid)
                        accepting = cpu_between(before, process_cpu(pid))
                        found = await await_receipts(database(directory), load.accepted, args.receipt_wait)
                    args.cpu = CpuUse(accepting, cpu_between(before, process_cpu(pid)))
                    args.prosody_cpu = server.cpu_seconds() - server_before
                    if trace:
                        args.statements = trace.count(pid, database(directory).name, args.sql_trace)
                    return load, found

            return asyncio.run(measure())
    finally:
        server.stop()


def report(args: argparse.Namespace, load: Load, found: list[float]) -> None:
    quantiles = statistics.quantiles(load.latencies, n=100)
    setup = "prosody (c2s loopback, MAM in memory) + slixmpp recipient" if args.prosody else "sandbox"
    print(f"requests={args.requests} concurrency={args.concurrency} cores={os.cpu_count()} store=sqlite")
    print(f"provider: {setup}")
    print(
        f"accepted sends/s: {load.accepted / load.elapsed:,.0f}"
        f" ({load.accepted}/{args.requests} accepted in {load.elapsed:.2f}s)"
    )
    print(f"latency p50: {quantiles[49] * 1000:.1f} ms  p99: {quantiles[98] * 1000:.1f} ms")
    if found:
        span = max(found) - load.started_at
        print(f"end-to-end receipts/s: {len(found) / span:,.0f} ({len(found)} receipts in {span:.2f}s)")
        if args.prosody:
            print(f"end-to-end receipts/s / bare slixmpp client's: {len(found) / span / args.bare:.2f}"
                  " (target >= 0.8)")
            if args.bare_with_adapter_elements:
                print("end-to-end receipts/s / the bare client's with the adapter's elements:"
                      f" {len(found) / span / args.bare_elements:.2f}")
    else:
        print("end-to-end receipts/s: none recorded")
    cpu: CpuUse = args.cpu
    for label, use in (("while accepting", cpu.accepting), ("until the last receipt", cpu.until_receipts)):
        parts = ", ".join(f"{name} {1e6 * seconds / load.accepted:,.0f}" for name, seconds in use.items())
        print(f"server CPU µs per send, {label}: {parts}")
    if args.prosody:
        prosody = 1e6 * args.prosody_cpu / load.accepted
        print(f"Prosody's CPU µs per send, until the last receipt: {prosody:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--policy", type=Path, help="policy directory (default: the packaged policy)")
    parser.add_argument("--prosody", action="store_true", help="send through a real Prosody")
    parser.add_argument(
        "--api-workers", type=int, help="only serve --api-workers N (default: 0 as the baseline, then 1)"
    )
    parser.add_argument("--py-spy", type=Path, help="with --prosody: sample the core with py-spy into FILE")
    parser.add_argument(
        "--sql-trace", type=Path, metavar="FILE",
        help="with --prosody: the core's SQLite statements on the store into FILE, and their count per send"
        " (tracing costs CPU: not for timing)",
    )
    parser.add_argument("--receipt-wait", type=float, default=60.0, help="seconds to wait for receipts")
    parser.add_argument(
        "--bare-with-adapter-elements", action="store_true",
        help="with --prosody: also a bare client whose messages carry the adapter's <thread> and <origin-id>"
        " (Prosody's work per message for the adapter's stanza), and the ratio against it",
    )
    args = parser.parse_args()
    rates: dict[int, float] = {}
    for workers in [args.api_workers] if args.api_workers is not None else [0, 1]:
        mode = argparse.Namespace(**{**vars(args), "api_workers": workers})
        with tempfile.TemporaryDirectory(prefix="xc-bench-") as tmp:
            run = run_prosody if args.prosody else run_sandbox
            load, found = run(mode, Path(tmp))
        print(f"--- serve --api-workers {workers}" + (" (one process: the baseline)" if not workers else ""))
        report(mode, load, found)
        if args.py_spy:
            profile_top(args.py_spy)
        if args.sql_trace:
            print_statements(mode.statements, load.accepted)
        rates[workers] = load.accepted / load.elapsed
    if 0 in rates and len(rates) > 1:
        for workers, rate in rates.items():
            if workers:
                print(f"accepted sends/s, --api-workers {workers} / one process: {rate / rates[0]:.1f}x")


if __name__ == "__main__":
    main()
