"""notification.schedule held in the store: a fresh service on the same database sends a due request once,
two replicas on one PostgreSQL schema send it once between them, metadata-only mode holds no body."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import auth, default_policy, send_request, service_config, wait_for
from pg import PG_DSN, fresh_schema
from starlette.testclient import TestClient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.providers.stanza_builders import OutboundMessage
from xmpp_connect.store import StoreOptions
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.sqlite import SqliteStore

BODY = "Your scheduled confidential notice"


def live(config: ServiceConfig, store: SqlStore) -> tuple[TestClient, AdapterService, list[str]]:
    """A service over ``store``, and the recipients its provider was asked to send to."""
    service = AdapterService(config, store, default_policy())
    sent: list[str] = []
    provider = service.providers["sandbox-a"]
    send = provider.send_message

    def counted(message: OutboundMessage) -> Any:
        sent.append(message.to_jid)
        return send(message)

    provider.send_message = counted  # type: ignore[method-assign]
    return TestClient(build_app(service), raise_server_exceptions=False), service, sent


def pause_timers(service: AdapterService) -> Callable[[], None]:
    """The service's timer loop fires nothing (a held request stays held, however slow the machine) until
    the returned function is called."""
    timers: Any = service.timers
    fire_due = timers.fire_due
    paused = True

    async def fire_unless_paused() -> int:
        return 0 if paused else await fire_due()

    def resume() -> None:
        nonlocal paused
        paused = False
        timers.wake()

    timers.fire_due = fire_unless_paused
    return resume


def sqlite(config: ServiceConfig, options: StoreOptions | None = None) -> SqliteStore:
    assert config.storage.path is not None
    return SqliteStore(config.storage.path, options)


def schedule(key: str, seconds: float, **extra: Any) -> dict[str, Any]:
    send_at = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    request = send_request(key, "delivered@sandbox.invalid", send_at=send_at, **extra)
    request["action_type"] = "notification.schedule"
    return request


def subclasses(client: TestClient, message_id: str) -> set[str]:
    timeline = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()
    return {e["assessment"]["subclass"] for e in timeline["entries"]}


def test_a_fresh_service_sends_a_request_held_before_the_restart_once(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    first, first_service, sent_before = live(config, sqlite(config))
    pause_timers(first_service)  # it stops before the send is due, whatever the machine's load
    with first:
        accepted = first.post("/adapter/actions", json=schedule("h1", 0.8), headers=auth()).json()
        assert accepted["action_state"] == "scheduled"
    message_id = accepted["xmpp_message_id"]
    assert sent_before == []
    again, service, sent_after = live(config, sqlite(config))
    with again:
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(again, message_id))
        assert sent_after == ["delivered@sandbox.invalid"]
        assert service.store.held_request_for_message("a", message_id) is None
        cancel = {
            "request_id": "req-late-cancel",
            "action_type": "notification.cancel",
            "idempotency_key": "cancel:h1",
            "operation_id": accepted["adapter_operation_id"],
        }
        refused = again.post("/adapter/actions", json=cancel, headers=auth()).json()
        assert refused["accepted"] is False and refused["reason"] == "not_queued:delivered_to_client"
    assert not (config.data_dir / "scheduled").exists()


def test_metadata_only_mode_schedules_templates_and_refuses_inline_bodies(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    client, service, sent = live(config, sqlite(config, StoreOptions(metadata_only=True)))
    resume_timers = pause_timers(service)  # held until it is looked at, however slow the machine
    with client:
        inline = client.post(
            "/adapter/actions", json=schedule("m1", 0.5, content={"body": BODY}), headers=auth()
        )
        assert inline.status_code == 422 and inline.json()["field"] == "content"
        templated = schedule("m2", 0.5, template_ref="reminder", variables={"summary": "incident 42"})
        templated.pop("content")
        accepted = client.post("/adapter/actions", json=templated, headers=auth()).json()
        message_id = accepted["xmpp_message_id"]
        held = service.store.held_request_for_message("a", message_id)
        assert held is not None and held.body_kept and "content" not in held.request
        resume_timers()
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(client, message_id))
        assert sent == ["delivered@sandbox.invalid"]
    assert all(BODY.encode() not in p.read_bytes() for p in tmp_path.glob("store.sqlite3*"))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    yield from fresh_schema("xc_test_sched_")


@pytest.mark.postgres
def test_two_replicas_on_postgres_send_a_scheduled_request_once(tmp_path: Path, pg_schema: str) -> None:
    config = service_config(tmp_path)
    one, first, sent_one = live(config, PostgresStore(PG_DSN, schema=pg_schema))
    two, second, sent_two = live(config, PostgresStore(PG_DSN, schema=pg_schema))
    try:
        with one, two:
            requests = [schedule(f"r{n}", 0.3 + 0.05 * n) for n in range(6)]
            answers = [one.post("/adapter/actions", json=r, headers=auth()).json() for r in requests]
            ids = [answer["xmpp_message_id"] for answer in answers]
            assert wait_for(
                lambda: all("success.delivered_to_client" in subclasses(two, m) for m in ids)
            )
            assert len(sent_one) + len(sent_two) == len(ids)
            for message_id in ids:
                assert first.store.held_request_for_message("a", message_id) is None
                timers = second.store.timers_for_message("a", message_id)
                [scheduled] = [t for t in timers if t.timer == "scheduled_send"]
                assert scheduled.fired_at is not None
    finally:
        first.store.close()
        second.store.close()
