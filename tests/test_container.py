"""The container files: compose.yaml mounts a config that passes `config check`, and where a docker engine
answers (CI with docker), the image builds and its entry point prints the package version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from xmpp_connect import __version__
from xmpp_connect.config.loader import load_config

REPO = Path(__file__).resolve().parents[1]


def test_compose_mounts_a_config_the_service_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = YAML(typ="safe").load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    assert set(compose["services"]) == {"xmpp-connect", "prosody", "postgres"}
    adapter = compose["services"]["xmpp-connect"]
    source, target = adapter["volumes"][0].split(":")[:2]
    assert target == "/etc/xmpp-connect/config.yaml"
    config = load_config(REPO / source, {name: "x" for name in adapter["environment"]})
    assert config.storage.kind == "postgres" and config.port == 8750


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_answers(), reason="no docker engine here")
def test_the_image_builds_and_knows_its_version() -> None:
    tag = "xmpp-connect:test"
    subprocess.run(["docker", "build", "-t", tag, str(REPO)], check=True, capture_output=True, timeout=900)
    shown = subprocess.run(["docker", "run", "--rm", tag, "--version"], check=True, capture_output=True,
                           text=True, timeout=120).stdout
    assert shown.strip() == f"xmpp-connect {__version__}"
