"""Webhook push against a real HTTP receiver on loopback: signatures, retries, restarts, tenants, order."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from api_helpers import REPO, TOKENS, auth, default_policy, send_request, wait_for
from standardwebhooks import Webhook
from starlette.testclient import TestClient
from webhook_receiver import Receiver, free_port, serve

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import config_from_dict
from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.sending.webhooks.retry import RetryPolicy
from xmpp_connect.store.sqlite import SqliteStore

FAST = RetryPolicy(first_delay=0.05, max_delay=0.2, give_up_after=30.0, timeout=2.0)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def make_config(tmp_path: Path, hooks: dict[str, list[dict[str, Any]]] | None = None,
                **top: Any) -> ServiceConfig:
    hooks = hooks or {}
    return config_from_dict(
        {
            "storage": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite3")},
            "policy_dir": str(REPO),
            "timers": {"receipt_timeout_s": 30.0},
            "accounts": [
                {"ref": "sandbox-a", "provider": "sandbox", "jid": "tenant-a@sandbox.invalid/service"},
                {"ref": "sandbox-b", "provider": "sandbox", "jid": "tenant-b@sandbox.invalid/service"},
            ],
            "tenants": [
                {"id": t, "token_env": f"TOKEN_{t.upper()}", "accounts": [f"sandbox-{t}"],
                 "webhooks": hooks.get(t, [])}
                for t in ("a", "b")
            ],
            **top,
        },
        tmp_path,
        {**TOKENS, "HOOK_SECRET": SECRET},
    )


@contextmanager
def running(config: ServiceConfig, retry: RetryPolicy = FAST) -> Iterator[TestClient]:
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path), default_policy())
    service.webhooks.retry = retry
    service.webhooks.poll_interval = 0.02
    with TestClient(build_app(service), raise_server_exceptions=False) as client:
        yield client


def subscribe(client: TestClient, url: str, tenant: str = "a", **extra: Any) -> dict[str, Any]:
    response = client.post("/adapter/webhooks", json={"url": url, **extra}, headers=auth(tenant))
    assert response.status_code == 201, response.text
    return response.json()


def send(client: TestClient, key: str, tenant: str = "a", to: str = "delivered@sandbox.invalid") -> str:
    response = client.post("/adapter/actions", json=send_request(key, to=to), headers=auth(tenant))
    assert response.status_code == 202, response.text
    return response.json()["xmpp_message_id"]


def feed(client: TestClient, tenant: str = "a", cursor: str | None = None) -> list[dict[str, Any]]:
    """The tenant's feed after ``cursor`` (a subscription's starting point)."""
    events: list[dict[str, Any]] = []
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/adapter/events", params=params, headers=auth(tenant)).json()
        events += page["events"]
        if not page["events"]:
            return events
        cursor = page["next_cursor"]


DELIVERED, DISPLAYED = "success.delivered_to_client", "success.displayed_by_client"


def settled_feed(
    client: TestClient, message_ids: list[str], tenant: str = "a", last: dict[str, str] | None = None,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """The feed after ``after`` once every message has its last sandbox evidence (``last``: per message;
    default the receipt)."""
    wanted = {m: (last or {}).get(m, DELIVERED) for m in message_ids}

    def done() -> list[dict[str, Any]] | None:
        events = feed(client, tenant, after)
        seen = {(e["xmpp_message_id"], e["assessment"]["subclass"]) for e in events}
        return events if set(wanted.items()) <= seen else None

    events = wait_for(done, timeout=20.0)
    assert events, "the sandbox receipts did not arrive"
    return events


def test_deliveries_are_signed_per_standard_webhooks_and_carry_the_feed(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        created = hook = subscribe(client, url)
        assert created["secret"].startswith("whsec_")
        listed = client.get("/adapter/webhooks", headers=auth()).json()["webhooks"]
        assert [h["id"] for h in listed] == [created["id"]] and "secret" not in listed[0]
        message_id = send(client, "signed")
        events = settled_feed(client, [message_id], after=hook["cursor"])
        got = receiver.wait_for_accepted(len(events))
    verifier = Webhook(created["secret"])
    for request in got:
        payload = verifier.verify(request.body, request.headers)
        assert request.headers["webhook-id"] == payload["data"]["event_id"]
        assert payload["type"] == payload["data"]["event_type"]
    assert sorted(r.headers["webhook-id"] for r in got) == sorted(e["event_id"] for e in events)
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(got[0].body, got[0].headers)


def test_a_receiver_failing_three_times_then_succeeding_gets_each_event_once(tmp_path: Path) -> None:
    def answer(n: int, _payload: dict[str, Any]) -> tuple[int, dict[str, str]]:
        return [(503, {}), (500, {"Retry-After": "0"}), (502, {})][n] if n < 3 else (200, {})

    receiver = Receiver(answer)
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        hook = subscribe(client, url)
        ids = [send(client, f"retry-{i}") for i in range(3)]
        events = settled_feed(client, ids, after=hook["cursor"])
        receiver.wait_for_accepted(len(events))
        metrics = client.get("/metrics").text
    assert sorted(receiver.accepted_ids()) == sorted(e["event_id"] for e in events), "each event once"
    failed = [r.headers["webhook-id"] for r in receiver.requests if r.status >= 500]
    assert len(failed) == 3 and len(receiver.requests) == len(events) + 3
    assert 'xmpp_connect_webhook_deliveries_total{outcome="retried",tenant="a"}' in metrics


def test_a_4xx_is_not_retried_and_the_event_is_listed_dead(tmp_path: Path) -> None:
    def answer(n: int, _payload: dict[str, Any]) -> tuple[int, dict[str, str]]:
        return (410, {}) if n == 0 else (204, {})

    receiver = Receiver(answer)
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        hook = subscribe(client, url)
        message_id = send(client, "dead")
        events = settled_feed(client, [message_id], after=hook["cursor"])
        receiver.wait_for_accepted(len(events) - 1)
        dead = client.get(f"/adapter/webhooks/{hook['id']}/dead-deliveries", headers=auth()).json()
    refused = receiver.requests[0].headers["webhook-id"]
    assert dead["dead_deliveries"] == [
        {**dead["dead_deliveries"][0], "event_id": refused, "attempts": 1, "reason": "refused",
         "last_status": 410}
    ]
    others = [e["event_id"] for e in events if e["event_id"] != refused]
    assert sorted(receiver.accepted_ids()) == sorted(others)


def test_retries_end_after_the_schedule_and_the_event_is_dead(tmp_path: Path) -> None:
    short = RetryPolicy(first_delay=0.02, max_delay=0.05, give_up_after=0.3, timeout=1.0)
    first_type = "notification.attempt.accepted_by_adapter"
    receiver = Receiver(lambda n, p: (503, {}) if p["data"]["event_type"] == first_type else (204, {}))
    with serve(receiver) as url, running(make_config(tmp_path), retry=short) as client:
        hook = subscribe(client, url)
        message_id = send(client, "give-up")
        events = settled_feed(client, [message_id], after=hook["cursor"])
        receiver.wait_for_accepted(len(events) - 1)
        dead = client.get(f"/adapter/webhooks/{hook['id']}/dead-deliveries", headers=auth()).json()
    (entry,) = dead["dead_deliveries"]
    assert entry["reason"] == "gave_up" and entry["last_status"] == 503 and entry["attempts"] > 1


def test_a_receiver_down_across_a_restart_gets_everything_afterwards(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    config = make_config(tmp_path, {"a": [{"id": "engine", "url": url, "secret_env": "HOOK_SECRET"}]})
    with running(config) as client:
        (hook,) = client.get("/adapter/webhooks", headers=auth()).json()["webhooks"]
        assert hook["origin"] == "config"
        ids = [send(client, f"before-{i}") for i in range(3)]
        settled_feed(client, ids, after=hook["cursor"])
    receiver = Receiver()
    with serve(receiver, port), running(config) as client:
        ids.append(send(client, "after"))
        events = settled_feed(client, ids, after=hook["cursor"])
        receiver.wait_for_accepted(len(events))
    assert sorted(receiver.accepted_ids()) == sorted(e["event_id"] for e in events)
    for request in receiver.accepted():
        Webhook(SECRET).verify(request.body, request.headers)


def test_one_tenants_dead_receiver_does_not_delay_another_tenants(tmp_path: Path) -> None:
    slow = RetryPolicy(first_delay=30.0, max_delay=60.0, give_up_after=3600.0, timeout=2.0)
    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    receiver = Receiver()
    with serve(receiver) as url, running(make_config(tmp_path), retry=slow) as client:
        subscribe(client, dead_url, tenant="a")
        hook = subscribe(client, url, tenant="b")
        send(client, "a-1", tenant="a")
        b_id = send(client, "b-1", tenant="b")
        events = settled_feed(client, [b_id], tenant="b", after=hook["cursor"])
        receiver.wait_for_accepted(len(events))
    assert sorted(receiver.accepted_ids()) == sorted(e["event_id"] for e in events)
    assert {r.payload["data"]["xmpp_message_id"] for r in receiver.accepted()} == {b_id}


def test_each_messages_events_arrive_in_order(tmp_path: Path) -> None:
    receiver = Receiver(lambda n, p: (503, {}) if n % 5 == 2 else (204, {}))
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        hook = subscribe(client, url)
        recipients = ["delivered@sandbox.invalid", "displayed@sandbox.invalid"] * 4
        ids = [send(client, f"order-{i}", to=to) for i, to in enumerate(recipients)]
        pairs = zip(ids, recipients, strict=True)
        last = {m: DISPLAYED if to.startswith("displayed") else DELIVERED for m, to in pairs}
        events = settled_feed(client, ids, last=last, after=hook["cursor"])
        got = receiver.wait_for_accepted(len(events))
    expected = {m: [e["event_id"] for e in events if e["xmpp_message_id"] == m] for m in ids}
    for message_id, order in expected.items():
        mine = [r for r in got if r.payload["data"]["xmpp_message_id"] == message_id]
        assert [r.headers["webhook-id"] for r in mine] == order


def test_redelivery_from_a_cursor_sends_the_events_after_it_again(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        hook = subscribe(client, url)
        message_id = send(client, "again")
        events = settled_feed(client, [message_id], after=hook["cursor"])
        first = receiver.wait_for_accepted(len(events))
        cursor = next(r.payload["cursor"] for r in first if r.headers["webhook-id"] == events[0]["event_id"])
        response = client.post(f"/adapter/webhooks/{hook['id']}/redeliver", json={"cursor": cursor},
                               headers=auth())
        assert response.status_code == 202, response.text
        receiver.wait_for_accepted(2 * len(events) - 1)
        bad = client.post(f"/adapter/webhooks/{hook['id']}/redeliver", json={"cursor": "nope"},
                          headers=auth())
    ids = [e["event_id"] for e in events]
    assert sorted(receiver.accepted_ids()) == sorted(ids + ids[1:])
    assert bad.status_code == 422


def test_receiver_urls_are_checked_and_redirects_not_followed(tmp_path: Path) -> None:
    target = Receiver()
    with serve(target) as target_url:
        redirecting = Receiver(lambda n, p: (307, {"Location": target_url}))
        with serve(redirecting) as url, running(make_config(tmp_path)) as client:
            for bad in ("http://example.com/hook", "ftp://127.0.0.1/x", "https://user:pw@example.com/",
                        "not a url", ""):
                response = client.post("/adapter/webhooks", json={"url": bad}, headers=auth())
                assert response.status_code == 422, bad
                assert "pw" not in response.text
            assert client.post("/adapter/webhooks", json={"url": "https://example.com/h", "color": 1},
                               headers=auth()).status_code == 422
            hook = subscribe(client, url)
            message_id = send(client, "redirect")
            settled_feed(client, [message_id], after=hook["cursor"])

            def dead() -> list[Any]:
                return client.get(f"/adapter/webhooks/{hook['id']}/dead-deliveries",
                                  headers=auth()).json()["dead_deliveries"]

            assert wait_for(dead, timeout=10.0)
    assert target.requests == []
    assert dead()[0]["last_status"] == 307


def test_allow_http_admits_plain_http_to_other_hosts(tmp_path: Path) -> None:
    with running(make_config(tmp_path, webhooks={"allow_http": True})) as client:
        assert client.post("/adapter/webhooks", json={"url": "http://engine.internal/hook"},
                           headers=auth()).status_code == 201


def test_metadata_only_payloads_carry_no_message_content(tmp_path: Path) -> None:
    receiver = Receiver()
    config = make_config(tmp_path, privacy={"metadata_only": True})
    with serve(receiver) as url, running(config) as client:
        hook = subscribe(client, url)
        request = send_request("meta", to="replies-text@sandbox.invalid")
        request["content"] = {"body": "BODY-7f3a-should-never-leave"}
        response = client.post("/adapter/actions", json=request, headers=auth())
        assert response.status_code == 202, response.text
        message_id = response.json()["xmpp_message_id"]
        events = settled_feed(client, [message_id], after=hook["cursor"])
        got = receiver.wait_for_accepted(len(events))
    assert all(b"BODY-7f3a" not in r.body for r in got)


def test_rotate_and_delete(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver) as url, running(make_config(tmp_path)) as client:
        hook = subscribe(client, url)
        rotated = client.post(f"/adapter/webhooks/{hook['id']}/rotate-secret", headers=auth())
        assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
        message_id = send(client, "rotated")
        events = settled_feed(client, [message_id], after=hook["cursor"])
        got = receiver.wait_for_accepted(len(events))
        assert client.get("/adapter/webhooks", headers=auth("b")).json() == {"webhooks": []}
        assert client.delete(f"/adapter/webhooks/{hook['id']}", headers=auth("b")).status_code == 404
        assert client.delete(f"/adapter/webhooks/{hook['id']}", headers=auth()).status_code == 204
        assert client.get("/adapter/webhooks", headers=auth()).json() == {"webhooks": []}
    for request in got:
        Webhook(rotated.json()["secret"]).verify(request.body, request.headers)
