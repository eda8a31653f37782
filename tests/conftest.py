"""Fixtures every test directory shares: one real Prosody per session (tests/integration/prosody.py) and
the packaged policy's classifier."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The Prosody harness and recipient clients live in tests/integration; tests/api reuses them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))

from prosody import ProsodyServer

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy.load import load_policy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "prosody_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.prosody)


@pytest.fixture(scope="session")
def classifier() -> Iterator[Classifier]:
    """The packaged policy's classifier, one for the session (it keeps no state between classifications
    that a test could change)."""
    with Classifier(load_policy()) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def prosody_server() -> Iterator[ProsodyServer]:
    """Prosody in a temp dir on a free loopback port, stopped and removed at the end of the session."""
    if shutil.which("prosody") is None:
        if os.environ.get("CI"):
            pytest.fail("prosody is not installed (scripts/test installs it with apt-get)")
        pytest.skip("prosody is not installed; run scripts/test")
    server = ProsodyServer()
    server.prepare()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def live_prosody(prosody_server: ProsodyServer) -> ProsodyServer:
    """The session server, started again if an earlier test stopped it."""
    if not prosody_server.running:
        prosody_server.start()
    return prosody_server
