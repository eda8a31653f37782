"""Exports, checkpoints, the public key and raw events over HTTP (spec/audit.md): a bundle exported from the
running service verifies offline after the service is stopped; a tampered bundle is refused; an anonymized
bundle still verifies and holds no original JID."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import REPO, TOKENS, auth, default_policy, send_request, wait_for
from starlette.testclient import TestClient

from xmpp_connect.app.cli import main
from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import config_from_dict
from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.model.bundle import encode_bundle, verify_bundle
from xmpp_connect.model.checkpoint import (
    SigningKeyError,
    generate_private_key_pem,
    load_private_key,
    public_key_text,
)
from xmpp_connect.store.sqlite import SqliteStore

KEY_PEM = generate_private_key_pem()
ORIGINAL_JID = re.compile(r"[\w.\-]+@sandbox\.invalid")


def generate_public_key() -> str:
    return public_key_text(load_private_key(generate_private_key_pem()))


def audit_config(tmp_path: Path, key_text: str = KEY_PEM) -> ServiceConfig:
    (tmp_path / "audit.key").write_text(key_text, encoding="utf-8")
    return config_from_dict(
        {
            "storage": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite3")},
            "policy_dir": str(REPO),
            "timers": {"receipt_timeout_s": 2.0},
            "accounts": [
                {"ref": "sandbox-a", "provider": "sandbox", "jid": "tenant-a@sandbox.invalid/service"},
                {"ref": "sandbox-b", "provider": "sandbox", "jid": "tenant-b@sandbox.invalid/service"},
            ],
            "tenants": [
                {"id": "a", "token_env": "TOKEN_A", "accounts": ["sandbox-a"]},
                {"id": "b", "token_env": "TOKEN_B", "accounts": ["sandbox-b"]},
            ],
            "audit": {"signing_key_file": "audit.key", "checkpoint_interval_s": 3600},
        },
        tmp_path,
        TOKENS,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TestClient]:
    """The running service (providers and timers started) with an audit signing key."""
    config = audit_config(tmp_path)
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def displayed_message(client: TestClient, key: str) -> tuple[str, list[dict[str, Any]]]:
    """Send to the sandbox's displayed@ recipient and wait for the displayed marker evidence."""
    response = client.post(
        "/adapter/actions", json=send_request(key, "displayed@sandbox.invalid"), headers=auth()
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["xmpp_message_id"]

    def entries() -> list[dict[str, Any]]:
        return client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]

    found = wait_for(
        lambda: entries() if any(e["scenario"] == "displayed_by_client" for e in entries()) else None, 10
    )
    assert found, "no displayed marker evidence within 10 s"
    return message_id, found


def test_a_message_bundle_verifies_offline_after_the_service_stopped(tmp_path: Path, capsys) -> None:
    config = audit_config(tmp_path)
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    with TestClient(app, raise_server_exceptions=False) as client:
        message_id, entries = displayed_message(client, "exp-1")
        displayed_message(client, "exp-2")  # another message: its entries appear only as hashes
        response = client.get("/adapter/exports", params={"message_id": message_id}, headers=auth())
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        public_key = client.get("/adapter/audit/public-key").json()["public_key"]
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_text(response.text, encoding="utf-8")
    (tmp_path / "public.key").write_text(public_key, encoding="utf-8")

    lines = [json.loads(line) for line in response.text.splitlines()]
    manifest, records = lines[0], lines[1:]
    exported = [r["row"] for r in records if r["type"] == "entry"]
    assert {r["event_id"] for r in exported} == {e["event_id"] for e in entries}
    assert all(r["message_id"] == message_id for r in exported)
    assert manifest["selection"] == {"message_id": message_id}
    assert manifest["policy"]["versions"] == [default_policy().version]
    assert "rules/50_receipts.yaml" in manifest["policy"]["tables"]["sha256"]
    raw_refs = {r["raw_event_id"] for r in records if r["type"] == "raw"}
    assert raw_refs and raw_refs <= {e["raw_event_ref"] for e in entries}
    assert all("content" not in r for r in records if r["type"] == "raw"), "references only unless asked"

    # the service is stopped: the CLI checks the file with the published key alone
    assert (
        main(["audit", "verify", "--bundle", str(bundle), "--public-key", str(tmp_path / "public.key")]) == 0
    )
    assert "verifies" in capsys.readouterr().out
    report = verify_bundle(response.text, public_key)
    assert report.ok and report.entries == len(entries) and report.raw_refs == len(raw_refs)


def test_a_tampered_bundle_is_refused(served: TestClient) -> None:
    message_id, _ = displayed_message(served, "exp-t")
    text = served.get("/adapter/exports", params={"message_id": message_id}, headers=auth()).text
    public_key = served.get("/adapter/audit/public-key").json()["public_key"]
    assert verify_bundle(text, public_key).ok

    changed = text.replace("success.displayed_by_client", "success.acknowledged_by_client", 1)
    assert changed != text
    refused = verify_bundle(changed, public_key)
    assert not refused.ok and "manifest" in str(refused.problem)

    # the same change with the manifest's digest recomputed: the entry itself no longer verifies
    lines = [json.loads(line) for line in changed.splitlines()]
    manifest = {k: v for k, v in lines[0].items() if k not in ("lines", "lines_sha256", "manifest_signature")}
    refused = verify_bundle(encode_bundle(manifest, lines[1:]), public_key)
    assert not refused.ok and refused.failure is not None and refused.failure["kind"] == "changed"

    assert not verify_bundle(text, generate_public_key()).ok, "another key does not verify the checkpoint"


