"""Nothing accepted is lost (issue 10): the crash loop against the served process, on the session's real
Prosody and on a real ejabberd. Every round posts 100 sends at once, SIGKILLs the service at a random
moment, restarts it on the same data directory and posts every request again with its key. Then, per
message: the recipient got it at least once, every copy carries the same stanza id and origin-id, the
timeline shows it written before any delivery, and the outbox (the replay's ``outbox_state``) and the
timeline end at the server's ack."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ejabberd import EjabberdServer
from outbox_harness import crash_loop
from prosody import ProsodyServer
from recipients import Recipient
from test_served_process import ServedProcess, serving

pytestmark = pytest.mark.prosody
ROUNDS = int(os.environ.get("XC_CRASH_ROUNDS", "10"))
SENDS = 100
KILL_WITHIN = 3.0
"""Seconds after the burst starts by which the SIGKILL falls at the latest."""
BOUND = 480.0
"""Seconds the whole loop may take on one server (about 60-100 s on an idle 2-core VM)."""


@pytest.fixture
async def served_on(
    xmpp_server: ProsodyServer | EjabberdServer, tmp_path: Path
) -> AsyncIterator[ServedProcess]:
    async with serving(xmpp_server, tmp_path) as process:
        yield process


async def test_crash_loop_loses_nothing_accepted(
    xmpp_server: ProsodyServer | EjabberdServer, served_on: ServedProcess
) -> None:
    phone = await Recipient(xmpp_server, xmpp_server.fresh_user("rcpt"), "phone").online()  # type: ignore
    try:
        figures = await asyncio.wait_for(crash_loop(served_on, phone, ROUNDS, SENDS, KILL_WITHIN), BOUND)
    finally:
        await phone.offline()
    print(figures.line())
    assert figures.rounds == ROUNDS and figures.accepted == ROUNDS * SENDS, figures.line()
    assert figures.lost == [], f"accepted sends never received: {figures.line()}"
    assert figures.origin_mismatches == [], figures.line()
    assert figures.untruthful == [], f"delivered or acked but never recorded written: {figures.line()}"
    assert figures.not_acked == [], f"outbox or timeline not at the server's ack: {figures.line()}"
