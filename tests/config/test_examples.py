"""Every file in examples/ passes `xmpp-connect config check` (with its secrets' variables set), and the
real-server example covers what it says: a client account with a room and a node, a component, two tenants,
PostgreSQL."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from xmpp_connect.app.cli import main
from xmpp_connect.config.loader import load_config
from xmpp_connect.config.settings import COMPONENT_PROVIDER

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def secret_env(path: Path) -> dict[str, str]:
    """A made-up value for every environment variable the file names."""
    names = re.findall(r"_env:\s*([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"))
    return {name: WEBHOOK_SECRET if "WEBHOOK" in name else f"example-{name.lower()}" for name in names}


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"example webhook secret 24").decode()
"""A webhook secret must be a Standard Webhooks key (whsec_ + base64)."""


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"real-server.yaml", "sandbox.yaml", "prosody-loopback.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_passes_config_check(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in secret_env(path).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr().err
    assert f"{path}: OK: " in capsys.readouterr().out


def test_the_real_server_example_covers_each_kind_of_channel() -> None:
    path = next(p for p in EXAMPLES if p.name == "real-server.yaml")
    config = load_config(path, secret_env(path))
    assert config.storage.kind == "postgres"
    assert len(config.tenants) == 2
    client = next(a for a in config.accounts if a.provider == "slixmpp")
    assert client.rooms and client.nodes and client.verify_tls
    assert any(a.provider == COMPONENT_PROVIDER for a in config.accounts)
