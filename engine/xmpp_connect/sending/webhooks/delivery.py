"""One subscription's delivery loop: the tenant's feed after the stored position, a page at a time, each event
signed per Standard Webhooks and retried until the receiver takes it or the schedule runs out.

Within a page, the events of one message go out one after another in feed order (so a receiver sees each
message's events in order), different messages' events concurrently (up to ``concurrency`` requests). The
position moves past a page once every event in it is delivered or dead, so a restart delivers the page
again (at least once; ``webhook-id`` tells repeats). The loop runs as its own task with its own HTTP client:
a slow or dead receiver holds up only its own subscription, never sending, evidence recording or another
subscription."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook

from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.model.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LAG
from xmpp_connect.sending.webhooks.retry import RetryPolicy
from xmpp_connect.store.cursor import encode_cursor
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.webhooks import DeadDelivery, WebhookSubscription

log = logging.getLogger(__name__)
PAGE = 200
RETRIED_4XX = frozenset({408, 429})
"""Request Timeout and Too Many Requests say "later", like a 5xx; every other 4xx is final."""
USER_AGENT = "xmpp-connect-webhooks"
BUSY_ITERATION_S = 0.001
"""A loop iteration slower than this: requests, stanzas or evidence are being handled, deliveries wait."""
BACK_OFF_S = 0.02
LONGEST_WAIT_S = 1.0
"""However busy the loop, a delivery waits no longer than this: the push falls behind, it does not stop."""


async def yield_to_foreground() -> None:
    """Webhook delivery runs at background priority on the service's event loop: while an iteration of the
    loop takes longer than BUSY_ITERATION_S (sends, receipts, evidence being processed), wait, up to
    LONGEST_WAIT_S. Sending keeps its throughput during a burst; the push catches up after it."""
    waited = 0.0
    while waited < LONGEST_WAIT_S:
        started = time.perf_counter()
        await asyncio.sleep(0)
        if time.perf_counter() - started < BUSY_ITERATION_S:
            return
        await asyncio.sleep(BACK_OFF_S)
        waited += BACK_OFF_S


@dataclass(frozen=True)
class Attempt:
    """One POST's outcome: the status (None: timeout or connection error) and the receiver's Retry-After."""

    status: int | None
    retry_after: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in RETRIED_4XX


def payload(event: EvidenceEvent) -> bytes:
    """The webhook body: the event as the feed serves it (metadata only: no message content) and the feed
    cursor just after it (as ``GET /adapter/events`` pages): a redelivery from it starts with the next one."""
    assert event.seq is not None
    body = {
        "type": event.event_type,
        "timestamp": (event.recorded_at or event.occurred_at).isoformat(),
        "cursor": encode_cursor(event.seq),
        "data": event.to_dict(),
    }
    return json.dumps(body, separators=(",", ":")).encode()


class SubscriptionDelivery:
    """Delivers one subscription's events; ``secret`` is read at each attempt (a rotation applies at once)."""

    def __init__(
        self,
        store: SqlStore,
        subscription: WebhookSubscription,
        secret: Callable[[], str],
        retry: RetryPolicy,
        poll_interval: float = 0.2,
        concurrency: int = 16,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.fence = fence
        """Inside the position's advance: raises (LeaseLost) unless this replica still holds the
        subscription's lease (spec/replicas.md), so a stale deliverer never moves the position."""
        self.subscription = subscription
        self.secret = secret
        self.retry = retry
        self.poll_interval = poll_interval
        self.concurrency = concurrency

    async def run(self) -> None:
        """Deliver until cancelled, or until the subscription is gone from the store."""
        sub = self.subscription
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.retry.timeout),
        )
        async with session as client:
            while True:
                stored = await asyncio.to_thread(self.store.get_webhook, sub.tenant_id, sub.subscription_id)
                if stored is None:
                    return
                page = await asyncio.to_thread(
                    self.store.events_page,
                    sub.tenant_id,
                    cursor=encode_cursor(stored.position),
                    limit=PAGE,
                    event_types=list(sub.event_types) or None,
                )
                if not page.events:
                    await asyncio.sleep(self.poll_interval)
                    continue
                await self._deliver_page(client, page.events)
                with self.store.transaction():
                    self.fence()
                    self.store.advance_webhook(
                        sub.tenant_id, sub.subscription_id, stored.position, page.events[-1].seq or 0
                    )
                await self.store.durable()

    async def _deliver_page(self, client: aiohttp.ClientSession, events: Sequence[EvidenceEvent]) -> None:
        """Each message's events in order; messages side by side, at most ``concurrency`` at once."""
        chains: dict[str, list[EvidenceEvent]] = {}
        for event in events:
            chains.setdefault(event.message_id or event.event_id, []).append(event)
        slots = asyncio.Semaphore(self.concurrency)

        async def chain(ordered: list[EvidenceEvent]) -> None:
            async with slots:
                for event in ordered:
                    await yield_to_foreground()
                    await self._deliver(client, event)

        await asyncio.gather(*(chain(ordered) for ordered in chains.values()))

    async def _deliver(self, client: aiohttp.ClientSession, event: EvidenceEvent) -> None:
        """POST until delivered, refused (a final 4xx or 3xx: redirects are not followed) or given up."""
        sub = self.subscription
        started = time.monotonic()
        failures = 0
        while True:
            attempt = await self._post(client, event)
            if attempt.delivered:
                WEBHOOK_DELIVERIES.labels(sub.tenant_id, "delivered").inc()
                if event.recorded_at is not None:
                    lag = (datetime.now(UTC) - event.recorded_at).total_seconds()
                    WEBHOOK_LAG.labels(sub.tenant_id).observe(max(0.0, lag))
                return
            failures += 1
            delay = self.retry.delay(failures, attempt.retry_after) if attempt.retryable else None
            if delay is None or time.monotonic() + delay - started > self.retry.give_up_after:
                self._dead(event, failures, attempt)
                return
            WEBHOOK_DELIVERIES.labels(sub.tenant_id, "retried").inc()
            log.info(
                "webhook retry subscription=%s event_id=%s message_id=%s status=%s in=%.2fs",
                sub.subscription_id, event.event_id, event.message_id, attempt.status, delay,
            )
            await asyncio.sleep(delay)

    async def _post(self, client: aiohttp.ClientSession, event: EvidenceEvent) -> Attempt:
        body = payload(event)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(self.secret()).sign(event.event_id, now, body),
        }
        try:
            async with client.post(
                self.subscription.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return Attempt(response.status, response.headers.get("retry-after"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook attempt failed subscription=%s event_id=%s (%s)",
                     self.subscription.subscription_id, event.event_id, type(exc).__name__)
            return Attempt(None)

    def _dead(self, event: EvidenceEvent, attempts: int, last: Attempt) -> None:
        sub = self.subscription
        reason = "gave_up" if last.retryable else "refused"
        assert event.seq is not None
        self.store.add_dead_delivery(
            sub.tenant_id,
            DeadDelivery(sub.subscription_id, event.event_id, event.seq, attempts, reason, last.status,
                         datetime.now(UTC)),
        )
        WEBHOOK_DELIVERIES.labels(sub.tenant_id, "dead").inc()
        log.warning(
            "webhook delivery dead subscription=%s event_id=%s message_id=%s reason=%s status=%s attempts=%d",
            sub.subscription_id, event.event_id, event.message_id, reason, last.status, attempts,
        )
