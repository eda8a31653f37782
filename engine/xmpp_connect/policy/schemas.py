"""The JSON Schemas of the tables (spec/*.schema.json) and validation that reports file:line problems."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from xmpp_connect.policy.problems import Problem
from xmpp_connect.policy.yaml_source import YamlDocument

TABLE_SCHEMAS: Mapping[str, str] = {
    "rules": "rules.schema.json",
    "scenarios": "scenarios.schema.json",
    "stanza_errors": "stanza_errors.schema.json",
    "grades": "grades.schema.json",
    "commands": "commands.schema.json",
    "precedence": "precedence.schema.json",
    "descriptor": "descriptor.schema.json",
    "invariants": "invariants.schema.json",
    "quality": "quality.schema.json",
}
FACTS_SCHEMA = "facts.schema.json"

_UNEXPECTED = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class SchemaSet:
    """One validator per table kind, plus the facts schema."""

    validators: Mapping[str, Draft202012Validator]
    facts: Mapping[str, Any]

    def validate(self, table: str, doc: YamlDocument) -> list[Problem]:
        """Every schema violation of `doc`, located on the offending node's line."""
        errors = sorted(self.validators[table].iter_errors(doc.data), key=lambda e: list(e.absolute_path))
        return [doc.problem(_error_path(error), _error_message(error)) for error in errors]


def load_schemas(directory: Path, fallback: Path | None = None) -> SchemaSet:
    """Read every table schema and the facts schema from `directory`, resolving refs between them; a schema
    `directory` lacks (an older policy's spec/, e.g. before invariants) is read from `fallback`."""
    contents = {name: json.loads(_schema_path(directory, fallback, name).read_text(encoding="utf-8"))
                for name in (*TABLE_SCHEMAS.values(), FACTS_SCHEMA)}
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in contents.values()
    )
    validators = {table: Draft202012Validator(contents[name], registry=registry)
                  for table, name in TABLE_SCHEMAS.items()}
    return SchemaSet(validators, contents[FACTS_SCHEMA])


def _schema_path(directory: Path, fallback: Path | None, name: str) -> Path:
    own = directory / name
    return fallback / name if fallback is not None and not own.is_file() else own


def _error_path(error: ValidationError) -> list[str | int]:
    """Where the error is; for an unexpected property, the property itself rather than its parent."""
    path = list(error.absolute_path)
    unexpected = error.validator in ("additionalProperties", "unevaluatedProperties")
    if unexpected and isinstance(error.instance, dict):
        for name in _UNEXPECTED.findall(error.message):
            if name in error.instance:
                return [*path, name]
    return path


def _error_message(error: ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    message = error.message
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{where}: {message}" if where else message
