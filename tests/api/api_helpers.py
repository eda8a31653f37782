"""Helpers for the HTTP API tests: a service config, requests, polling, the OpenAPI contract check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from xmpp_connect.app.openapi import openapi_document
from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import config_from_dict
from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy
from xmpp_connect.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
TOKENS = {"TOKEN_A": "token-a-3f9c1d", "TOKEN_B": "token-b-77e0aa"}


def service_config(tmp_path: Path, **limits: Any) -> ServiceConfig:
    return config_from_dict(
        {
            "storage": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite3")},
            "policy_dir": str(REPO),
            "limits": limits,
            "timers": {"receipt_timeout_s": 2.0},
            "accounts": [
                {"ref": "sandbox-a", "provider": "sandbox", "jid": "tenant-a@sandbox.invalid/service"},
                {"ref": "sandbox-b", "provider": "sandbox", "jid": "tenant-b@sandbox.invalid/service"},
            ],
            "tenants": [
                {"id": "a", "token_env": "TOKEN_A", "accounts": ["sandbox-a"]},
                {"id": "b", "token_env": "TOKEN_B", "accounts": ["sandbox-b"]},
            ],
        },
        tmp_path,
        TOKENS,
    )


@cache
def default_policy() -> Policy:
    """The repository's policy (rules/, mappings/), loaded once per test session."""
    return load_policy(REPO)


def open_client(config: ServiceConfig) -> TestClient:
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path), default_policy())
    return TestClient(build_app(service), raise_server_exceptions=False)


def auth(tenant: str = "a") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS['TOKEN_' + tenant.upper()]}"}


def send_request(key: str, to: str | None = "delivered@sandbox.invalid", **extra: Any) -> dict[str, Any]:
    """A §21.1 notification.send request."""
    request: dict[str, Any] = {
        "request_id": f"req-{key}",
        "action_type": "notification.send",
        "coordination_case_id": "case_123",
        "participant_id": "participant_456",
        "channel": "xmpp",
        "content": {"body": "A document is available."},
        "tracking_context": {
            "correlation_id": f"corr-{key}",
            "coordination_case_id": "case_123",
            "participant_id": "participant_456",
            "notification_id": key,
        },
        "idempotency_key": f"case_123:participant_456:xmpp:{key}",
        "requested_at": "2026-01-01T12:00:00Z",
    }
    if to is not None:
        request["target_endpoint"] = {"endpoint_type": "bare_jid", "value": to}
    request.update(extra)
    return request


def wait_for(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll until ``probe`` returns something truthy (evidence arrives asynchronously); the bound is
    generous for a loaded machine: a passing wait returns as soon as the probe does."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


class OpenApiContract:
    """Validates live responses against spec/openapi.yaml."""

    def __init__(self) -> None:
        self.doc = openapi_document()
        self.registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(self.doc))

    def check(self, response: httpx.Response, path: str, method: str = "get") -> None:
        operation = self.doc["paths"][path][method]
        spec = operation["responses"].get(str(response.status_code))
        assert spec is not None, f"{method.upper()} {path}: undocumented status {response.status_code}"
        if "$ref" in spec:
            spec = self.doc["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
        media = response.headers["content-type"].split(";")[0]
        assert media in spec["content"], f"{path}: undocumented media type {media}"
        schema = {"$ref": "urn:openapi#/" + _pointer(spec["content"][media]["schema"])}
        Draft202012Validator(schema, registry=self.registry).validate(response.json())


def _pointer(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        return ref.removeprefix("#/")
    raise AssertionError("inline response schemas are not used in spec/openapi.yaml")


class EngineReads:
    """The reads a coordination engine makes, over any httpx client (an app in process or a socket)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def entries(self, message_id: str) -> list[dict[str, Any]]:
        return (await self.get(f"/adapter/messages/{message_id}/timeline"))["entries"]

    async def assessment(self, message_id: str) -> dict[str, Any]:
        return await self.get(f"/adapter/messages/{message_id}/assessment")


class LiveApp(EngineReads):
    """A started service and an async HTTP client of its app, for end-to-end tests against Prosody."""

    def __init__(self, service: AdapterService, http: httpx.AsyncClient, wait: float = 8.0) -> None:
        super().__init__(http)
        self.service = service
        self.wait = wait

    async def act(self, request: dict[str, Any], path: str = "/adapter/actions") -> dict[str, Any]:
        response = await self.http.post(path, json=request)
        assert response.status_code in (200, 202), response.text
        return response.json()

    async def wait_for_event(self, message_id: str, event_type: str, subclass: str | None = None) -> dict:
        """The first timeline entry of this type (and subclass), waiting for it (bounded)."""

        async def scan() -> dict:
            while True:
                for entry in await self.entries(message_id):
                    wanted = subclass in (None, entry["assessment"]["subclass"])
                    if entry["event_type"] == event_type and wanted:
                        return entry
                await asyncio.sleep(0.02)

        try:
            return await asyncio.wait_for(scan(), self.wait)
        except TimeoutError:
            seen = [(e["event_type"], e["assessment"]["subclass"]) for e in await self.entries(message_id)]
            raise AssertionError(f"no {event_type} ({subclass}) in {seen}") from None
