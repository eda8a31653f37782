"""``GET /metrics`` for the service: this process's counters and histograms, those of the API worker
processes (written to ``PROMETHEUS_MULTIPROC_DIR`` in the data directory), and gauges read at scrape time."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from xmpp_connect.model.metrics import EVIDENCE_EVENTS, PREFIX, SENDS
from xmpp_connect.store.figures import FeedEntry
from xmpp_connect.store.sql import SqlStore

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR = "metrics"
IDLE_POLL_S = 0.5
FEED_PAGE = 1000


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def prepare_worker_metrics(data_dir: Path) -> Path:
    """An empty directory for the API workers' metric files, named in the environment they inherit (they
    are spawned, so they import prometheus_client afresh and pick it up)."""
    directory = data_dir / METRICS_DIR
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def count_send(result: dict[str, Any], acceptance: bool = True) -> None:
    """One answered action: accepted (or scheduled) or refused with its reason; a replay of an idempotency
    key is not counted again. ``acceptance`` False: the send was counted as accepted by the API worker that
    queued it, only a refusal when the core carries it out counts here."""
    if result.get("idempotent_replay") or result.get("action_type") == "notification.cancel":
        return
    if result.get("accepted"):
        if acceptance:
            SENDS.labels("accepted", "").inc()
    else:
        SENDS.labels("refused", str(result.get("reason") or "unknown")).inc()


class EvidenceCounter:
    """Counts every event the store records from this process's start on, by reading the feed's tail (so
    events recorded by any path are counted once, in feed order). A read that did not fill its page waits
    ``IDLE_POLL_S`` before the next: polling again at once while sends arrive read a few entries per query
    and per thread hop, ~3% of the core's CPU per send (bench/README.md, twelfth round)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def run(self) -> None:
        position = self.store.feed_end()
        while True:
            entries = await asyncio.to_thread(self.store.feed_tail, position, FEED_PAGE)
            if entries:
                position = count_entries(entries)
            if len(entries) < FEED_PAGE:
                await asyncio.sleep(IDLE_POLL_S)


def count_entries(entries: Sequence[FeedEntry]) -> int:
    """Adds a page of the feed to the evidence counter, one increment per label set; its last position."""
    for labels, count in Counter((e.event_type, e.category, e.subclass) for e in entries).items():
        EVIDENCE_EVENTS.labels(*labels).inc(count)
    return entries[-1].seq


class Merged:
    """Several collectors as one: same-named families merged, same-labelled samples summed (a counter the
    core and a worker both keep is one series)."""

    def __init__(self, sources: Iterable[Collector]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in self.sources:
            for family in source.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type, family.unit)
                )
                series = values.setdefault(merged.name, {})
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    known = series.get(key)
                    if known is None:
                        series[key] = sample.value
                    elif sample.name.endswith("_created"):
                        series[key] = min(known, sample.value)
                    else:
                        series[key] = known + sample.value
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family


class StateGauges:
    """Gauges of the service's current state, read when scraped."""

    def __init__(
        self,
        store: SqlStore,
        streams: Callable[[], dict[str, str]],
        intake_backlog: Callable[[], int | None],
        webhook_backlog: Callable[[], list[tuple[str, str, int]]],
    ) -> None:
        self.store = store
        self.streams = streams
        self.intake_backlog = intake_backlog
        self.webhook_backlog = webhook_backlog

    def collect(self) -> Iterator[Metric]:
        stream = GaugeMetricFamily(
            PREFIX + "stream_state", "1 for each account's current XMPP stream state.",
            labels=["account", "state"],
        )
        for account, state in sorted(self.streams().items()):
            stream.add_metric([account, state], 1)
        yield stream
        held, oldest = self.store.held_requests_figures()
        yield GaugeMetricFamily(PREFIX + "held_requests", "Scheduled sends held for their time.", value=held)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            PREFIX + "held_requests_oldest_age_seconds", "Age of the oldest held scheduled send.", value=age
        )
        backlog = self.intake_backlog()
        if backlog is not None:
            yield GaugeMetricFamily(
                PREFIX + "intake_backlog", "Sends API workers accepted that the core has not carried out.",
                value=backlog,
            )
        yield GaugeMetricFamily(PREFIX + "timers_pending", "Receipt, marker and schedule timers not fired.",
                                value=self.store.timers_pending())
        hooks = GaugeMetricFamily(
            PREFIX + "webhook_backlog", "Feed positions a subscription has not delivered yet.",
            labels=["tenant", "subscription"],
        )
        for tenant, subscription, behind in self.webhook_backlog():
            hooks.add_metric([tenant, subscription], behind)
        yield hooks


def renderer(state: StateGauges) -> Callable[[], bytes]:
    """The exposition text: this process's registry, the workers' files when there are any, the gauges."""

    def render() -> bytes:
        sources: list[Collector] = [REGISTRY]
        directory = os.environ.get(MULTIPROC_ENV)
        if directory and Path(directory).is_dir():
            sources.append(MultiProcessCollector(CollectorRegistry(), directory))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Merged(sources))
        registry.register(state)
        return generate_latest(registry)

    return render
