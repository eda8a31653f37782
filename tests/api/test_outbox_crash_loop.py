"""Nothing accepted is lost (issue 10): the crash loop against the served process and the session's real
Prosody. Every round posts 100 sends at once, SIGKILLs the service at a random moment, restarts it on the
same data directory and posts every request again with its key. Then, per message: the recipient got it at
least once, every copy carries the same stanza id and origin-id, the timeline shows it written before any
delivery, and the outbox (the replay's ``outbox_state``) and the timeline end at the server's ack."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from outbox_harness import crash_loop
from recipients import Recipient
from test_served_process import ServedProcess, recipients, served  # noqa: F401 (fixtures)

pytestmark = pytest.mark.prosody
ROUNDS = int(os.environ.get("XC_CRASH_ROUNDS", "10"))
SENDS = 100
KILL_WITHIN = 3.0
"""Seconds after the burst starts within which the SIGKILL falls (a burst of 100 takes about that long)."""
BOUND = 300.0


async def test_crash_loop_loses_nothing_accepted(
    served: ServedProcess, recipients: Callable[[], Recipient]  # noqa: F811
) -> None:
    phone = await recipients().online()
    figures = await asyncio.wait_for(crash_loop(served, phone, ROUNDS, SENDS, KILL_WITHIN), BOUND)
    print(figures.line())
    assert figures.rounds == ROUNDS and figures.accepted == ROUNDS * SENDS, figures.line()
    assert figures.lost == [], f"accepted sends never received: {figures.line()}"
    assert figures.origin_mismatches == [], figures.line()
    assert figures.untruthful == [], f"delivered or acked but never recorded written: {figures.line()}"
    assert figures.not_acked == [], f"outbox or timeline not at the server's ack: {figures.line()}"
