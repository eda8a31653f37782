"""A bounded property-based run of the live app against spec/openapi.yaml: no input may cause a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import auth, default_policy, service_config
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from xmpp_connect.app.service import AdapterService, build_app
from xmpp_connect.store.sqlite import SqliteStore

schemathesis = pytest.importorskip("schemathesis")
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def live_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with its (sandbox) providers and timers started, for the whole run."""
    config = service_config(Path(tmp_path_factory.mktemp("schemathesis")))
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_no_input_causes_a_server_error(live_client: TestClient) -> None:
    """Every operation of the served document, EXAMPLES_PER_OPERATION generated requests each."""
    schema = schemathesis.openapi.from_dict(live_client.get("/openapi.json").json())
    server_errors: list[str] = []
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
            request = case.as_transport_kwargs(base_url=str(live_client.base_url), headers=auth())
            response = live_client.request(**request)
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.path}: {response.status_code}")

        call()
    assert server_errors == []
