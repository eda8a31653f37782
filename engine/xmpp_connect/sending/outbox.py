"""A send's durable life: accepted -> written -> server_acked, advanced only by what the stream reports.

The outbox table (store/outbox.py) is the truth; this module moves entries along on the provider's native
events, writes open entries when a session is ready (after a restart too), writes a lost stanza again as a new
attempt (``at_least_once``) or ends it with explicit evidence (``at_most_once``), holds sends while the stream
is down, and starts the receipt and marker timers when a stanza is written, never before (spec/outbox.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.recorder import Evidence, Recorder
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.evidence import DedupeBasis
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.sending.timers import SendTimers
from xmpp_connect.store.outbox import (
    ACCEPTED,
    EXPIRED,
    NOT_SENT,
    UNKNOWN,
    WRITTEN,
    OutboxEntry,
    Written,
)
from xmpp_connect.store.sql import SqlStore

log = logging.getLogger(__name__)

AT_MOST_ONCE = "at_most_once"
HOLD = "hold"
IQ_OPENING = re.compile(r"\s*<(?:\w+:)?iq\b([^>]*)>")
IQ_ANSWER_TYPE = re.compile(r"""\btype\s*=\s*(['"])(?:result|error)\1""")
IQ_ID = re.compile(r"""\bid\s*=\s*(['"])([^'"]*)\1""")
STOPPED = "provider_stopped"
"""The provider's reason for a queued stanza it did not write because it was stopped: kept for the restart."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """An account's outbox settings (config ``accounts[].delivery``, ``while_disconnected``,
    ``hold_while_disconnected_s``)."""

    delivery: str = "at_least_once"
    while_disconnected: str = HOLD
    hold_while_disconnected_s: float = 300.0


Write = Callable[[OutboxEntry], None]
"""Hands an entry's current attempt to the account's provider (records the outbound stanza first)."""
Emit = Callable[[NativeEvent], None]
"""The service's native-event sink: an event the outbox derives is recorded like one a provider observed."""


class Outbox:
    """The outbox of every account of one service process."""

    def __init__(
        self,
        store: SqlStore,
        classifier: Classifier,
        recorder: Recorder,
        timers: SendTimers | None,
        policies: Mapping[str, DeliveryPolicy],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.recorder = recorder
        self.timers = timers
        self.policies = policies
        self.clock = clock
        self.write: Write | None = None
        self.emit: Emit | None = None
        self.stopping = False
        self.may_send: Callable[[str], bool] = lambda account: True
        """Whether this replica may write the account's stanzas now (it owns the account: spec/replicas.md);
        an entry it may not write stays in the outbox for the owner."""
        self._handing: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, tuple[str, Mapping[str, Any] | None]] = {}
        """Stanza ids handed to a provider by this process and not settled (with their account and request,
        whose options the write's timers take): never handed over twice."""
        self._publishes: set[str] = set()
        """PubSub publishes written by this process and not answered: their iq result is their ack."""

    def policy(self, account: str) -> DeliveryPolicy:
        return self.policies.get(account, DeliveryPolicy())

    def holds(self, account: str) -> bool:
        """Whether a send on this account is accepted and held while the stream is down (else refused).
        Metadata-only mode keeps no body to write later, so it refuses."""
        return self.policy(account).while_disconnected == HOLD and not self.store.options.metadata_only

    # ----------------------------------------------------------------- acceptance

    def accept(
        self, tenant_id: str, account: str, stanza_id: str, message_id: str, attempt_id: str,
        request: Mapping[str, Any], body: str, accepted_at: datetime,
    ) -> OutboxEntry:
        """Record an accepted send (in the caller's transaction, with its records); an entry already there
        (a replay after a crash) is kept as it is."""
        return self.store.outbox_accept(
            OutboxEntry(tenant_id, stanza_id, account, message_id, attempt_id, ACCEPTED, request, body,
                        accepted_at)
        )

    def should_write(self, entry: OutboxEntry) -> bool:
        """An accepted entry nobody in this process handed to a provider yet."""
        return entry.state == ACCEPTED and entry.stanza_id not in self._in_flight

    def handed_over(self, stanza_id: str, account: str, request: Mapping[str, Any] | None = None) -> None:
        self._in_flight[stanza_id] = (account, request)

    def settled(self, stanza_id: str) -> None:
        """A stanza reserved as handed over was not (its records did not become durable): no longer in
        flight here."""
        self._in_flight.pop(stanza_id, None)

    def handing(self, entry: OutboxEntry) -> None:
        """An ``at_most_once`` send is about to be handed over by the caller, after its transaction is
        durable: record that, so whoever finds it still ``accepted`` later does not write it again."""
        if self.policy(entry.account_ref).delivery == AT_MOST_ONCE:
            self.store.outbox_handing(entry.tenant_id, entry.stanza_id, self.clock())

    def forget(self, account: str) -> None:
        """The account's session ended here for good (its lease went to another replica): what it had in
        flight is the next owner's to recover."""
        self._in_flight = {s: f for s, f in self._in_flight.items() if f[0] != account}

    def wake(self, tenant_id: str, stanza_id: str) -> None:
        """Another replica accepted this send for an account owned here: write it unless someone here is
        writing it already (or it waits for the stream)."""
        if stanza_id in self._in_flight:
            return
        entry = self.store.outbox_entry(tenant_id, stanza_id)
        if entry is not None and self.should_write(entry) and not entry.held:
            self._write(entry)

    def sweep(self, account: str) -> None:
        """Write every accepted entry of the account that nobody here is writing, in acceptance order (after
        notifications may have been missed)."""
        for entry in self.store.outbox_open(account):
            if self.should_write(entry) and not entry.held:
                self._write(entry)

    def in_flight(self, stanza_id: str) -> bool:
        return stanza_id in self._in_flight

    def hold(self, entry: OutboxEntry) -> None:
        """The stream is down: keep the entry for the next session, say so (``undef.channel_degraded``),
        and bound the wait by the request's expiry or the account's hold time, whichever comes first."""
        self.store.outbox_hold(entry.tenant_id, entry.stanza_id, True)
        self._record("held_while_disconnected", entry, entry.stanza_id)
        if self.timers is not None:
            self.timers.schedule_expiry(entry.tenant_id, entry.message_id, self.hold_bound(entry))

    def hold_bound(self, entry: OutboxEntry) -> datetime:
        hold = self.policy(entry.account_ref).hold_while_disconnected_s
        bound = entry.accepted_at + timedelta(seconds=hold)
        expires = entry.request.get("expires_at")
        return min(bound, datetime.fromisoformat(expires)) if isinstance(expires, str) else bound

    def replayed(self, tenant_id: str, stanza_id: str, stream_up: bool) -> OutboxEntry | None:
        """A replayed request: an entry still ``accepted`` that no one here is writing is written now (when
        the stream is up; a held one waits for the next session). Returns the entry as it stands."""
        entry = self.store.outbox_entry(tenant_id, stanza_id)
        if entry is not None and self.should_write(entry) and (stream_up or not entry.held):
            self._write(entry)
        return entry

    # ----------------------------------------------------------------- the stream's reports

    def observe(self, tenant_id: str, event: NativeEvent) -> None:
        """Advance the outbox on one native event (inside the sink's transaction)."""
        kind, stanza_id = event.kind, event.stanza_id
        if kind == "stream_connected":
            self.drain(event.account)
        elif kind == "stanza_received":
            self._publish_answered(tenant_id, event)
        elif stanza_id is None:
            return
        elif kind == "message_sent":
            self._written(tenant_id, stanza_id, event)
        elif kind == "sm_ack" and stanza_id not in self._publishes:
            self._in_flight.pop(stanza_id, None)
            self.store.outbox_acked(tenant_id, stanza_id, event.observed_at)
        elif kind == "acceptance_unknown" and not self.stopping:
            self._lost(tenant_id, stanza_id)
        elif kind == "message_not_sent":
            self._in_flight.pop(stanza_id, None)
            self._publishes.discard(stanza_id)
            reason = str(event.detail.get("reason") or "not_sent")
            if reason != STOPPED:
                self.store.outbox_end(tenant_id, stanza_id, NOT_SENT, reason)

    def _publish_answered(self, tenant_id: str, event: NativeEvent) -> None:
        """A publish's server acceptance is its iq result, not a XEP-0198 ack. An iq error is the server's
        answer too: the publish is settled (nothing to write again) and the refusal is its evidence."""
        answered = _iq_answer_id(event.raw) if self._publishes else None
        if answered is None or answered not in self._publishes:
            return
        self._publishes.discard(answered)
        self._in_flight.pop(answered, None)
        self.store.outbox_acked(tenant_id, answered, event.observed_at)

    def keeps_for_restart(self, event: NativeEvent) -> bool:
        """A stanza the provider did not write because it is stopping: it stays accepted for the restart,
        so no "not sent" evidence is recorded for it."""
        return event.kind == "message_not_sent" and event.detail.get("reason") == STOPPED

    def _written(self, tenant_id: str, stanza_id: str, event: NativeEvent) -> None:
        written = self.store.outbox_written(tenant_id, stanza_id, event.observed_at)
        if written is None:
            return
        flight = self._in_flight.get(stanza_id)
        request = flight[1] if flight is not None else None
        if event.detail.get("stream_management") is False:
            # No ack will ever come on this stream: written is the last state the transport can report.
            self._in_flight.pop(stanza_id, None)
            self.store.outbox_end(tenant_id, stanza_id, WRITTEN, "no_stream_management")
        outbound = event.detail.get("outbound")
        if not isinstance(outbound, OutboundRecord):
            found = self.store.find_outbound(tenant_id, stanza_id=stanza_id)
            outbound = found[0] if found else None
        if outbound is not None and outbound.endpoint_type == "pubsub_node":
            self._publishes.add(stanza_id)
        if outbound is not None and self.timers is not None:
            request = request if request is not None else json.loads(written.request_json)
            self._start_timers(tenant_id, written, request, event.observed_at, outbound)

    def _start_timers(
        self, tenant_id: str, written: Written, request: Mapping[str, Any], written_at: datetime,
        outbound: OutboundRecord,
    ) -> None:
        """Receipt and marker timeouts run from the write (the request's expiry too, when it has one)."""
        assert self.timers is not None
        options = request.get("options") or {}
        message_id, attempt_id = written.message_id, written.attempt_id
        receipt, markable = outbound.receipt_requested, outbound.markable
        if receipt:
            timeout = _seconds(options.get("receipt_timeout_s"))
            self.timers.schedule_receipt_timeout(tenant_id, message_id, written_at, timeout, attempt_id)
        if markable and options.get("marker_timeout_s") is not None:
            timeout = _seconds(options["marker_timeout_s"])
            self.timers.schedule_marker_timeout(tenant_id, message_id, written_at, timeout, attempt_id)
        expires = request.get("expires_at")
        if isinstance(expires, str):
            self.timers.schedule_expiry(tenant_id, message_id, datetime.fromisoformat(expires))

    def _lost(self, tenant_id: str, stanza_id: str) -> None:
        """The session ended before the server acked this stanza: write it again as a new attempt of the
        same message with the same stanza id and origin-id, or end it (at most once / no body kept)."""
        self._in_flight.pop(stanza_id, None)
        self._publishes.discard(stanza_id)
        entry = self.store.outbox_entry(tenant_id, stanza_id)
        if entry is None or entry.state not in (ACCEPTED, WRITTEN) or entry.ended_reason is not None:
            return
        if self.policy(entry.account_ref).delivery == AT_MOST_ONCE or not entry.resendable:
            self._end_unknown(entry, "at_most_once" if entry.resendable else "body_not_kept")
            return
        attempt_id = self._new_attempt(entry)
        self._write(replace(entry, attempt_id=attempt_id, state=ACCEPTED))

    def _end_unknown(self, entry: OutboxEntry, reason: str) -> None:
        """End a send whose acceptance stays unknown, with its explicit evidence (once per attempt)."""
        if self.store.outbox_end(entry.tenant_id, entry.stanza_id, UNKNOWN, reason):
            dedupe_on = f"{entry.stanza_id}|{entry.attempt_id}"
            self._record("acceptance_unknown_final", entry, dedupe_on)

    def _new_attempt(self, entry: OutboxEntry) -> str:
        """A copy of the entry's current attempt under a new id (§9.2: the same message, another attempt)."""
        base = entry.attempt_id.split(".", 1)[0]
        attempt_id = f"{base}.{entry.writes + 1}"
        current = self.store.get_attempt(entry.tenant_id, entry.attempt_id)
        now = self.clock()
        if current is not None and self.store.get_attempt(entry.tenant_id, attempt_id) is None:
            self.store.create_attempt(
                replace(current, attempt_id=attempt_id, state="accepted_by_adapter", created_at=now,
                        updated_at=now)
            )
        self.store.outbox_new_attempt(entry.tenant_id, entry.stanza_id, attempt_id)
        return attempt_id

    def drain(self, account: str) -> None:
        """A session is ready: write the account's open entries in acceptance order. An entry written by an
        earlier process and never acked (a restart) is first reported acceptance-unknown, which writes it
        again or ends it per the account's policy; a held entry past its bound is left to its expiry."""
        now = self.clock()
        for entry in self.store.outbox_open(account):
            if entry.stanza_id in self._in_flight:
                continue
            if entry.state == WRITTEN:
                self._report_lost(entry)
            elif not (entry.held and self.hold_bound(entry) <= now):
                self._write(entry)

    def _report_lost(self, entry: OutboxEntry) -> None:
        found = self.store.find_outbound(entry.tenant_id, stanza_id=entry.stanza_id)
        outbound = replace(found[0], attempt_id=entry.attempt_id) if found else None
        event = NativeEvent(kind="acceptance_unknown", account=entry.account_ref, observed_at=self.clock(),
                            stanza_id=entry.stanza_id, detail={"outbound": outbound, "source": "outbox"})
        if self.emit is not None:
            self.emit(event)
        else:
            self._lost(entry.tenant_id, entry.stanza_id)

    def expired(self, tenant_id: str, message_id: str) -> bool:
        """The expiry timer of a message fired: a held entry that was never written ends ``expired``."""
        entry = self.store.outbox_entry_for_message(tenant_id, message_id)
        if entry is None or entry.state != ACCEPTED or entry.stanza_id in self._in_flight:
            return False
        return self.store.outbox_end(tenant_id, entry.stanza_id, EXPIRED, "hold_bound_passed")

    def _write(self, entry: OutboxEntry) -> None:
        if self.write is None or not self.may_send(entry.account_ref):
            return
        if not entry.resendable:
            # Metadata-only mode kept no body: a send not known to be acked cannot be written again.
            self._end_unknown(entry, "body_not_kept")
            return
        at_most_once = self.policy(entry.account_ref).delivery == AT_MOST_ONCE
        if at_most_once and entry.handed_at is not None:
            # Handed to a transport by an earlier process or owner, its write never recorded: it may have
            # reached the server, so it is not written again.
            self._end_unknown(entry, "at_most_once")
            return
        self._in_flight[entry.stanza_id] = (entry.account_ref, entry.request)
        if entry.held:
            # Written now: the hold bound no longer applies (the request's own expiry is set at the write).
            self.store.outbox_hold(entry.tenant_id, entry.stanza_id, False)
            self.store.cancel_timer(entry.tenant_id, entry.message_id, "expiry")
        if at_most_once:
            self.store.outbox_handing(entry.tenant_id, entry.stanza_id, self.clock())
            task = asyncio.get_running_loop().create_task(self._write_when_durable(entry))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)
            return
        self.write(entry)

    async def _write_when_durable(self, entry: OutboxEntry) -> None:
        """Hand an ``at_most_once`` send over once its hand-over time is committed."""
        try:
            await self.store.durable()
        except Exception as exc:
            log.warning("hand-over not recorded (%s); the send stays accepted", type(exc).__name__)
            self._in_flight.pop(entry.stanza_id, None)
            return
        if self.write is None or not self.may_send(entry.account_ref):
            self._in_flight.pop(entry.stanza_id, None)
            return
        with self.store.transaction():
            self.write(entry)

    # ----------------------------------------------------------------- evidence

    def _record(self, kind: str, entry: OutboxEntry, dedupe_on: str) -> None:
        """The outbox's own evidence (held; ended without a resend), once per entry and attempt, through the
        one recorder."""
        attempt = self.store.get_attempt(entry.tenant_id, entry.attempt_id)
        self.recorder.record(Evidence(
            tenant_id=entry.tenant_id,
            classification=self.classifier.classify({"kind": kind}),
            observed_at=self.clock(),
            message_id=entry.message_id,
            attempt_id=entry.attempt_id,
            endpoint_jid=attempt.to_jid if attempt else None,
            endpoint_type=attempt.to_endpoint_type if attempt else None,
            dedupe=DedupeBasis(kind=kind, sender_full_jid="", stanza_id=dedupe_on),
        ))


def _iq_answer_id(raw: str | None) -> str | None:
    """The id of an ``<iq type="result|error">`` (a publish's answer), from its opening tag; else None."""
    opening = IQ_OPENING.match(raw or "")
    if opening is None or IQ_ANSWER_TYPE.search(opening.group(1)) is None:
        return None
    found = IQ_ID.search(opening.group(1))
    return None if found is None else found.group(2)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
