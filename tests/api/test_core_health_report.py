"""The core's stream report for the API workers: written when a stream's status changes, else at most every
``refresh`` seconds (not at every look)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from api_helpers import default_policy, service_config

from xmpp_connect.app.service import AdapterService
from xmpp_connect.store.sqlite import SqliteStore

WAIT = 30.0


async def test_the_report_is_written_when_a_status_changes_not_at_every_look(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    store = SqliteStore(tmp_path / "store.sqlite3")
    service = AdapterService(config, store, default_policy())
    report = tmp_path / "core-health.json"
    service._health_report = report
    statuses = {"sandbox-a": "connected", "sandbox-b": "connected"}
    for ref, provider in service.providers.items():
        provider.stream_status = lambda ref=ref: statuses[ref]  # type: ignore[method-assign]

    def streams() -> Any:
        return json.loads(report.read_text())["streams"] if report.exists() else None

    reporting = asyncio.create_task(service._report_health_periodically(interval=0.001, refresh=3600.0))
    try:
        async with asyncio.timeout(WAIT):
            while streams() != statuses:
                await asyncio.sleep(0.01)
            first = report.stat().st_mtime_ns, report.read_text()
            await asyncio.sleep(0.2)
            assert (report.stat().st_mtime_ns, report.read_text()) == first, "unchanged: not written again"
            statuses["sandbox-b"] = "disconnected"
            while streams() != statuses:
                await asyncio.sleep(0.01)
    finally:
        reporting.cancel()
        await asyncio.gather(reporting, return_exceptions=True)
        store.close()
