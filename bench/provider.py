"""Benchmark: msg/s with receipts round-tripped, adapter vs bare slixmpp client, same Prosody, same run.

Setup (printed): Prosody 0.12 started by tests/integration/prosody.py on loopback — STARTTLS with a throwaway
certificate, XEP-0198, carbons, MAM in memory, offline storage, Nagle off. One recipient client (slixmpp,
XEP-0184 auto-receipts) per run. Each sender keeps ``--window`` messages in flight and stops at ``--messages``
receipts. The adapter path is the whole chain: SlixmppProvider -> EvidencePipeline (parse, correlate, fact,
durable_rules classification) for every native event. Runs alternate bare/adapter ``--rounds`` times (the
order flips every round, the server is restarted before every run); the medians are compared.

    .venv/bin/python bench/provider.py --messages 2000 --rounds 2

``--callgrind adapter`` (or ``bare``) runs that client once, callgrind's instrumentation on only during the
drive (start it with ``--instr-atstart=no``; Prosody runs outside valgrind); the instruction count of the
drive divided by ``--messages`` is the load-independent figure (bench/README.md); ``--only adapter`` runs it
once without callgrind (for py-spy):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.adapter \
        .venv/bin/python bench/provider.py --callgrind adapter --messages 400
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from slixmpp import ClientXMPP
from slixmpp.xmlstream import ET

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from prosody import ProsodyServer, TestUser

from xmpp_connect.config.settings import AccountConfig, Secret
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.load import load_policy
from xmpp_connect.providers.base import SessionTuning
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.providers.stanza_builders import SID_NS, OutboundMessage

TIMEOUT = 120.0
BODY = "Incident 42: please acknowledge."


@dataclass(frozen=True)
class RunResult:
    name: str
    messages: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: float
    server_cpu_seconds: float
    """Prosody's CPU over the same drive: the busiest process of the bare client's runs."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us_per_message(self) -> float:
        return self.cpu_seconds / self.messages * 1e6

    @property
    def server_cpu_us_per_message(self) -> float:
        return self.server_cpu_seconds / self.messages * 1e6

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _client(server: ProsodyServer, user: TestUser, resource: str) -> ClientXMPP:
    client = ClientXMPP(f"{user.jid}/{resource}", user.password)
    client.enable_direct_tls = False
    client.enable_plaintext = False
    client.ca_certs = server.cert_path
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0198")
    client.register_plugin("xep_0184", {"auto_ack": True})
    return client


async def _online(client: ClientXMPP, server: ProsodyServer) -> None:
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _e: started.done() or started.set_result(True))
    client.connect("127.0.0.1", server.port)
    await asyncio.wait_for(started, 10)
    client.send_presence()


async def _drive(server: ProsodyServer, total: int, window: int, send: Callable[[], str],
                 receipts: asyncio.Queue[str], latencies: list[float]) -> tuple[float, float, float]:
    """Keep ``window`` messages in flight until ``total`` receipts came back; elapsed seconds, CPU seconds
    of this process and of the server."""
    _instrument("on")
    start = time.perf_counter()
    cpu_start = time.process_time()
    server_start = server.cpu_seconds()
    sent_at: dict[str, float] = {}
    in_flight = 0
    issued = 0
    done = 0
    while done < total:
        while in_flight < window and issued < total:
            sent_at[send()] = time.perf_counter()
            in_flight += 1
            issued += 1
        original = await asyncio.wait_for(receipts.get(), TIMEOUT)
        latencies.append((time.perf_counter() - sent_at.pop(original)) * 1000)
        in_flight -= 1
        done += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    server_cpu = server.cpu_seconds() - server_start
    _instrument("off")
    return elapsed, cpu, server_cpu


CALLGRIND = False


def _instrument(state: str) -> None:
    """Callgrind's instrumentation on or off (``--callgrind`` only). Before it goes on, what the process
    built so far (the policy, the rule engine) is moved out of the cyclic GC's sight: one full collection
    over it costs ~70 M instructions, and whether one falls into a run moved its count by several %."""
    if CALLGRIND:
        if state == "on":
            gc.collect()
            gc.freeze()
        subprocess.run(["callgrind_control", f"--instr={state}", str(os.getpid())], check=True,
                       capture_output=True)


async def run_bare(server: ProsodyServer, total: int, window: int,
                   adapter_elements: bool = False) -> RunResult:
    """The bare client; ``adapter_elements``: its messages also carry the adapter's <thread> and XEP-0359
    <origin-id> (Prosody's work per message for the adapter's stanza, without the adapter)."""
    sender_user, recipient_user = server.fresh_user("bench-bare"), server.fresh_user("bench-rcpt")
    recipient, sender = _client(server, recipient_user, "r"), _client(server, sender_user, "s")
    await _online(recipient, server)
    await _online(sender, server)
    receipts: asyncio.Queue[str] = asyncio.Queue()
    sender.add_event_handler("receipt_received", lambda msg: receipts.put_nowait(msg["receipt"]))

    def send() -> str:
        message = sender.make_message(mto=recipient_user.jid, mbody=BODY, mtype="chat")
        message["id"] = sender.new_id()
        message["request_receipt"] = True
        if adapter_elements:
            message["thread"] = message["id"]
            ET.SubElement(message.xml, f"{{{SID_NS}}}origin-id", {"id": message["id"]})
        message.send()
        return str(message["id"])

    latencies: list[float] = []
    seconds, cpu, server_cpu = await _drive(server, total, window, send, receipts, latencies)
    await asyncio.gather(sender.disconnect(), recipient.disconnect())
    name = "bare, adapter's elements" if adapter_elements else "bare slixmpp"
    return RunResult(name, total, seconds, latencies, cpu, server_cpu)


