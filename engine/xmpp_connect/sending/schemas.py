"""The §4.2 action types and their request schemas (spec/actions): what a well-formed request is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker

from xmpp_connect.policy.paths import default_policy_dir
from xmpp_connect.store.idempotency import payload_hash

SEND_ACTIONS = frozenset(
    {
        "notification.send",
        "notification.send_reminder",
        "notification.schedule",
        "interaction.request_acknowledgement",
        "interaction.send_command_prompt",
        "feed.publish_item",
    }
)
SYNC_ACTIONS = frozenset(
    {"notification.register_tracking_context", "recipient.suppress", "recipient.unsuppress"}
)
ACTION_TYPES = SEND_ACTIONS | SYNC_ACTIONS | {"notification.cancel"}
HASH_EXCLUDED = ("request_id", "requested_at")


class InvalidAction(ValueError):
    """The request is malformed; ``errors`` are (field, message) pairs that never quote values."""

    def __init__(self, errors: list[tuple[str, str]], status: int = 422) -> None:
        super().__init__("invalid action request")
        self.errors = errors
        self.status = status


def spec_dir() -> Path:
    """spec/ inside the wheel (``_policy/spec``) or in the checkout."""
    return default_policy_dir() / "spec"


def request_digest(request: Mapping[str, Any]) -> str:
    """The idempotency hash of a request: its payload without the per-delivery fields."""
    return payload_hash({k: v for k, v in request.items() if k not in HASH_EXCLUDED})


class ActionSchemas:
    """The request schemas of spec/actions, one validator per action type.

    jsonschema (Python) is the reference and words the errors; jsonschema-rs (compiled, ~80x faster) only
    answers "valid?" first, so a well-formed request never pays for the Python walk. Where the two disagree on
    a request the Python validator accepts (a format only jsonschema-rs checks), the Python answer stands."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or spec_dir() / "actions"
        docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in directory.glob("*.schema.json")}
        inlined = {
            name.removesuffix(".schema.json"): _inline_refs(doc, name, docs) for name, doc in docs.items()
        }
        self.validators = {
            name: Draft202012Validator(schema, format_checker=FormatChecker())
            for name, schema in inlined.items()
        }
        self.fast = {
            name: jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
            for name, schema in inlined.items()
        }

    def validate(self, request: Mapping[str, Any], schema: str | None = None) -> str:
        """The action type of a well-formed request, else InvalidAction naming the failing fields.

        ``schema`` overrides the action type's own schema (``xmpp.send`` for the standalone send)."""
        action_type = request.get("action_type")
        if not isinstance(action_type, str) or not action_type:
            raise InvalidAction([("action_type", "is required")])
        if action_type not in ACTION_TYPES:
            raise InvalidAction([("action_type", f"unsupported; one of {sorted(ACTION_TYPES)}")])
        errors = list(dict.fromkeys(self.errors(schema or action_type, request)))
        if errors:
            raise InvalidAction(errors)
        return action_type

    def errors(self, schema: str, request: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(field, message) for each violation, the field as a dotted path; values are never quoted."""
        if self.fast[schema].is_valid(request):
            return []
        validator = self.validators[schema]
        out = []
        for error in sorted(validator.iter_errors(request), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "required":
                missing = next((f for f in error.validator_value if f not in error.instance), "")
                out.append((".".join(x for x in (path, missing) if x), "is required"))
            elif error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                out.append((".".join(x for x in (path, extra[0] if extra else "") if x), "is not allowed"))
            elif error.validator == "anyOf" and error.schema is not None and _is_content_rule(error.schema):
                out.append(("content", "content or template_ref is required"))
            else:
                out.append((path or "", f"fails '{error.validator}'"))
        return out


def _inline_refs(node: Any, current: str, docs: Mapping[str, Any]) -> Any:
    """The schema with every ``file#/pointer`` $ref replaced by its target (validation is ~5x faster)."""
    if isinstance(node, list):
        return [_inline_refs(item, current, docs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        file, _, pointer = ref.partition("#")
        file = file or current
        target: Any = docs[file]
        for part in filter(None, pointer.split("/")):
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        resolved = _inline_refs(target, file, docs)
        return {"allOf": [resolved, _inline_refs(rest, current, docs)]} if rest else resolved
    return {k: _inline_refs(v, current, docs) for k, v in node.items() if k not in ("$id", "$defs")}


def _is_content_rule(schema: Mapping[str, Any]) -> bool:
    return any("template_ref" in alt.get("required", ()) for alt in schema.get("anyOf", ()))
