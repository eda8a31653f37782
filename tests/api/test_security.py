"""§27: bearer auth, tenant isolation, problem+json for bad input, size/rate limits, no secrets in logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from api_helpers import TOKENS, OpenApiContract, auth, open_client, send_request, service_config, wait_for
from starlette.testclient import TestClient

READS = ["/adapter/descriptor", "/adapter/health", "/adapter/events", "/xmpp/channel-health"]


@pytest.mark.parametrize("path", READS)
def test_every_endpoint_needs_a_valid_bearer_token(
    client: TestClient, contract: OpenApiContract, path: str
) -> None:
    missing = client.get(path)
    contract.check(missing, path)
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
    wrong = client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and "not-a-token" not in wrong.text
    assert client.get(path, headers={"Authorization": f"Basic {TOKENS['TOKEN_A']}"}).status_code == 401
    ok = client.get(path, headers=auth())
    contract.check(ok, path)
    assert ok.status_code == 200


def test_tenant_b_can_neither_see_nor_touch_tenant_a_data(client: TestClient) -> None:
    result = client.post("/adapter/actions", json=send_request("iso"), headers=auth("a")).json()
    message_id = result["xmpp_message_id"]
    wait_for(
        lambda: (
            client.get(f"/xmpp/messages/{message_id}/assessment", headers=auth("a")).json()["category"]
            == "success"
        )
    )
    for path in (
        f"/xmpp/messages/{message_id}",
        f"/adapter/messages/{message_id}/timeline",
        f"/adapter/messages/{message_id}/assessment",
        f"/xmpp/messages/{message_id}/assessment",
    ):
        assert client.get(path, headers=auth("b")).status_code == 404, path
    b_events = client.get("/adapter/events", params={"limit": 500}, headers=auth("b")).json()["events"]
    assert all(e["xmpp_message_id"] != message_id for e in b_events)
    a_events = client.get("/adapter/events", params={"limit": 500}, headers=auth("a")).json()["events"]
    endpoint = next(e["endpoint_ref"] for e in a_events if e["xmpp_message_id"] == message_id)
    assert client.get(f"/xmpp/endpoints/{endpoint}/quality", headers=auth("b")).status_code == 404
    assert client.get(f"/xmpp/endpoints/{endpoint}/quality", headers=auth("a")).status_code == 200
    replay_by_b = client.post("/adapter/actions", json=send_request("iso"), headers=auth("b")).json()
    assert replay_by_b["adapter_operation_id"] != result["adapter_operation_id"], "keys are per tenant"
    assert (
        client.get("/adapter/health", headers=auth("b")).json()["accounts"][0]["xmpp_account_ref"]
        == "sandbox-b"
    )
    foreign = {
        "raw": "<message xmlns='jabber:client' from='x@sandbox.invalid' type='chat'><body>hi</body>"
        "</message>",
        "account": "sandbox-a",
    }
    refused = client.post("/adapter/events/provider", json=foreign, headers=auth("b"))
    assert refused.status_code == 404 and refused.json()["field"] == "account"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({k: v for k, v in send_request("m1").items() if k != "request_id"}, 422, "request_id"),
        ({**send_request("m2"), "action_type": "notification.explode"}, 422, "action_type"),
        ({**send_request("m3"), "unexpected": 1}, 422, "unexpected"),
        ({**send_request("m4"), "requested_at": "yesterday"}, 422, "requested_at"),
        ({**send_request("m5"), "options": {"request_receipt": "yes"}}, 422, "options.request_receipt"),
        ({k: v for k, v in send_request("m6").items() if k != "content"}, 422, "content"),
        ([1, 2], 422, ""),
    ],
)
def test_malformed_requests_get_problem_json_naming_the_field(
    client: TestClient, contract: OpenApiContract, body: object, status: int, field: str
) -> None:
    response = client.post("/adapter/actions", json=body, headers=auth())
    contract.check(response, "/adapter/actions", "post")
    assert response.status_code == status and response.json()["field"] == field


def test_invalid_json_is_400_and_unknown_route_is_404(client: TestClient) -> None:
    response = client.post(
        "/adapter/actions", content=b"{nope", headers={**auth(), "content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["type"].endswith("malformed-body")
    missing = client.get("/adapter/messages/xmppmsg_nope/timeline", headers=auth())
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_body_size_limit_is_413(tmp_path: Path) -> None:
    with open_client(service_config(tmp_path, max_body_bytes=2048)) as client:
        big = send_request("big", content={"body": "x" * 4096})
        response = client.post("/adapter/actions", json=big, headers=auth())
        assert response.status_code == 413 and response.json()["status"] == 413


def test_rate_limit_is_per_tenant_429(tmp_path: Path) -> None:
    with open_client(service_config(tmp_path, rate_per_second=0.01, burst=3)) as client:
        codes = [client.get("/adapter/descriptor", headers=auth("a")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/adapter/descriptor", headers=auth("a"))
        assert limited.headers["retry-after"].isdigit()
        assert client.get("/adapter/descriptor", headers=auth("b")).status_code == 200


def test_no_body_token_or_password_in_any_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret_body = "TOP-SECRET-BODY-7731"
    caplog.set_level(logging.DEBUG)
    with open_client(service_config(tmp_path)) as client:
        request = send_request("log", "replies-ack@sandbox.invalid", content={"body": secret_body})
        message_id = client.post("/adapter/actions", json=request, headers=auth()).json()["xmpp_message_id"]
        wait_for(
            lambda: (
                "interaction.acknowledgement_recorded"
                in {
                    e["event_type"]
                    for e in client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()[
                        "entries"
                    ]
                }
            )
        )
        client.post("/adapter/actions", content=b"{" + secret_body.encode(), headers=auth())
        client.get("/adapter/events", headers={"Authorization": "Bearer wrong-" + TOKENS["TOKEN_B"]})
        client.post(
            "/adapter/events/provider",
            headers=auth(),
            json={
                "raw": f"<message xmlns='jabber:client' from='u@sandbox.invalid/r'><body>{secret_body}"
                "</body></message>"
            },
        )
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "the flow logs something"
    for secret in (secret_body, "ACK", *TOKENS.values()):
        assert secret not in text
