"""GET /metrics: Prometheus text parsed with prometheus_client's parser after a send and its receipt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import TOKENS, auth, send_request, wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_api_workers import ServedWithWorkers
from test_webhooks import DELIVERED, make_config, running
from webhook_receiver import free_port


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


EVIDENCE = "xmpp_connect_evidence_events_total"
RECEIPT = {"event_type": "notification.endpoint.accepted", "category": "success", "subclass": DELIVERED}


def test_a_send_and_its_receipt_show_in_the_metrics(tmp_path: Path) -> None:
    with running(make_config(tmp_path)) as client:
        before = scrape(client.get("/metrics").text)
        response = client.post("/adapter/actions", json=send_request("m1"), headers=auth())
        assert response.status_code == 202
        other_tenants = send_request("m2", account="sandbox-b")
        refused = client.post("/adapter/actions", json=other_tenants, headers=auth())
        assert refused.json()["accepted"] is False, refused.text
        reason = refused.json()["reason"]

        def receipt_counted() -> dict[Any, float] | None:
            samples = scrape(client.get("/metrics").text)
            counted = value(samples, EVIDENCE, **RECEIPT) > value(before, EVIDENCE, **RECEIPT)
            return samples if counted else None

        after = wait_for(receipt_counted, timeout=15.0)
    assert after, "the receipt was not counted"
    sends = "xmpp_connect_sends_total"
    for outcome, why in (("accepted", ""), ("refused", reason)):
        assert value(after, sends, outcome=outcome, reason=why) == value(
            before, sends, outcome=outcome, reason=why
        ) + 1
    latency = "xmpp_connect_http_request_duration_seconds_count"
    assert value(after, latency, route="/adapter/actions", method="POST", status="202") >= 1
    assert value(after, latency, route="/metrics", method="GET", status="200") >= 1
    assert value(after, "xmpp_connect_stream_state", account="sandbox-a", state="connected") == 1
    assert value(after, "xmpp_connect_stream_events_total", account="sandbox-a", kind="stream_connected") >= 1
    assert ("xmpp_connect_timers_pending", ()) in after
    assert ("xmpp_connect_held_requests", ()) in after


def test_metrics_behind_a_token(tmp_path: Path) -> None:
    config = make_config(tmp_path, metrics={"token_env": "TOKEN_A"})
    with running(config) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKENS['TOKEN_A']}"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")


def test_metrics_on_their_own_port(tmp_path: Path) -> None:
    port = free_port()
    with running(make_config(tmp_path, metrics={"port": port})) as client:
        assert client.get("/metrics").status_code == 404

        def scraped() -> str | None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2.0)
            except httpx.TransportError:
                return None
            return response.text if response.status_code == 200 else None

        text = wait_for(scraped, timeout=10.0)
    assert text and "xmpp_connect_stream_state" in text


@pytest.fixture
async def with_worker(tmp_path: Path) -> AsyncIterator[ServedWithWorkers]:
    process = ServedWithWorkers(tmp_path)
    try:
        await process.start()
        yield process
    finally:
        process.stop()


async def test_with_an_api_worker_its_counts_are_merged_into_the_cores_metrics(
    with_worker: ServedWithWorkers,
) -> None:
    """A send the worker accepts is counted in the worker's process, its receipt in the core's: one scrape
    (answered by the core through the worker) shows both, each series once."""
    async with with_worker.client() as http:
        response = await http.post("/adapter/actions", json=send_request("w1", "delivered@sandbox.invalid"))
        assert response.status_code == 202, response.text
        assert with_worker.intake_claim(send_request("w1")["idempotency_key"])[0], "the worker accepted it"

        async def counted() -> dict[Any, float]:
            while True:
                text = (await http.get("/metrics")).text
                samples = scrape(text)
                if value(samples, EVIDENCE, **RECEIPT) >= 1:
                    return samples
                await asyncio.sleep(0.1)

        samples = await asyncio.wait_for(counted(), 30)
    assert value(samples, "xmpp_connect_sends_total", outcome="accepted", reason="") == 1
    assert value(samples, "xmpp_connect_http_request_duration_seconds_count", route="/adapter/actions",
                 method="POST", status="202") == 1
    assert (with_worker.data_dir / "metrics").is_dir()
    assert "xmpp_connect.access POST /adapter/actions 202" in with_worker.log_text(), "no worker access line"
