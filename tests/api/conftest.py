"""Fixtures: a live service over HTTP (two tenants, each with its own sandbox account, SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import OpenApiContract, open_client, service_config
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
