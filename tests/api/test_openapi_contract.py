"""The contract: the served document validates, every operation has an example that is sent here and
answered as documented, and /docs renders every operation in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api_helpers import OpenApiContract, auth, default_policy, wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from openapi_spec_validator import validate
from starlette.testclient import TestClient
from test_webhooks import make_config, running
from webhook_receiver import free_port

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.store.sqlite import SqliteStore

METHODS = ("get", "post", "put", "patch", "delete")
ORDER = {"post": 0, "get": 1, "put": 1, "patch": 1, "delete": 2}
"""Creating examples first (a message, a webhook), deleting last."""


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
             if method in METHODS]
    return sorted(found, key=lambda f: ORDER[f[1]])


def test_the_served_document_is_valid_openapi(client: TestClient) -> None:
    validate(client.get("/openapi.json").json())


def test_every_operation_has_an_example(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    missing = []
    for path, method, op in operations(doc):
        params = [_param(doc, p) for p in op.get("parameters", [])]
        if any(p["in"] == "path" and "example" not in p for p in params):
            missing.append(f"{method} {path}: path parameter")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and "example" not in body:
            missing.append(f"{method} {path}: body")
    assert missing == []


REFUSED_ON_THE_SANDBOX = {("post", "/adapter/archive/queries"): 409}
"""Examples the sandbox answers with a documented refusal: it keeps no XEP-0313 archive (the archive query is
answered against a real Prosody in test_archive_reconstruct.py)."""


def test_each_example_is_answered_as_documented(tmp_path: Path, contract: OpenApiContract) -> None:
    key = tmp_path / "audit.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with running(make_config(tmp_path, audit={"signing_key_file": str(key)})) as client:
        doc = client.get("/openapi.json").json()
        message_id = None
        answered = []
        for path, method, op in operations(doc):
            params = [_param(doc, p) for p in op.get("parameters", [])]
            url = path
            for p in params:
                if p["in"] == "path":
                    value = message_id if p["name"] == "id" and "MessageId" in str(op["parameters"]) else None
                    if p["name"] == "ref" and message_id is not None:
                        value = _raw_event_ref(client, message_id)
                    url = url.replace("{" + p["name"] + "}", str(value or p["example"]))
            query = {p["name"]: p["example"] for p in params if p["in"] == "query" and "example" in p}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
            response = client.request(method.upper(), url, params=query, json=body, headers=auth())
            said = f"{method} {path}: {response.status_code} {response.text}"
            refused = REFUSED_ON_THE_SANDBOX.get((method, path))
            if refused is not None:
                assert response.status_code == refused, said
            else:
                assert response.status_code < 400, said
            is_json = response.headers.get("content-type", "").startswith("application/json")
            if is_json and path != "/openapi.json":
                contract.check(response, path, method)
            if path == "/adapter/actions":
                message_id = response.json()["xmpp_message_id"]
            answered.append((method, path, response.status_code))
    assert len(answered) == len(operations(doc))


def _raw_event_ref(client: TestClient, message_id: str) -> str:
    """A raw stanza the message's evidence references (the sandbox's ack arrives within moments)."""
    found: list[str] = []

    def referenced() -> bool:
        entries = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]
        found.extend(e["raw_event_ref"] for e in entries if e.get("raw_event_ref"))
        return bool(found)

    assert wait_for(referenced, timeout=30.0), "no evidence of the example message references a raw stanza"
    return found[0]


def _param(doc: dict[str, Any], param: dict[str, Any]) -> dict[str, Any]:
    ref = param.get("$ref")
    return doc["components"]["parameters"][ref.rsplit("/", 1)[1]] if ref else param


@pytest.fixture
def served_port(tmp_path: Path) -> Iterator[int]:
    """The app on a real loopback socket (uvicorn in a thread), for the browser."""
    config = make_config(tmp_path)
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=20.0), "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_docs_render_every_operation_in_headless_chromium(served_port: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{served_port}"
    doc = httpx.get(f"{base}/openapi.json").json()
    page = httpx.get(f"{base}/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    dom = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dom = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
             f"{base}/docs"],
            capture_output=True, text=True, timeout=120,
        ).stdout
        if "opblock-summary-path" in dom:
            break
    rendered = set(re.findall(r'class="opblock opblock-(\w+)[^"]*"[^>]*>.*?data-path="([^"]+)"', dom, re.S))
    expected = {(m, p) for p, m, _ in operations(doc)}
    assert expected <= rendered, f"not on the page: {sorted(expected - rendered)}"
