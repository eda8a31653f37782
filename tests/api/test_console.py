"""The evidence console over HTTP: sign-in through a form gives an HttpOnly, SameSite=Strict cookie scoped to
/console; pages show the signed-in tenant's messages, ladder, health, dead letters and redacted raw stanzas,
and nothing of another tenant."""

from __future__ import annotations

from typing import Any

from api_helpers import TOKENS, auth, wait_for
from starlette.testclient import TestClient


def send(client: TestClient, tenant: str, key: str, to: str) -> str:
    body = {"idempotency_key": key, "content": {"body": "console check"},
            "target_endpoint": {"endpoint_type": "bare_jid", "value": to}}
    answer = client.post("/xmpp/send", json=body, headers=auth(tenant))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["xmpp_message_id"])


def displayed(client: TestClient, tenant: str, message_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = client.get(f"/xmpp/messages/{message_id}/assessment", headers=auth(tenant)).json()
        return found if found["subclass"] == "success.displayed_by_client" else None

    return wait_for(probe)


def sign_in(client: TestClient, tenant: str) -> Any:
    return client.post("/console/sign-in", data={"token": TOKENS[f"TOKEN_{tenant.upper()}"]},
                       follow_redirects=False)


def test_without_a_session_the_console_shows_only_the_sign_in_form(client: TestClient) -> None:
    send(client, "a", "c0", "displayed@sandbox.invalid")
    page = client.get("/console")
    assert page.status_code == 200
    assert '<form class="signin" method="post" action="/console/sign-in">' in page.text
    assert "xmppmsg_" not in page.text
    assert client.get("/console/messages/xmppmsg_x", follow_redirects=False).status_code == 303
    refused = client.post("/console/sign-in", data={"token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 401 and "not valid" in refused.text and "set-cookie" not in refused.headers


def test_sign_in_sets_a_private_cookie_and_shows_the_tenants_own_data(client: TestClient) -> None:
    mine = send(client, "a", "c1", "displayed@sandbox.invalid")
    theirs = send(client, "b", "c2", "displayed@sandbox.invalid")
    displayed(client, "a", mine)
    signed = sign_in(client, "a")
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert TOKENS["TOKEN_A"] not in signed.headers["set-cookie"]

    overview = client.get("/console")
    assert overview.headers["content-security-policy"].startswith("default-src 'none'")
    assert mine in overview.text and theirs not in overview.text
    assert "success.displayed_by_client" in overview.text and "sandbox-a" in overview.text
    assert 'id="dead-letters"' in overview.text and "connected" in overview.text

    ladder = client.get(f"/console/messages/{mine}")
    assert ladder.status_code == 200
    for event in ("notification.attempt.accepted_by_adapter", "notification.endpoint.accepted",
                  "interaction.notification.opened"):
        assert f'data-event="{event}"' in ladder.text
    assert 'data-strength="strong"' in ladder.text and "/console/raw/raw_" in ladder.text
    assert client.get(f"/console/messages/{theirs}").status_code == 404

    ref = ladder.text.split("/console/raw/", 1)[1].split('"', 1)[0]
    raw = client.get(f"/console/raw/{ref}")
    assert raw.status_code == 200 and "redacted" in raw.text and "console check" not in raw.text

    out = client.post("/console/sign-out", follow_redirects=False)
    assert out.status_code == 303
    assert "signin" in client.get("/console").text
