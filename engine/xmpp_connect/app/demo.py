"""The one-command demo (``scripts/demo``): a throwaway Prosody on loopback, ``xmpp-connect serve`` configured
against it, and a scripted recipient that answers with a receipt, a displayed marker and an ACK reply. One
message is sent over HTTP and its evidence ladder printed as a table; then the service keeps running (URLs
and token printed) until Ctrl-C, or, with ``--once``, everything stops."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from xmpp_connect.app.demo_recipient import ScriptedRecipient
from xmpp_connect.app.local_prosody import LocalProsody, LocalUser, free_loopback_port

WAIT = 20.0
FINAL = "success.acknowledged_by_client"
CONFIG = """\
# Written by scripts/demo: the adapter account on the demo's Prosody; secrets come from the environment.
listen: {{host: 127.0.0.1, port: {http_port}}}
data_dir: data
storage: {{kind: sqlite, path: data/demo.sqlite3}}
accounts:
  - ref: notify
    provider: slixmpp
    jid: {adapter_jid}/service
    password_env: XC_DEMO_ADAPTER_PASSWORD
    host: 127.0.0.1
    port: {xmpp_port}
    ca_certs: {ca}
tenants:
  - {{id: demo, token_env: XC_DEMO_TOKEN, accounts: [notify]}}
