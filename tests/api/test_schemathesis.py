"""A bounded property-based run of the live service against the served OpenAPI document, with every
schemathesis check: no server error, every answer as documented, no schema-valid request refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from api_helpers import auth, default_policy, service_config, wait_for
from hypothesis import HealthCheck, given, settings
from webhook_receiver import free_port

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.store.sqlite import SqliteStore

schemathesis = pytest.importorskip("schemathesis")
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def live_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a loopback socket (uvicorn in a thread), its (sandbox) providers and timers started:
    checks that send a request again reach the same service."""
    config = service_config(Path(tmp_path_factory.mktemp("schemathesis")))
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=20.0), "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_every_check_passes_for_generated_requests(live_base: str) -> None:
    """Every operation of the served document, EXAMPLES_PER_OPERATION generated requests each."""
    schema = schemathesis.openapi.from_url(f"{live_base}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            try:
                case.call_and_validate(base_url=live_base, headers=auth())
            except Exception as exc:  # every failed check, reported together below
                failures.append(f"{case.method} {case.path}: {str(exc)[:600]}")

        call()
    assert failures == []
