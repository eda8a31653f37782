"""The served OpenAPI document: spec/openapi.yaml with the request schemas of spec/actions/ put in.

The action JSON Schemas are the one source of every request shape: the service validates with them, and
the document carries the same schemas (their cross-file $refs inlined) under ``components/schemas`` by
action type. The standalone send bodies are derived from them: the fields the service fills in itself
are not required of the caller."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from ruamel.yaml import YAML

from xmpp_connect.sending.schemas import ActionSchemas, spec_dir

STANDALONE_REQUEST_ID = "standalone:"
STANDALONE_BODIES: dict[str, tuple[str, tuple[str, ...], Mapping[str, Any]]] = {
    # name: (action schema, fields the service fills in, extra body fields)
    "XmppSendBody": ("xmpp.send", ("action_type",), {}),
    "MucSendBody": ("notification.send", ("action_type", "request_id", "target_endpoint", "channel"), {}),
    "PubsubPublishBody": (
        "feed.publish_item",
        ("action_type", "request_id", "requested_at", "target_endpoint", "channel"),
        {"service": {"type": "string", "maxLength": 3071,
                     "description": "PubSub service JID (default: pubsub.<account domain>)"}},
    ),
}


def _body(
    schema: Mapping[str, Any], filled: Iterable[str], extra: Mapping[str, Any], request_id: Mapping[str, Any]
) -> dict[str, Any]:
    """The caller's part of a standalone request: its request_id defaults to ``standalone:<idempotency_key>``,
    so the key must also make a valid request id."""
    body = copy.deepcopy(dict(schema))
    filled = set(filled)
    body["required"] = [name for name in body.get("required", []) if name not in filled]
    key_rule = {**request_id, "maxLength": request_id["maxLength"] - len(STANDALONE_REQUEST_ID)}
    body["properties"] = {**body.get("properties", {}), **extra, "idempotency_key": key_rule}
    return body


@functools.cache
def openapi_document() -> dict[str, Any]:
    """spec/openapi.yaml as a dict with the action request schemas (served at /openapi.json)."""
    doc: dict[str, Any] = YAML(typ="safe").load((spec_dir() / "openapi.yaml").read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    actions = {
        name: {k: v for k, v in _mapping(validator.schema).items() if k != "$schema"}
        for name, validator in sorted(ActionSchemas().validators.items())
        if name != "common"
    }
    schemas.update(actions)
    for name, (base, filled, extra) in STANDALONE_BODIES.items():
        schemas[name] = _body(actions[base], filled, extra, actions["xmpp.send"]["properties"]["request_id"])
    return doc


def _mapping(schema: object) -> Mapping[str, Any]:
    """An action schema is a JSON object (jsonschema's type allows a boolean schema too)."""
    assert isinstance(schema, Mapping), "spec/actions schemas are objects"
    return schema
