"""Account connection states from native events: a lost session is `connecting` again (not a failure), a
failure repeated by each retry is logged once, the sessions closed on stop are not failures."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from xmpp_connect.app.account_status import AccountStatuses
from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.model.native import NativeEvent

ACCOUNT = AccountConfig(ref="ops", provider="slixmpp", jid="alerts@example.net/adapter")


def event(kind: str, **detail: Any) -> NativeEvent:
    return NativeEvent(kind=kind, account="ops", observed_at=datetime.now(UTC), detail=detail)


def test_states_follow_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    statuses = AccountStatuses((ACCOUNT,))
    assert (statuses.get("ops").status, statuses.get("ops").reason) == ("connecting", None)
    with caplog.at_level(logging.INFO, logger="xmpp_connect.accounts"):
        for _ in range(3):
            statuses.observe(event("stream_error", condition="connection-failed", reason="TimeoutError",
                                   will_retry=True))
        assert (statuses.get("ops").status, statuses.get("ops").reason) == ("failing", "timeout")
        statuses.observe(event("stream_connected"))
        assert statuses.get("ops").status == "connected"
        statuses.observe(event("stream_disconnected", reason="ConnectionResetError", will_retry=True))
        state = statuses.get("ops")
        assert (state.status, state.reason, state.retrying) == ("connecting", "disconnected", True)
        statuses.observe(event("stream_connected"))
        statuses.stopping()
        statuses.observe(event("stream_disconnected", reason=None, will_retry=False))
    assert statuses.get("ops").status == "connected"
    lines = [r.getMessage() for r in caplog.records]
    assert sum("failing: timeout" in line for line in lines) == 1
    assert sum("connected to 127.0.0.1:5222" in line for line in lines) == 2
