"""Benchmark: the pipeline and the recorder per send, without XMPP: the three native events a send through
Prosody yields (``message_sent``, ``sm_ack``, the receipt stanza) replayed into the service's wiring
(EvidencePipeline -> TenantRecorder -> Recorder) on a SQLite store, each in its own ``store.transaction()``
as ``AdapterService.on_native_event`` handles it, with group commit on as in the service (``--batch`` sends
per loop iteration, i.e. per commit).

Per message the harness first stores the message and its attempt and builds the three events (the receipt
with its parsed view, as the provider hands it on); ``--setup-only`` does only that, so that the events'
own cost is the difference; ``--without-recorder`` leaves the recorder out (the pipeline's sink drops
each observation), so that the recorder's share is the difference. Instruction counts are the
load-independent figure: run under callgrind with two message counts and take the difference
(bench/README.md).
``--callgrind`` turns callgrind's instrumentation on just before the messages (start it with
``--instr-atstart=no``: imports and the policy's rule engine then run uninstrumented, several times faster):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.100 \
        .venv/bin/python bench/pipeline.py --callgrind --messages 100   # then 400; (Ir 400 - Ir 100) / 300
    .venv/bin/python bench/pipeline.py --messages 3000 --profile 25   # cProfile, top 25 by own time
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.evidence.recorder import Recorder, TenantRecorder
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.load import load_policy
from xmpp_connect.providers.stanza_builders import OutboundMessage, message_xml
from xmpp_connect.store import SqliteStore
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.records import XmppAttempt, XmppMessage
from xmpp_connect.xmpp.stanzas import parse_stanza

TENANT = "bench"
ACCOUNT = "notify"
SENDER = "alerts@localhost"
RECIPIENT = "bob@localhost"
BODY = "Incident 42: please acknowledge."
START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _events(store: SqliteStore, n: int) -> tuple[NativeEvent, NativeEvent, NativeEvent]:
    """Store message and attempt number ``n``; the three native events its send yields."""
    at = START + timedelta(milliseconds=n)
    message_id, attempt_id, stanza_id = f"msg_{n:08d}", f"att_{n:08d}", f"st-{n:08d}"
    store.create_message(XmppMessage(tenant_id=TENANT, message_id=message_id, created_at=at,
                                     case_id="case-1", participant_id=f"p-{n % 50}",
                                     purpose="notification.send",
                                     tracking_context={"correlation_id": f"corr-{n}"}))
    store.create_attempt(XmppAttempt(tenant_id=TENANT, attempt_id=attempt_id, message_id=message_id,
                                     account_ref=ACCOUNT, from_jid=SENDER, to_jid=RECIPIENT,
                                     to_endpoint_type="bare_jid", created_at=at, updated_at=at,
                                     stanza_id=stanza_id, origin_id=stanza_id))
    record = OutboundRecord(stanza_id=stanza_id, to_jid=RECIPIENT, endpoint_type="bare_jid",
                            message_type="chat", origin_id=stanza_id, message_id=message_id,
                            attempt_id=attempt_id,
                            receipt_requested=True, markable=True, sent_at=at)
    sent = message_xml(OutboundMessage(to_jid=RECIPIENT, body=BODY, markable=True), stanza_id)
    receipt = (f"<message xmlns='jabber:client' from='{RECIPIENT}/phone' to='{SENDER}/adapter' id='r-{n}'>"
               f"<received xmlns='urn:xmpp:receipts' id='{stanza_id}'/></message>")
    return (
        NativeEvent("message_sent", ACCOUNT, at, raw=sent, stanza_id=stanza_id,
                    detail={"outbound": record, "stream_management": True}),
        NativeEvent("sm_ack", ACCOUNT, at + timedelta(milliseconds=2), raw=sent, stanza_id=stanza_id,
                    detail={"outbound": record}),
        NativeEvent("stanza_received", ACCOUNT, at + timedelta(milliseconds=5), raw=receipt,
                    stanza_id=f"r-{n}", view=parse_stanza(receipt)),
    )


async def run(
    messages: int, setup_only: bool, profile: int, batch: int, callgrind: bool, without_recorder: bool
) -> None:
    classifier = Classifier(load_policy())
    commands = CommandTable.from_mapping(classifier.policy.commands)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        store.enable_group_commit(asyncio.get_running_loop())
        recorder = Recorder(store, classifier.policy.precedence)
        sink = TenantRecorder(recorder, store, TENANT)
        pipeline = (
            EvidencePipeline(classifier, commands, StoreOutboundIndex(store, TENANT), lambda _o: None)
            if without_recorder
            else EvidencePipeline(classifier, commands, StoreOutboundIndex(store, TENANT), sink,
                                  dead_letter=sink.dead_letter, late=sink.is_late,
                                  contexts=sink.tracking_context)
        )
        profiler = cProfile.Profile() if profile else None
        if callgrind:
            subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True,
                           capture_output=True)
        handled = 0
        cpu = time.process_time()
        for n in range(messages):
            if n % batch == 0:
                await asyncio.sleep(0)
            events = _events(store, n)
            if setup_only:
                continue
            if profiler is not None:
                profiler.enable()
            for event in events:
                with store.transaction():
                    handled += len(pipeline.handle(event))
            if profiler is not None:
                profiler.disable()
        await asyncio.sleep(0)
        cpu = time.process_time() - cpu
        store.close()
    classifier.close()
    print(f"{messages} messages, {handled} observations, {cpu / messages * 1e6:.0f} us CPU per message"
          f"{' (setup only)' if setup_only else ''}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--setup-only", action="store_true", help="store messages and attempts, no events")
    parser.add_argument("--batch", type=int, default=20, help="sends per group-commit batch")
    parser.add_argument("--without-recorder", action="store_true",
                        help="the pipeline alone (its outbound index on the store), observations dropped")
    parser.add_argument("--callgrind", action="store_true", help="callgrind's instrumentation on here")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the events, top N")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.messages, arguments.setup_only, arguments.profile, arguments.batch,
                    arguments.callgrind, arguments.without_recorder))
