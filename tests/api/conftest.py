"""Fixtures: a live service over HTTP (two tenants, each with its own sandbox account, SQLite in tmp_path)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import OpenApiContract, open_client, service_config
from ejabberd import EJABBERDCTL, EjabberdServer
from prosody import ProsodyServer
from starlette.testclient import TestClient

from xmpp_connect.config.settings import ServiceConfig


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return service_config(tmp_path)


@pytest.fixture
def client(config: ServiceConfig) -> Iterator[TestClient]:
    with open_client(config) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def contract() -> OpenApiContract:
    return OpenApiContract()


@pytest.fixture
def prosody(live_prosody: ProsodyServer) -> ProsodyServer:
    """The session's real Prosody (tests/conftest.py), for the end-to-end tests."""
    return live_prosody


@pytest.fixture(scope="session")
def ejabberd_server() -> Iterator[EjabberdServer]:
    """A throwaway ejabberd (tests/integration/ejabberd.py), the second real server, started once."""
    if not EJABBERDCTL.exists():
        if os.environ.get("CI"):
            pytest.fail("ejabberd is not installed (scripts/test installs it with apt-get)")
        pytest.skip("ejabberd is not installed; run scripts/test")
    server = EjabberdServer()
    server.prepare()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(params=["prosody", "ejabberd"])
def xmpp_server(request: pytest.FixtureRequest) -> ProsodyServer | EjabberdServer:
    """Each real server in turn: the session's Prosody, then the session's ejabberd."""
    server = request.getfixturevalue("live_prosody" if request.param == "prosody" else "ejabberd_server")
    assert isinstance(server, ProsodyServer | EjabberdServer)
    return server
