"""The timers a send's write starts take the request's options: from the request handed over in this process,
or, for a send not in flight here, from the stored entry (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.sending.outbox import Outbox
from xmpp_connect.store.outbox import ACCEPTED, WRITTEN, OutboxEntry

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REQUEST = {
    "action_type": "notification.send",
    "content": {"body": "secret body"},
    "options": {"receipt_timeout_s": 7, "marker_timeout_s": 9},
    "expires_at": "2026-01-01T13:00:00+00:00",
}


class Timers:
    """Records what would be scheduled."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[Any, ...]] = []

    def schedule_receipt_timeout(self, tenant_id: str, message_id: str, sent_at: datetime,
                                 timeout: timedelta | None = None, attempt_id: str | None = None) -> None:
        self.scheduled.append(("receipt", message_id, sent_at, timeout, attempt_id))

    def schedule_marker_timeout(self, tenant_id: str, message_id: str, sent_at: datetime,
                                timeout: timedelta | None = None, attempt_id: str | None = None) -> None:
        self.scheduled.append(("marker", message_id, sent_at, timeout, attempt_id))

    def schedule_expiry(self, tenant_id: str, message_id: str, expires_at: datetime) -> None:
        self.scheduled.append(("expiry", message_id, expires_at))


def _written(outbox: Outbox, tenant: str, n: int) -> None:
    outbound = OutboundRecord(f"stanza-{n}", "bob@example.net", "bare_jid", receipt_requested=True,
                              markable=True)
    outbox.observe(tenant, NativeEvent("message_sent", "notify", NOW, stanza_id=f"stanza-{n}",
                                       detail={"outbound": outbound}))


def test_the_write_starts_the_timers_of_the_request_in_flight_here_or_stored(store, tenant):
    timers = Timers()
    outbox = Outbox(store, None, None, timers, {})  # type: ignore[arg-type]
    expected = [
        ("receipt", "xmppmsg_{n}", NOW, timedelta(seconds=7), "xmppatt_{n}"),
        ("marker", "xmppmsg_{n}", NOW, timedelta(seconds=9), "xmppatt_{n}"),
        ("expiry", "xmppmsg_{n}", datetime(2026, 1, 1, 13, 0, tzinfo=UTC)),
    ]
    for n in (1, 2):
        store.outbox_accept(OutboxEntry(tenant, f"stanza-{n}", "notify", f"xmppmsg_{n}", f"xmppatt_{n}",
                                        ACCEPTED, REQUEST, "secret body", NOW))
    outbox.handed_over("stanza-1", "notify", REQUEST)
    _written(outbox, tenant, 1)
    _written(outbox, tenant, 2)  # not in flight here: the stored request
    assert timers.scheduled == [
        tuple(v.format(n=n) if isinstance(v, str) else v for v in row) for n in (1, 2) for row in expected
    ]
    for n in (1, 2):
        entry = store.outbox_entry(tenant, f"stanza-{n}")
        assert entry.state == WRITTEN and entry.writes == 1 and entry.written_at == NOW