def test_an_anonymized_bundle_verifies_and_holds_no_original_jid(served: TestClient) -> None:
    _, entries = displayed_message(served, "exp-anon")
    plain = served.get("/adapter/exports", params={"case_id": "case_123", "raw": "content"}, headers=auth())
    assert ORIGINAL_JID.search(plain.text), (
        "the plain bundle names the recipient (the test would prove nothing)"
    )
    response = served.get(
        "/adapter/exports",
        params={"case_id": "case_123", "anonymize": "true", "raw": "content"},
        headers=auth(),
    )
    assert response.status_code == 200, response.text
    assert not ORIGINAL_JID.search(response.text)
    assert "participant_456" not in response.text
    public_key = served.get("/adapter/audit/public-key").json()["public_key"]
    report = verify_bundle(response.text, public_key)
    assert report.ok, report.problem
    assert report.anonymized == report.entries >= len(entries)


def test_bundles_without_bodies_and_a_time_range(served: TestClient) -> None:
    _, entries = displayed_message(served, "exp-range")
    since = min(e["occurred_at"] for e in entries)
    response = served.get(
        "/adapter/exports", params={"since": since, "bodies": "false", "raw": "content"}, headers=auth()
    )
    assert response.status_code == 200, response.text
    records = [json.loads(line) for line in response.text.splitlines()[1:]]
    assert all("content" not in r for r in records if r["type"] == "raw")
    assert verify_bundle(response.text, served.get("/adapter/audit/public-key").json()["public_key"]).ok


def test_bad_export_requests_are_refused_clearly(served: TestClient, contract) -> None:
    whole = served.get("/adapter/exports", headers=auth())
    assert whole.status_code == 200, "no selection: the tenant's whole log"
    assert verify_bundle(whole.text, served.get("/adapter/audit/public-key").json()["public_key"]).ok
    bad = served.get("/adapter/exports", params={"since": "yesterday"}, headers=auth())
    assert bad.status_code == 422 and bad.json()["field"] == "since"
    contract.check(bad, "/adapter/exports")
    none = served.get("/adapter/exports", params={"message_id": "nope"}, headers=auth())
    assert none.status_code == 404
    assert served.get("/adapter/exports", params={"message_id": "x"}).status_code == 401


def test_checkpoints_on_demand_and_listed_per_tenant(served: TestClient, contract) -> None:
    displayed_message(served, "exp-cp")
    created = served.post("/adapter/audit/checkpoints", headers=auth())
    assert created.status_code == 201, created.text
    contract.check(created, "/adapter/audit/checkpoints", "post")
    contract.check(served.get("/adapter/audit/checkpoints", headers=auth()), "/adapter/audit/checkpoints")
    contract.check(served.get("/adapter/audit/public-key"), "/adapter/audit/public-key")
    checkpoint = created.json()
    assert checkpoint["tenant_id"] == "a" and checkpoint["entries"] > 0
    listed = served.get("/adapter/audit/checkpoints", headers=auth()).json()["checkpoints"]
    assert checkpoint in listed
    assert all(
        c["tenant_id"] == "b"
        for c in served.get("/adapter/audit/checkpoints", headers=auth("b")).json()["checkpoints"]
    )
    key = served.get("/adapter/audit/public-key").json()
    assert key["algorithm"] == "Ed25519" and key["key_id"] == checkpoint["key_id"]


def test_raw_events_are_served_by_reference_redacted_and_tenant_scoped(served: TestClient, contract) -> None:
    _, entries = displayed_message(served, "exp-raw")
    ref = next(e["raw_event_ref"] for e in entries if e["raw_event_ref"])
    response = served.get(f"/adapter/raw-events/{ref}", headers=auth())
    assert response.status_code == 200, response.text
    contract.check(response, "/adapter/raw-events/{ref}")
    raw = response.json()
    assert raw["raw_event_ref"] == ref and raw["redacted"] is True and raw["content"].startswith("<")
    assert "A document is available." not in raw["content"]
    assert served.get(f"/adapter/raw-events/{ref}", headers=auth("b")).status_code == 404


def test_without_a_signing_key_there_is_no_public_key_and_no_checkpoint(client: TestClient) -> None:
    assert client.get("/adapter/audit/public-key").status_code == 404
    assert client.post("/adapter/audit/checkpoints", headers=auth()).status_code == 409


def test_a_signing_key_that_is_not_ed25519_stops_the_service_at_start(tmp_path: Path) -> None:
    config = audit_config(tmp_path, "not a key at all")
    assert config.storage.path is not None
    app = build_app(AdapterService(config, SqliteStore(config.storage.path), default_policy()))
    with pytest.raises(SigningKeyError, match="Ed25519") as raised, TestClient(app):
        pass
    assert "not a key at all" not in str(raised.value)
