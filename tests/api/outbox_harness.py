"""The crash loop against a served process (tests/api/test_outbox_crash_loop.py, bench/outbox.py): bursts of
concurrent sends over HTTP, SIGKILL at a random moment, restart on the same data directory, every request
posted again with its key; then what the recipient received, counted per message."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from recipients import Recipient
from slixmpp.stanza import Message
from test_served_process import Api, ServedProcess, send

SID_NS = "urn:xmpp:sid:0"
WRITTEN_SCENARIOS = frozenset({"sent_to_server", "sent_to_server_final"})
ACKED_SCENARIOS = frozenset({"server_acknowledged", "server_acknowledged_final"})
RESTART_WAIT = 30.0
"""A restart writes the outbox's open sends as its session starts: on a loaded machine that takes a while."""


@dataclass
class CrashLoopFigures:
    """What one crash loop did and found."""

    rounds: int = 0
    sends: int = 0
    answered_before_kill: int = 0
    accepted: int = 0
    received_once: int = 0
    duplicates: int = 0
    lost: list[str] = field(default_factory=list)
    origin_mismatches: list[str] = field(default_factory=list)
    untruthful: list[str] = field(default_factory=list)
    not_acked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"rounds={self.rounds} sends={self.sends} answered_before_kill={self.answered_before_kill} "
                f"accepted={self.accepted} lost={len(self.lost)} duplicates={self.duplicates} "
                f"origin_mismatches={len(self.origin_mismatches)} untruthful={len(self.untruthful)} "
                f"not_server_acked={len(self.not_acked)} seconds={self.seconds:.1f}")


async def _post(http: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, Any] | None:
    """The answer, or None when the process died before answering."""
    try:
        response = await http.post("/adapter/actions", json=request, timeout=30)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 202 else None


async def crash_loop(
    served: ServedProcess, recipient: Recipient, rounds: int, sends: int, kill_within: float,
    settle: float = 30.0, seed: int | None = None,
) -> CrashLoopFigures:
    """``rounds`` times: ``sends`` concurrent sends to ``recipient``, SIGKILL after a random delay in
    ``[0, kill_within)``, restart, every request again with its key. Then wait (at most ``settle`` s) until
    every accepted message arrived, and read each message's outbox state and timeline over HTTP."""
    rng = random.Random(seed)
    served.start_wait = RESTART_WAIT
    figures = CrashLoopFigures()
    started = time.monotonic()
    requests: dict[str, dict[str, Any]] = {}
    message_ids: dict[str, str] = {}
    for _ in range(rounds):
        batch = [send(uuid.uuid4().hex[:12], recipient.user.jid, f"crash-loop {i}") for i in range(sends)]
        async with served.client() as http:
            posts = [asyncio.ensure_future(_post(http, r)) for r in batch]
            # The kill falls at a random moment of the burst: after a random number of answers (the window
            # where answered sends may not be written yet), or after a random delay if that comes first.
            wanted = rng.randint(1, len(batch))
            await asyncio.wait(
                [asyncio.ensure_future(_answers(posts, wanted)), asyncio.ensure_future(
                    asyncio.sleep(rng.uniform(0, kill_within)))],
                return_when=asyncio.FIRST_COMPLETED,
            )
            served.kill()
            answers = await asyncio.gather(*posts)
        figures.answered_before_kill += sum(a is not None and a.get("accepted") is True for a in answers)
        await served.start()
        async with served.client() as http:
            replays = await asyncio.gather(*(_post(http, r) for r in batch))
        for request, replay in zip(batch, replays, strict=True):
            assert replay is not None and replay["accepted"] is True, f"resend refused: {replay}"
            requests[request["idempotency_key"]] = request
            message_ids[request["idempotency_key"]] = replay["xmpp_message_id"]
        figures.rounds += 1
        figures.sends += len(batch)
    figures.accepted = len(message_ids)
    received = await _receive_all(recipient, figures.accepted, settle)
    async with served.client() as http:
        api = Api(http)
        for key, message_id in message_ids.items():
            await _check_message(api, requests[key], message_id, received, figures)
        deadline = time.monotonic() + settle
        while figures.not_acked and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            by_message = {message_ids[key]: request for key, request in requests.items()}
            figures.not_acked = [m for m in figures.not_acked if not await _acked(api, by_message[m], m)]
    figures.seconds = time.monotonic() - started
    return figures


async def _answers(posts: list[asyncio.Future[dict[str, Any] | None]], wanted: int) -> None:
    """Return once ``wanted`` of the posts were answered."""
    for done, _ in enumerate(asyncio.as_completed(posts), start=1):
        await _
        if done >= wanted:
            return


async def _receive_all(recipient: Recipient, expected: int, settle: float) -> dict[str, list[Message]]:
    """Every message the recipient got, by stanza id, waiting until ``expected`` distinct ids arrived
    (bounded by ``settle``), then draining what is already queued."""
    by_id: dict[str, list[Message]] = {}
    deadline = time.monotonic() + settle
    while len(by_id) < expected and time.monotonic() < deadline:
        try:
            message = await recipient.next_message(max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        by_id.setdefault(message["id"], []).append(message)
    while not recipient.messages.empty():
        message = recipient.messages.get_nowait()
        by_id.setdefault(message["id"], []).append(message)
    return by_id


async def _check_message(
    api: Api, request: dict[str, Any], message_id: str, received: dict[str, list[Message]],
    figures: CrashLoopFigures,
) -> None:
    message = await api.get(f"/xmpp/messages/{message_id}")
    stanza_id = message["attempts"][0]["stanza_id"]
    copies = received.get(stanza_id, [])
    if not copies:
        figures.lost.append(message_id)
    else:
        figures.received_once += 1
        figures.duplicates += len(copies) - 1
    origins = Counter(_origin_id(m) for m in copies)
    if set(origins) - {stanza_id}:
        figures.origin_mismatches.append(message_id)
    scenarios = {e["scenario"] for e in await api.entries(message_id)}
    written = bool(scenarios & WRITTEN_SCENARIOS)
    acked = bool(scenarios & ACKED_SCENARIOS)
    if (copies and not written) or (acked and not written):
        figures.untruthful.append(message_id)
    if not acked or (await api.act(request))[1].get("outbox_state") != "server_acked":
        figures.not_acked.append(message_id)


async def _acked(api: Api, request: dict[str, Any], message_id: str) -> bool:
    """The message's send is server_acked in the outbox and its timeline shows the ack."""
    scenarios = {e["scenario"] for e in await api.entries(message_id)}
    state = (await api.act(request))[1].get("outbox_state")
    return bool(scenarios & ACKED_SCENARIOS) and state == "server_acked"


def _origin_id(message: Message) -> str | None:
    element = message.xml.find(f"{{{SID_NS}}}origin-id")
    return None if element is None else element.get("id")