async def run_adapter(server: ProsodyServer, total: int, window: int, classifier: Classifier,
                      commands: CommandTable) -> RunResult:
    sender_user, recipient_user = server.fresh_user("bench-adapter"), server.fresh_user("bench-rcpt")
    recipient = _client(server, recipient_user, "r")
    await _online(recipient, server)
    receipts: asyncio.Queue[str] = asyncio.Queue()

    def observed(observation: Observation) -> None:
        if observation.fact["kind"] == "receipt" and observation.outbound is not None:
            receipts.put_nowait(observation.outbound.stanza_id)

    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), observed)
    settings = AccountConfig(ref="bench", provider="slixmpp", jid=sender_user.jid,
                             password=Secret(sender_user.password), host="127.0.0.1", port=server.port,
                             ca_certs=str(server.cert_path))
    tuning = SessionTuning(discover_capabilities=False)

    def sink(event: NativeEvent) -> None:
        pipeline.handle(event)

    provider = SlixmppProvider(settings, sink, tuning)
    if not await provider.start():
        raise RuntimeError("adapter did not connect")

    def send() -> str:
        return provider.send_message(OutboundMessage(to_jid=recipient_user.jid, body=BODY)).stanza_id

    latencies: list[float] = []
    seconds, cpu, server_cpu = await _drive(server, total, window, send, receipts, latencies)
    await provider.stop()
    await recipient.disconnect()
    return RunResult("adapter (provider + pipeline)", total, seconds, latencies, cpu, server_cpu)


def _report(result: RunResult) -> None:
    print(f"  {result.name:<32} {result.rate:8.0f} msg/s   p50 {result.percentile(0.5):6.1f} ms   "
          f"p99 {result.percentile(0.99):6.1f} ms   CPU {result.cpu_us_per_message:5.0f} us/msg "
          f"Prosody {result.server_cpu_us_per_message:5.0f} us/msg "
          f"({result.messages} receipts in {result.seconds:.2f} s)")


async def main(total: int, window: int, rounds: int, only: str | None = None,
               adapter_elements: bool = False) -> None:
    server = ProsodyServer()
    server.prepare()
    server.start()
    classifier = Classifier(load_policy())
    commands = CommandTable.from_mapping(classifier.policy.commands)
    try:
        print("Prosody 0.12 on 127.0.0.1 (STARTTLS, XEP-0198, carbons, MAM in memory, offline, nagle off); "
              f"{total} messages per run, window {window}, receipts on")
        bare: list[RunResult] = []
        adapter: list[RunResult] = []
        runs: list[tuple[list[RunResult], Callable[[], Awaitable[RunResult]]]] = [
            (bare, lambda: run_bare(server, total, window, adapter_elements)),
            (adapter, lambda: run_adapter(server, total, window, classifier, commands)),
        ]
        if only is not None:
            server.restart()
            run = runs[0][1] if only == "bare" else runs[1][1]
            _report(await asyncio.wait_for(run(), TIMEOUT * 10))
            return
        for round_no in range(1, rounds + 1):
            print(f"round {round_no}")
            for results, run in runs if round_no % 2 else runs[::-1]:
                # The in-memory archive grows with every message and slows Prosody down: each run gets a
                # freshly restarted server, and the order flips every round.
                server.restart()
                result = await asyncio.wait_for(run(), TIMEOUT)
                results.append(result)
                _report(result)
        bare_rate = statistics.median(r.rate for r in bare)
        adapter_rate = statistics.median(r.rate for r in adapter)
        bare_cpu = statistics.median(r.cpu_us_per_message for r in bare)
        adapter_cpu = statistics.median(r.cpu_us_per_message for r in adapter)
        bare_server = statistics.median(r.server_cpu_us_per_message for r in bare)
        adapter_server = statistics.median(r.server_cpu_us_per_message for r in adapter)
        print(f"median: bare {bare_rate:.0f} msg/s, adapter {adapter_rate:.0f} msg/s, "
              f"ratio {adapter_rate / bare_rate:.0%} (target >= 90%); client CPU per message "
              f"(this process, recipient included) bare {bare_cpu:.0f} us, adapter {adapter_cpu:.0f} us; "
              f"Prosody's CPU per message bare {bare_server:.0f} us, adapter {adapter_server:.0f} us")
    finally:
        classifier.close()
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--callgrind", choices=("adapter", "bare"),
                        help="run this client once, callgrind's instrumentation on during the drive")
    parser.add_argument("--only", choices=("adapter", "bare"),
                        help="run this client once (for a profiler such as py-spy)")
    parser.add_argument("--bare-with-adapter-elements", action="store_true",
                        help="the bare client's messages carry the adapter's <thread> and <origin-id> too")
    args = parser.parse_args()
    CALLGRIND = args.callgrind is not None
    asyncio.run(main(args.messages, args.window, args.rounds, args.callgrind or args.only,
                     args.bare_with_adapter_elements))
