"""--log-format json: one JSON object per line, a request id on every line of a request, an access line per
request, ids as fields, and never a body, token, password or secret."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import TOKENS, auth, send_request
from test_webhooks import SECRET, make_config, running, settled_feed

from xmpp_connect.app.logging_setup import setup_logging


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines into a buffer; the previous handlers restored afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    buffer = io.StringIO()
    setup_logging("json", logging.DEBUG, stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def retried(buffer: io.StringIO, within_s: float = 30.0) -> None:
    """Wait until a webhook delivery has failed and logged its retry (the receiver's port is closed): the
    delivery loop runs on its own, so the service must not be stopped before it has tried once."""
    deadline = time.monotonic() + within_s
    while '"webhook retry ' not in buffer.getvalue():
        assert time.monotonic() < deadline, "no webhook retry logged"
        time.sleep(0.05)


def test_json_lines_carry_request_ids_access_lines_and_no_secrets(
    tmp_path: Path, json_log: io.StringIO
) -> None:
    body = "TOP-SECRET-BODY-5521"
    config = make_config(
        tmp_path, {"a": [{"id": "cfg", "url": "http://127.0.0.1:9/hook", "secret_env": "HOOK_SECRET"}]}
    )
    with running(config) as client:
        (hook,) = client.get("/adapter/webhooks", headers=auth()).json()["webhooks"]
        sent = client.post("/adapter/actions", json=send_request("log", "replies-ack@sandbox.invalid",
                                                                 content={"body": body}), headers=auth())
        message_id = sent.json()["xmpp_message_id"]
        settled_feed(client, [message_id], after=hook["cursor"])
        created = client.post("/adapter/webhooks", json={"url": "http://127.0.0.1:9/other"}, headers=auth())
        api_secret = created.json()["secret"]
        client.post("/adapter/actions", content=b"{" + body.encode(), headers=auth())
        client.get("/adapter/events", headers={"Authorization": "Bearer wrong-" + TOKENS["TOKEN_B"]})
        retried(json_log)
    records = lines(json_log)
    text = json_log.getvalue()
    for secret in (body, SECRET, api_secret, *TOKENS.values()):
        assert secret not in text
    access = [r for r in records if r["logger"] == "xmpp_connect.access"]
    assert {(a["http"]["method"], a["http"]["route"], a["http"]["status"]) for a in access} >= {
        ("GET", "/adapter/webhooks", 200),
        ("POST", "/adapter/actions", 202),
        ("POST", "/adapter/webhooks", 201),
        ("POST", "/adapter/actions", 400),
        ("GET", "/adapter/events", 401),
    }
    assert all(a["request_id"] for a in access)
    assert len({a["request_id"] for a in access}) == len(access), "one access line per request"
    for response in (sent, created):
        mine = [r for r in records if r.get("request_id") == response.headers["x-request-id"]]
        assert [r["logger"] for r in mine].count("xmpp_connect.access") == 1
    send_lines = [r for r in records if r.get("request_id") == sent.headers["x-request-id"]]
    assert any(r.get("message_id") == message_id for r in send_lines)
    creation = next(r for r in records if r["message"].startswith("webhook subscription created"))
    assert creation["request_id"] == created.headers["x-request-id"]
    assert (creation["tenant"], creation["subscription"]) == ("a", created.json()["id"])
    retries = [r for r in records if r["message"].startswith("webhook retry")]
    hooks = {"cfg", created.json()["id"]}
    assert retries and all(r["subscription"] in hooks and r["event_id"] and r["message_id"] for r in retries)
    assert all(r.get("message_id") != "None" for r in records)


def test_a_callers_request_id_is_kept(tmp_path: Path, json_log: io.StringIO) -> None:
    with running(make_config(tmp_path)) as client:
        response = client.get("/adapter/descriptor", headers={**auth(), "X-Request-ID": "engine-call-42"})
        odd = client.get("/adapter/descriptor", headers={**auth(), "X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] == "engine-call-42"
    assert odd.headers["x-request-id"] != "bad id\twith spaces"
    access = [r for r in lines(json_log) if r["logger"] == "xmpp_connect.access"]
    seen = {(r["request_id"], r["http"]["route"]) for r in access}
    assert ("engine-call-42", "/adapter/descriptor") in seen
