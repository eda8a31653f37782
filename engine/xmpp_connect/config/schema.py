"""Config data checked against ``spec/config.schema.json``: one plain-language problem per mistake, each
naming the field path (``accounts[0].rooms[1].room_jid``), with a "did you mean" hint for unknown keys and
misspelt choices. Values are never echoed for keys that may hold secrets."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from xmpp_connect.xmpp.jids import is_valid_jid, split_jid

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SCHEMA_NAME = "config.schema.json"
FieldPath = tuple[str | int, ...]
SECRET_NAMES = ("password", "secret", "token", "dsn", "signing_key")
"""A secret is configured as ``<name>_env`` or ``<name>_file``; ``<name>`` itself is refused unread."""
QUOTED_BOOLEANS = frozenset({"yes", "no", "true", "false", "on", "off", "y", "n"})
FORMAT_TEXT = {
    "client-jid": "an account JID is user@domain or user@domain/resource",
    "domain-jid": "a bare domain such as notify.example.net is required",
    "bare-jid": "a bare JID such as ops@conference.example.net is required",
    "http-url": "an http:// or https:// URL with a host is required",
}
TYPE_TEXT = {
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "nothing (null)",
}


@dataclass(frozen=True)
class Problem:
    """One mistake in the config: where (a path into the data) and what."""

    path: FieldPath
    message: str

    @property
    def field(self) -> str:
        return field_name(self.path)

    def __str__(self) -> str:
        return f"{self.field or '(top level)'}: {self.message}"


def field_name(path: Sequence[str | int]) -> str:
    """``("accounts", 0, "rooms", 1, "room_jid")`` -> ``accounts[0].rooms[1].room_jid``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
FIELD_PATTERN = re.compile(rf"^({_NAME}(?:\.{_NAME})*): ")


def parse_field(message: str) -> FieldPath:
    """The field path a message starts with (``accounts[0].jid: ...``), or () when it names none."""
    match = FIELD_PATTERN.match(message)
    if match is None:
        return ()
    path: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", match.group(1)):
        path.append(name if name else int(index))
    return tuple(path)


def spec_path() -> Path:
    """``_policy/spec`` inside a wheel, else the checkout's ``spec/``."""
    bundled = PACKAGE_DIR / "_policy" / "spec" / SCHEMA_NAME
    return bundled if bundled.is_file() else PACKAGE_DIR.parent.parent / "spec" / SCHEMA_NAME


@cache
def config_schema() -> dict[str, Any]:
    return json.loads(spec_path().read_text(encoding="utf-8"))


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("client-jid")
    def client_jid(value: object) -> bool:
        return not isinstance(value, str) or (split_jid(value)[0] is not None and is_valid_jid(value))

    @checker.checks("domain-jid")
    def domain_jid(value: object) -> bool:
        if not isinstance(value, str):
            return True
        local, _domain, resource = split_jid(value)
        return local is None and resource is None and is_valid_jid(value)

    @checker.checks("bare-jid")
    def bare_jid(value: object) -> bool:
        if not isinstance(value, str):
            return True
        local, _domain, resource = split_jid(value)
        return local is not None and resource is None and is_valid_jid(value)

    @checker.checks("http-url")
    def http_url(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)

    return checker


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(config_schema(), format_checker=_format_checker())


def schema_problems(data: Any) -> list[Problem]:
    """Every schema problem in ``data`` (parsed YAML), in document order of their paths."""
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_explain(error))
    unique = {(p.path, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: [(0, x) if isinstance(x, int) else (1, x) for x in p.path])


def _explain(error: ValidationError) -> Iterator[Problem]:
    """Plain-language problems for one jsonschema error (``if``/``then`` branches report their own)."""
    path: FieldPath = tuple(error.absolute_path)
    kind, schema, value = error.validator, error.schema, error.instance
    expected: Any = error.validator_value
    if kind == "additionalProperties" and isinstance(value, Mapping) and isinstance(schema, Mapping):
        known = list(schema.get("properties", {}))
        for key in value:
            if key not in known:
                yield Problem((*path, str(key)), _unknown_key(str(key), known))
    elif kind == "required" and isinstance(value, Mapping):
        for key in expected:
            if key not in value:
                yield Problem((*path, key), "missing: this key is required")
    elif kind == "type":
        yield Problem(path, _wrong_type(expected, value, path))
    elif kind == "enum":
        choices = [str(c) for c in expected]
        hint = _did_you_mean(str(value), choices)
        yield Problem(path, f"must be one of {', '.join(choices)}{hint}")
    elif kind == "const":
        yield Problem(path, f"must be {expected}")
    elif kind == "format":
        name = str(expected)
        yield Problem(path, FORMAT_TEXT.get(name, f"not a valid {name}"))
    elif kind in ("minimum", "exclusiveMinimum", "maximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}[str(kind)]
        yield Problem(path, f"must be {sign} {expected}")
    elif kind == "minItems":
        yield Problem(path, f"at least {expected} entry is required")
    elif kind == "minLength":
        yield Problem(path, "must not be empty")
    elif kind == "pattern":
        yield Problem(path, _pattern_text(path))
    else:
        yield Problem(path, error.message)


def _unknown_key(key: str, known: list[str]) -> str:
    if key in SECRET_NAMES and f"{key}_env" in known:
        return f"inline secrets are not allowed; use {key}_env or {key}_file"
    return f"unknown key{_did_you_mean(key, known)}"


def _did_you_mean(given: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _wrong_type(expected: str | list[str], value: Any, path: FieldPath) -> str:
    wanted = " or ".join(TYPE_TEXT.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
    message = f"{wanted} is required, not {_describe(value, path)}"
    if "boolean" in expected and isinstance(value, str) and value.lower() in QUOTED_BOOLEANS:
        message += "; write true or false, without quotes"
    return message


def _describe(value: Any, path: FieldPath) -> str:
    """What was given: its type, and the value itself only where it cannot be a secret."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        last = str(path[-1]) if path else ""
        shown = not any(name in last for name in SECRET_NAMES) and len(value) <= 40
        return f'the string "{value}"' if shown else "a string"
    if isinstance(value, int | float):
        return f"the number {value}"
    return {"dict": "a mapping", "list": "a list"}.get(type(value).__name__, type(value).__name__)


def _pattern_text(path: FieldPath) -> str:
    last = str(path[-1]) if path else ""
    if last.endswith("_env"):
        return "an environment variable name (letters, digits, _) is required"
    if last == "nick":
        return "a nickname without '/' is required"
    if last == "schema":
        return "a lower-case SQL name (a-z, 0-9, _; not starting with a digit) is required"
    return "letters, digits, '.', '_' or '-', starting with a letter or digit"
