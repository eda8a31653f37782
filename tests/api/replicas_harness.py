"""Several `xmpp-connect serve` replicas on one PostgreSQL schema (tests/api/test_replicas.py): processes on
loopback ports sharing accounts on a real XMPP server, the lease table read directly, and a
loopback TCP proxy in front of PostgreSQL that a test can cut (a partition between a replica and the
database)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from prosody import ProsodyServer, TestUser, free_loopback_port
from psycopg import sql

TOKEN = "replica-token-4d1f0b"
TOKEN_ENV = "XC_REPLICA_TOKEN"
DSN_ENV = "XC_REPLICA_DSN"
WEBHOOK_SECRET_ENV = "XC_REPLICA_WHSEC"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"replica-webhook-secret-32-bytes!").decode()
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
WAIT = 60.0
ACCOUNT = """\
  - ref: {ref}
    provider: slixmpp
    jid: {jid}/adapter
    password_env: {password_env}
    host: 127.0.0.1
    port: {port}
    ca_certs: {ca}
    delivery: {delivery}
"""
CONFIG = """\
data_dir: data
storage: {{kind: postgres, dsn_env: {dsn_env}, schema: {schema}}}
replica: {{id: {replica_id}, weight: {weight}, lease_ttl_s: {ttl}}}
timers: {{receipt_timeout_s: 120}}
accounts:
{accounts}
tenants:
  - {{id: ops, token_env: {token_env}, accounts: [{refs}], webhooks: [{webhooks}]}}
"""
CONFIG_WEBHOOK = "{{id: {id}, url: '{url}', secret_env: {secret_env}}}"


@dataclass(frozen=True)
class Account:
    ref: str
    user: TestUser
    delivery: str = "at_least_once"

    @property
    def password_env(self) -> str:
        return f"XC_PW_{self.ref.upper()}"


class ReplicaProcess:
    """One replica: its own directory, config and loopback port, the shared schema."""

    def __init__(
        self, base: Path, replica_id: str, server: ProsodyServer, accounts: Sequence[Account], schema: str,
        dsn: str, weight: float = 1.0, ttl: float = 4.0, webhooks: Mapping[str, str] | None = None,
    ) -> None:
        """``webhooks``: config-file subscriptions of the tenant, id -> receiver URL."""
        self.replica_id = replica_id
        self.dir = base / replica_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.accounts = accounts
        self.dsn = dsn
        self.port = free_loopback_port()
        self.log_path = self.dir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        listed = "".join(ACCOUNT.format(ref=a.ref, jid=a.user.jid, password_env=a.password_env,
                                        port=server.port, ca=server.cert_path, delivery=a.delivery)
                         for a in accounts)
        (self.dir / "xmpp-connect.yaml").write_text(CONFIG.format(
            dsn_env=DSN_ENV, schema=schema, replica_id=replica_id, weight=weight, ttl=ttl,
            accounts=listed.rstrip("\n"), token_env=TOKEN_ENV, refs=", ".join(a.ref for a in accounts),
            webhooks=", ".join(CONFIG_WEBHOOK.format(id=i, url=u, secret_env=WEBHOOK_SECRET_ENV)
                               for i, u in (webhooks or {}).items())))

    async def start(self) -> None:
        """Spawn it and wait (bounded) until its HTTP port answers."""
        env = {**os.environ, TOKEN_ENV: TOKEN, DSN_ENV: self.dsn, WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
               **{a.password_env: a.user.password for a in self.accounts}}
        command = [sys.executable, "-c", SERVE, "serve", "--config", "xmpp-connect.yaml",
                   "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + WAIT
        async with self.client() as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"serve exited early:\n{self.log_text()}"
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/adapter/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.replica_id} did not answer within {WAIT}s:\n{self.log_text()}")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}",
                                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)

    async def connected(self) -> set[str]:
        """The accounts whose stream is connected in this replica (the ones it owns and logged in)."""
        async with self.client() as http:
            accounts = (await http.get("/adapter/health")).json().get("accounts", [])
        return {a["xmpp_account_ref"] for a in accounts if a.get("stream_status") == "connected"}

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class LeaseRow:
    owner: str | None
    token: int
    live: bool
    acquired_at: float
    """Seconds since the epoch (the database's clock, the same machine's as the replicas' logs)."""


def owners(dsn: str, schema: str) -> dict[str, LeaseRow]:
    """Each account's lease as the database sees it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        rows = conn.execute("SELECT account_ref, owner, token, expires_at > EXTRACT(EPOCH FROM"
                            " clock_timestamp()), acquired_at FROM account_leases").fetchall()
    return {ref: LeaseRow(owner, int(token), bool(live), float(at)) for ref, owner, token, live, at in rows}


def live_owners(dsn: str, schema: str, prefix: str = "acct") -> Mapping[str, str]:
    """The live owner of each lease whose key starts with ``prefix`` (accounts; ``webhook:`` for
    subscriptions)."""
    return {ref: row.owner for ref, row in owners(dsn, schema).items()
            if row.live and row.owner and ref.startswith(prefix)}


def logged_at(log_text: str, fragment: str) -> list[float]:
    """When each log line containing ``fragment`` was written, in seconds since the epoch."""
    stamps = []
    for line in log_text.splitlines():
        if fragment in line:
            day, clock = line.split(" ", 2)[:2]
            stamps.append(datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return stamps


class TcpProxy:
    """127.0.0.1:<port> -> ``target``; ``cut()`` closes every proxied connection and stops accepting, as a
    partition between the replica behind it and the database."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_loopback_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()
