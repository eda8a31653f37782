"""One version number everywhere: the installed package, `xmpp-connect --version`, the served descriptor and
the OpenAPI document."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from api_helpers import auth
from starlette.testclient import TestClient

from xmpp_connect import __version__


def test_one_version_everywhere(client: TestClient) -> None:
    assert importlib.metadata.version("xmpp-connect") == __version__
    command = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(['--version']))"
    printed = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert printed == f"xmpp-connect {__version__}\n"
    assert client.get("/adapter/descriptor", headers=auth()).json()["adapter_version"] == __version__
    assert client.get("/openapi.json").json()["info"]["version"] == __version__
