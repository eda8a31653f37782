"""A send claims its idempotency key with its result in the transaction of its records (one statement
instead of a claim and a completion): a repeat in flight is not written twice, the same operation carried
out again is a replay, and a crash between the records and the hand-over loses nothing (sandbox, SQLite;
the store's side, on SQLite and PostgreSQL: tests/store/test_store_idempotency.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api_helpers import auth, open_client, send_request, wait_for
from starlette.testclient import TestClient

from xmpp_connect.config.settings import ServiceConfig
from xmpp_connect.store import idempotency

ACCOUNT = "sandbox-a"
TO = "no-receipts@sandbox.invalid"


def _count_writes(service: Any) -> list[str]:
    """The stanza ids the sandbox account writes from now on."""
    provider = service.providers[ACCOUNT]
    written: list[str] = []
    send = provider.send_message

    def counting(message: Any) -> Any:
        written.append(message.stanza_id)
        return send(message)

    provider.send_message = counting
    return written


def _row(service: Any, key: str) -> Any:
    sql = "SELECT * FROM idempotency WHERE tenant_id = 'a' AND idempotency_key = ?"
    return service.store._one(sql, (key,))


def test_a_send_stores_its_claim_and_result_together(client: TestClient, monkeypatch: Any) -> None:
    service = client.app.state.service

    def no_completion(*args: Any) -> None:
        raise AssertionError("a send's result is stored with its claim")

    monkeypatch.setattr(service.store, "complete_operation", no_completion)
    request = send_request("together", TO)
    first = client.post("/adapter/actions", json=request, headers=auth()).json()
    assert first["accepted"] is True and first["idempotent_replay"] is False
    row = _row(service, request["idempotency_key"])
    assert row["operation_id"] == first["adapter_operation_id"] and row["completed_at"] is not None
    replay = client.post("/adapter/actions", json=request, headers=auth()).json()
    assert replay["idempotent_replay"] is True and replay["xmpp_message_id"] == first["xmpp_message_id"]


def test_a_repeat_while_the_first_waits_for_its_records_is_not_written_twice(client: TestClient) -> None:
    """The result is stored (and replayed) before the stanza is handed over: the hand-over is reserved
    first, so the repeat finds the send in flight."""
    service = client.app.state.service
    written = _count_writes(service)
    request = send_request("twice", TO)
    tenant = service.config.tenant("a")

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(service.actions.perform(tenant, request) for _ in range(2))))

    first, second = (done.result for done in client.portal.call(both))
    assert first["adapter_operation_id"] == second["adapter_operation_id"]
    assert sorted([first["idempotent_replay"], second["idempotent_replay"]]) == [False, True]
    stanza_id = idempotency.stanza_id("a", request["idempotency_key"], first["adapter_operation_id"])
    assert wait_for(lambda: service.store.outbox_entry("a", stanza_id).state == "server_acked")
    assert written == [stanza_id]


def test_the_same_operation_carried_out_again_is_a_replay(client: TestClient) -> None:
    """A send an API worker accepted, carried out again with the same operation id (the core restarted
    after its records committed): its records exist, so it is replayed, not an error, and written once."""
    service = client.app.state.service
    written = _count_writes(service)
    request = send_request("again", TO)
    tenant = service.config.tenant("a")
    at = datetime.now(UTC)
    operation_id = idempotency.operation_id("a", request["idempotency_key"], at)

    async def twice() -> list[Any]:
        return [await service.actions.perform(tenant, request, accepted_at=at, operation_id=operation_id)
                for _ in range(2)]

    first, second = (done.result for done in client.portal.call(twice))
    assert first["idempotent_replay"] is False and second["idempotent_replay"] is True
    assert first["adapter_operation_id"] == second["adapter_operation_id"] == operation_id
    assert wait_for(lambda: len(written) == 1) and len(set(written)) == 1


def test_a_crash_between_the_records_and_the_hand_over_loses_nothing(config: ServiceConfig) -> None:
    """The claim, its result and the outbox entry committed together; the service dies (here: fails and
    stops) before the hand-over, so the stanza never went out. After the restart the outbox writes it once,
    and a repeat replays the stored result with where the send is."""
    request = send_request("crash", TO)
    with open_client(config) as crashing:
        actions = crashing.app.state.service.actions
        durable = actions._durable

        async def then_crash(dispatch: Any) -> None:
            await durable(dispatch)
            raise RuntimeError("killed between the records and the hand-over")

        actions._durable = then_crash
        written = _count_writes(crashing.app.state.service)
        assert crashing.post("/adapter/actions", json=request, headers=auth()).status_code == 500
        stanza_id = _row(crashing.app.state.service, request["idempotency_key"])["stanza_id"]
        assert crashing.app.state.service.store.outbox_entry("a", stanza_id).state == "accepted"
        assert written == []
    with open_client(config) as restarted:
        service = restarted.app.state.service
        assert wait_for(lambda: service.store.outbox_entry("a", stanza_id).state == "server_acked")
        replay = restarted.post("/adapter/actions", json=request, headers=auth()).json()
        assert replay["idempotent_replay"] is True and replay["accepted"] is True
        assert replay["outbox_state"] == "server_acked"
        attempts = restarted.get(f"/xmpp/messages/{replay['xmpp_message_id']}", headers=auth()).json()
        assert len(attempts["attempts"]) == 1
