"""§15–§17 records written from observations: presence per resource (GET /xmpp/presence/{jid}, tenant-scoped),
receipts per resource, inbound replies with their command, endpoint quality's presence times, and
metadata-only mode keeping no inbound body or presence status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api_helpers import OpenApiContract, auth, default_policy, send_request, service_config, wait_for
from starlette.testclient import TestClient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.store import StoreOptions
from xmpp_connect.store.sqlite import SqliteStore

SECRET = "Meet me at the north gate at nine"
CAROL = "<presence xmlns='jabber:client' from='carol@example.net/desk' to='tenant-a@sandbox.invalid/service'>"


def live(config: ServiceConfig, options: StoreOptions | None = None) -> tuple[TestClient, AdapterService]:
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path, options), default_policy())
    return TestClient(build_app(service), raise_server_exceptions=False), service


def ingest(client: TestClient, raw: str, tenant: str = "a") -> dict[str, Any]:
    account = f"sandbox-{tenant}"
    payload = {"account": account, "raw": raw}
    response = client.post("/adapter/events/provider", json=payload, headers=auth(tenant))
    assert response.status_code == 202, response.text
    return response.json()


def send(client: TestClient, key: str, to: str) -> str:
    """notification.send to a sandbox recipient; the message id."""
    response = client.post("/adapter/actions", json=send_request(key, to), headers=auth())
    return str(response.json()["xmpp_message_id"])


def presence(client: TestClient, jid: str, tenant: str = "a") -> dict[str, Any] | None:
    response = client.get(f"/xmpp/presence/{jid}", headers=auth(tenant))
    return response.json() if response.status_code == 200 else None


def test_sandbox_presence_is_served_per_resource(tmp_path: Path, contract: OpenApiContract) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        response = client.get("/xmpp/presence/two-devices@sandbox.invalid", headers=auth())
        contract.check(response, "/xmpp/presence/{jid}")
        body = response.json()
        assert body["bare_jid"] == "two-devices@sandbox.invalid"
        assert {(r["resource"], r["availability"]) for r in body["resources"]} == {
            ("laptop", "available"),
            ("phone", "available"),
        }
        assert all(r["confidence"] == "high" for r in body["resources"])
        offline = presence(client, "offline@sandbox.invalid")
        assert offline is not None
        assert [(r["resource"], r["availability"]) for r in offline["resources"]] == [(None, "unavailable")]
        one_device = presence(client, "two-devices@sandbox.invalid/phone")
        assert one_device is not None, "a full JID reaches the route (its '/' is part of the path)"
        assert one_device["bare_jid"] == "two-devices@sandbox.invalid"
        unknown = client.get("/xmpp/presence/nobody@sandbox.invalid", headers=auth())
        contract.check(unknown, "/xmpp/presence/{jid}")
        assert unknown.status_code == 404


def test_presence_keeps_show_priority_status_and_is_tenant_scoped(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        ingest(
            client,
            f"{CAROL}<show>dnd</show><priority>5</priority><status>{SECRET}</status></presence>",
        )
        [desk] = presence(client, "carol@example.net")["resources"]
        assert (desk["resource"], desk["availability"], desk["priority"]) == ("desk", "dnd", 5)
        assert desk["status_text"] == SECRET
        assert desk["confidence"] == "low", "a bridge's stanza: no server vouched for its sender"
        assert presence(client, "carol@example.net", tenant="b") is None


def test_endpoint_quality_sees_presence_times_from_the_records(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        quality = client.get("/xmpp/endpoints/delivered@sandbox.invalid/quality", headers=auth()).json()
        available_at = quality["last_presence_available_at"]
        assert available_at is not None and quality["last_presence_unavailable_at"] is None
        ingest(
            client,
            "<presence xmlns='jabber:client' type='unavailable' from='delivered@sandbox.invalid/phone'"
            " to='tenant-a@sandbox.invalid/service'/>",
        )
        [phone] = presence(client, "delivered@sandbox.invalid")["resources"]
        assert phone["availability"] == "unavailable"
        quality = client.get("/xmpp/endpoints/delivered@sandbox.invalid/quality", headers=auth()).json()
        assert quality["last_presence_available_at"] == available_at
        assert quality["last_presence_unavailable_at"] > available_at


def test_each_device_keeps_its_receipt_and_a_repeated_receipt_is_stored_once(tmp_path: Path) -> None:
    client, service = live(service_config(tmp_path))
    with client:
        message_id = send(client, "r2", "two-devices@sandbox.invalid")
        assert wait_for(lambda: len(service.store.list_receipts("a", message_id)) == 2)
        receipts = service.store.list_receipts("a", message_id)
        [stanza_id] = {r.original_stanza_id for r in receipts}
        assert {r.resource for r in receipts} == {"phone", "laptop"}
        assert {r.from_jid for r in receipts} == {
            "two-devices@sandbox.invalid/phone",
            "two-devices@sandbox.invalid/laptop",
        }
        ingest(
            client,
            "<message xmlns='jabber:client' from='two-devices@sandbox.invalid/phone'"
            f" to='tenant-a@sandbox.invalid/service' id='again-1'><received xmlns='urn:xmpp:receipts'"
            f" id='{stanza_id}'/></message>",
        )
        assert len(service.store.list_receipts("a", message_id)) == 2
        assert service.store.list_receipts("b", message_id) == []


def test_reply_is_recorded_with_its_command_and_message(tmp_path: Path) -> None:
    client, service = live(service_config(tmp_path))
    with client:
        message_id = send(client, "i1", "replies-ack@sandbox.invalid")
        assert wait_for(lambda: service.store.list_inbound("a", message_id))
        [reply] = service.store.list_inbound("a", message_id)
        assert reply.from_jid == "replies-ack@sandbox.invalid/phone"
        assert reply.command_classification == "acknowledgement"
        assert (reply.message_type, reply.body_text) == ("chat", "ACK")
        ingest(
            client,
            "<message xmlns='jabber:client' type='chat' from='stranger@example.net/x'"
            f" to='tenant-a@sandbox.invalid/service' id='s-1'><body>{SECRET}</body></message>",
        )
        [stray] = [m for m in service.store.list_inbound("a") if m.from_jid == "stranger@example.net/x"]
        assert (stray.message_id, stray.command_classification) == (None, "free_text")


def test_metadata_only_mode_keeps_no_inbound_body_or_status(tmp_path: Path) -> None:
    client, service = live(service_config(tmp_path), StoreOptions(metadata_only=True))
    with client:
        message_id = send(client, "m1", "replies-text@sandbox.invalid")
        assert wait_for(lambda: service.store.list_inbound("a", message_id))
        [reply] = service.store.list_inbound("a", message_id)
        assert reply.body_text is None and reply.command_classification == "free_text"
        ingest(
            client,
            f"{CAROL}<status>{SECRET}</status></presence>",
        )
        [desk] = presence(client, "carol@example.net")["resources"]
        assert desk["status_text"] is None and desk["availability"] == "available"
    assert config_store_lacks(tmp_path, SECRET)


def config_store_lacks(tmp_path: Path, text: str) -> bool:
    """No file of the store (database, WAL) holds the text."""
    return all(text.encode() not in path.read_bytes() for path in tmp_path.glob("store.sqlite3*"))