"""
COLUMNS = (("+ms", 6), ("event", 43), ("scenario", 26), ("assessment", 32), ("grade", 22), ("resource", 8),
           ("late", 4), ("inferred", 8))


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    """The demo's parts, started in order and stopped in reverse."""

    def __init__(self, workdir: Path, http_port: int) -> None:
        self.workdir = workdir
        self.http_port = http_port
        self.base = f"http://127.0.0.1:{http_port}"
        self.token = secrets.token_urlsafe(24)
        self.prosody = LocalProsody(workdir / "prosody")
        self.service: subprocess.Popen[bytes] | None = None
        self.recipient: ScriptedRecipient | None = None
        self.recipient_jid = ""

    async def start(self) -> None:
        say(f"[1/4] starting a throwaway Prosody on 127.0.0.1 (files in {self.prosody.base})")
        adapter, recipient = await asyncio.to_thread(self._start_prosody)
        self.recipient_jid = recipient.jid
        # slixmpp clients belong to the loop they are made in: this one, not the thread's.
        self.recipient = ScriptedRecipient(recipient.jid, recipient.password, self.prosody.port,
                                           self.prosody.cert_path)
        say(f"[2/4] starting xmpp-connect on {self.base} (log: {self.workdir / 'service.log'})")
        await self._start_service(adapter)
        say(f"[3/4] recipient {self.recipient_jid}/phone online: it answers each message with a receipt, "
            "a displayed marker and ACK")
        await self.recipient.online()
        self.recipient.subscribe_to(adapter.jid)
        await self._wait_for_presence()

    def _start_prosody(self) -> tuple[LocalUser, LocalUser]:
        """The server with two accounts: the adapter's and the recipient's."""
        self.prosody.prepare()
        users = self.prosody.register("adapter"), self.prosody.register("alice")
        self.prosody.start()
        return users

    async def _start_service(self, adapter: LocalUser) -> None:
        config = self.workdir / "xmpp-connect.yaml"
        config.write_text(CONFIG.format(http_port=self.http_port, adapter_jid=adapter.jid,
                                        xmpp_port=self.prosody.port, ca=self.prosody.cert_path))
        env = {**os.environ, "XC_DEMO_ADAPTER_PASSWORD": adapter.password, "XC_DEMO_TOKEN": self.token}
        with (self.workdir / "service.log").open("ab") as log:
            self.service = subprocess.Popen(
                [sys.executable, "-m", "xmpp_connect.app.cli", "serve", "--config", str(config)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        deadline = time.monotonic() + WAIT
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as http:
            while time.monotonic() < deadline:
                if self.service.poll() is not None:
                    raise RuntimeError(f"xmpp-connect exited; see {self.workdir / 'service.log'}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"xmpp-connect was not ready within {WAIT}s; see {self.workdir / 'service.log'}")

    async def _wait_for_presence(self) -> None:
        """Until the adapter has seen the recipient's resource available (bounded)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + WAIT
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=5) as http:
            while time.monotonic() < deadline:
                answer = await http.get(f"/xmpp/presence/{self.recipient_jid}")
                if answer.status_code == 200 and any(
                    r.get("availability") == "available" and r.get("resource") == "phone"
                    for r in answer.json().get("resources", [])
                ):
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the adapter did not see {self.recipient_jid} online within {WAIT}s")

    async def send_and_show(self) -> dict[str, Any]:
        """Send one message over HTTP and print its ladder once the ACK reply is in (bounded)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        request = {
            "idempotency_key": f"demo-{secrets.token_hex(4)}",
            "content": {"body": "Demo: the quarterly report is ready. Reply ACK to confirm."},
            "target_endpoint": {"endpoint_type": "bare_jid", "value": self.recipient_jid},
        }
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10) as http:
            say(f"[4/4] POST {self.base}/xmpp/send to {self.recipient_jid}")
            answer = (await http.post("/xmpp/send", json=request)).json()
            message_id = answer["xmpp_message_id"]
            say(f"      accepted: xmpp_message_id {message_id}")
            deadline = time.monotonic() + WAIT
            while True:
                assessment = (await http.get(f"/xmpp/messages/{message_id}/assessment")).json()
                if assessment["subclass"] == FINAL or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            timeline = (await http.get(f"/xmpp/messages/{message_id}/timeline")).json()
        say()
        say(ladder(timeline["entries"]))
        say()
        say(f"assessment: {assessment['category']} / {assessment['subclass']} "
            f"(confidence {assessment['confidence']})")
        return assessment

    def print_how_to_go_on(self) -> None:
        """URLs, the token and commands that work when pasted into a shell."""
        body = json.dumps({"idempotency_key": "try-2", "content": {"body": "Reply ACK please"},
                           "target_endpoint": {"endpoint_type": "bare_jid", "value": self.recipient_jid}})
        auth = '-H "Authorization: Bearer $TOKEN"'
        say()
        say("The service keeps running; the recipient answers every message. Try more:")
        say(f"  API {self.base}  (OpenAPI {self.base}/openapi.json, probes {self.base}/readyz)")
        say(f"  XMPP 127.0.0.1:{self.prosody.port}, domain localhost")
        say(f"  config {self.workdir / 'xmpp-connect.yaml'}, service log {self.workdir / 'service.log'}")
        say()
        say(f"  TOKEN={self.token}")
        say(f"  ID=$(curl -s {auth} -H 'content-type: application/json' {self.base}/xmpp/send \\")
        say(f"       -d '{body}' \\")
        say("       | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"xmpp_message_id\"])')")
        say(f"  curl -s {auth} {self.base}/xmpp/messages/$ID/timeline")
        say(f"  curl -s {auth} {self.base}/xmpp/messages/$ID/assessment")
        say()
        say("Press Ctrl-C to stop everything.")

    async def stop(self) -> None:
        if self.recipient is not None:
            await self.recipient.offline()
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.service.wait, 15)
            except subprocess.TimeoutExpired:
                self.service.kill()
        await asyncio.to_thread(self.prosody.stop)


def ladder(entries: Sequence[dict[str, Any]]) -> str:
    """The timeline as a fixed-width table, times relative to the first entry."""
    start = _time(entries[0]["occurred_at"]) if entries else None
    rows = [[name for name, _ in COLUMNS]]
    for entry in entries:
        offset = (_time(entry["occurred_at"]) - start).total_seconds() * 1000 if start else 0.0
        rows.append([
            f"{offset:.0f}", entry["event_type"], entry.get("scenario") or "-",
            entry["assessment"]["subclass"], entry.get("evidence_grade") or "-",
            (entry.get("sender") or {}).get("resource") or "-",
            "yes" if entry.get("late") else "no", "yes" if entry.get("inferred") else "no",
        ])
    return "\n".join(
        "  ".join(cell.rjust(width) if i == 0 else cell.ljust(width)
                  for i, (cell, (_, width)) in enumerate(zip(row, COLUMNS, strict=True))).rstrip()
        for row in rows
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def run(once: bool, workdir: Path, http_port: int) -> int:
    demo = Demo(workdir, http_port)
    try:
        await demo.start()
        assessment = await demo.send_and_show()
        if assessment["subclass"] != FINAL:
            say(f"the ACK reply did not arrive within {WAIT}s; see {workdir / 'service.log'}")
            return 1
        if not once:
            demo.print_how_to_go_on()
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stopped.set)
            await stopped.wait()
        return 0
    finally:
        say("stopping the service, the recipient and Prosody")
        await demo.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="send one message, print its ladder, stop")
    parser.add_argument("--port", type=int, help="HTTP port (default 8750, or a free one with --once)")
    parser.add_argument("--dir", type=Path, help="working directory (default: a new temp directory)")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="xmpp-connect-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = args.port or (free_loopback_port() if args.once else 8750)
    return asyncio.run(run(args.once, workdir.resolve(), port))


if __name__ == "__main__":
    sys.exit(main())
