"""The fact vocabulary (spec/facts.schema.json) as fast lookups: which fields exist, which values fit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# durable_rules fails on events with more than ~250 properties; facts are flat and small.
MAX_FACT_FIELDS = 200

SUPPORTED_KEYWORDS = frozenset({"description", "enum", "type"})
_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
}


class FactError(ValueError):
    """A fact that is not in the vocabulary (unknown field, wrong value, too big); never classified."""


@dataclass(frozen=True)
class FieldSpec:
    """One fact field: its allowed values (enum) or its JSON type."""

    name: str
    values: frozenset[Any] | None
    types: tuple[type, ...]

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) and bool not in self.types:
            return False
        if not isinstance(value, self.types):
            return False
        return self.values is None or value in self.values

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(sorted(map(str, self.values)))
        return "a " + "/".join(t.__name__ for t in self.types)


@dataclass(frozen=True)
class Vocabulary:
    """Fact fields by name, read from the facts JSON Schema."""

    fields: Mapping[str, FieldSpec]
    required: frozenset[str]
    typed_values: Mapping[str, frozenset[tuple[type, Any]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # (type, value) pairs per enum or boolean field: one set lookup checks both (so 1 is not True).
        typed = {}
        for name, spec in self.fields.items():
            if spec.values is not None:
                typed[name] = frozenset((type(v), v) for v in spec.values)
            elif spec.types == (bool,):
                typed[name] = frozenset({(bool, True), (bool, False)})
        object.__setattr__(self, "typed_values", MappingProxyType(typed))

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> Vocabulary:
        """ValueError if a field uses a JSON Schema keyword this fast check would not enforce."""
        if schema.get("additionalProperties") is not False:
            raise ValueError("facts schema: additionalProperties must be false (a closed vocabulary)")
        fields = {}
        for name, prop in schema.get("properties", {}).items():
            unsupported = set(prop) - SUPPORTED_KEYWORDS
            if unsupported:
                raise ValueError(f"facts schema: field {name!r} uses {sorted(unsupported)}, not checked here")
            values = frozenset(prop["enum"]) if "enum" in prop else None
            if values is not None:
                types = tuple({type(v) for v in values})
            else:
                json_type = prop.get("type", "string")
                names = json_type if isinstance(json_type, list) else [json_type]
                types = tuple(t for n in names for t in _JSON_TYPES[n])
            fields[name] = FieldSpec(name, values, types)
        return cls(MappingProxyType(fields), frozenset(schema.get("required", ())))

    def fact_problems(self, fact: Any) -> list[str]:
        """Every way `fact` departs from the vocabulary (cheap: one lookup per field)."""
        if not isinstance(fact, Mapping):
            return [f"a fact is a JSON object, not {type(fact).__name__}"]
        if len(fact) > MAX_FACT_FIELDS:
            return [f"a fact has at most {MAX_FACT_FIELDS} fields, this one {len(fact)}"]
        problems = [f"missing required field {name!r}" for name in sorted(self.required - fact.keys())]
        for name, value in fact.items():
            spec = self.fields.get(name)
            if spec is None:
                problems.append(f"unknown fact field {name!r}")
            elif not spec.accepts(value):
                problems.append(f"field {name!r}: {value!r} is not {spec.describe()}")
        return problems

    def _plainly_valid(self, fact: Any) -> bool:
        """The fast path of check_fact: True when every field is a known enum/boolean value."""
        if type(fact) is not dict or len(fact) > MAX_FACT_FIELDS or not self.required <= fact.keys():
            return False
        typed = self.typed_values
        for name, value in fact.items():
            allowed = typed.get(name)
            if allowed is None or (type(value), value) not in allowed:
                return False
        return True

    def check_fact(self, fact: Any) -> None:
        """Raise FactError naming every problem of `fact`."""
        if self._plainly_valid(fact):
            return
        problems = self.fact_problems(fact)
        if problems:
            raise FactError("invalid fact: " + "; ".join(problems))
