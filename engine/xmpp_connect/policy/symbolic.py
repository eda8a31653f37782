"""Rule patterns as sets of facts, decided exactly over the vocabulary's finite domains.

Every fact field has a finite domain: its enum values or {true, false}, plus ABSENT ("not known"). A field
with an open type (string, number) gets the values the policy mentions plus one stand-in for "any other
value", which is exact for the grammar's tests (equality, in, not, not_in, exists). A pattern becomes a
union of cubes (one allowed-value set per field); `witness` searches for a fact that a rule matches, that no
earlier rule matches (first match wins) and that satisfies a premise. The search is complete: no witness
means no such fact at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xmpp_connect.policy.model import Rule
from xmpp_connect.policy.vocabulary import Vocabulary


class _Absent:
    """The value of a field a fact does not carry."""

    def __repr__(self) -> str:
        return "ABSENT"


class _Other:
    """Any value of an open-typed field that no pattern mentions."""

    def __repr__(self) -> str:
        return "OTHER"


ABSENT: Any = _Absent()
OTHER: Any = _Other()

Cube = Mapping[str, frozenset[Any]]


@dataclass(frozen=True)
class Domains:
    """Every field's finite set of possible values (ABSENT included unless the field is required)."""

    values: Mapping[str, frozenset[Any]]

    @classmethod
    def build(cls, vocabulary: Vocabulary, patterns: Iterable[Mapping[str, Any]]) -> Domains:
        mentioned: dict[str, set[Any]] = {}
        for pattern in patterns:
            _collect_values(pattern, mentioned)
        values: dict[str, frozenset[Any]] = {}
        for name, spec in vocabulary.fields.items():
            if spec.values is not None:
                domain = set(spec.values)
            elif spec.types == (bool,):
                domain = {True, False}
            else:
                domain = {*mentioned.get(name, ()), OTHER}
            if name not in vocabulary.required:
                domain.add(ABSENT)
            values[name] = frozenset(_typed(domain))
        return cls(values)

    def full(self, name: str) -> frozenset[Any]:
        return self.values[name]


def _typed(values: Iterable[Any]) -> Iterable[Any]:
    """Keep True and 1 apart: booleans are wrapped in a tuple tag, everything else as is."""
    return (_key(v) for v in values)


def _key(value: Any) -> Any:
    return ("bool", value) if isinstance(value, bool) else value


def _unkey(value: Any) -> Any:
    return value[1] if isinstance(value, tuple) and len(value) == 2 and value[0] == "bool" else value


def _collect_values(pattern: Mapping[str, Any], into: dict[str, set[Any]]) -> None:
    for name, condition in pattern.items():
        if name in ("any", "all"):
            for sub in condition:
                _collect_values(sub, into)
        elif isinstance(condition, Mapping):
            for op, value in condition.items():
                if op in ("in", "not_in"):
                    into.setdefault(name, set()).update(value)
                elif op == "not":
                    into.setdefault(name, set()).add(value)
        else:
            into.setdefault(name, set()).add(condition)


def cubes(pattern: Mapping[str, Any], domains: Domains) -> tuple[Cube, ...]:
    """The pattern as a union of cubes; an empty tuple means it matches no fact."""
    result: list[dict[str, frozenset[Any]]] = [{}]
    for name, condition in pattern.items():
        if name == "any":
            alternatives = [c for sub in condition for c in cubes(sub, domains)]
            result = [m for a in result for b in alternatives if (m := _meet(a, b, domains)) is not None]
        elif name == "all":
            for sub in condition:
                result = [m for a in result for b in cubes(sub, domains)
                          if (m := _meet(a, b, domains)) is not None]
        else:
            allowed = _allowed(name, condition, domains)
            result = [m for a in result if (m := _meet(a, {name: allowed}, domains)) is not None]
    return tuple(result)


def _allowed(name: str, condition: Any, domains: Domains) -> frozenset[Any]:
    """The values of `name` a condition accepts (same semantics as predicates.py)."""
    full = domains.full(name)
    if not isinstance(condition, Mapping):
        return full & {_key(condition)}
    allowed = full
    for op, value in condition.items():
        if op == "in":
            allowed &= {_key(v) for v in value}
        elif op == "not":
            allowed -= {_key(value)}
        elif op == "not_in":
            allowed -= {_key(v) for v in value}
        elif op == "exists":
            allowed = allowed - {ABSENT} if value else allowed & {ABSENT}
    return allowed


def _meet(a: Cube, b: Cube, domains: Domains) -> dict[str, frozenset[Any]] | None:
    merged = dict(a)
    for name, allowed in b.items():
        both = merged.get(name, domains.full(name)) & allowed
        if not both:
            return None
        merged[name] = both
    return merged


@dataclass(frozen=True)
class CompiledRules:
    """A policy's rules as cubes, in priority order, over shared domains."""

    rules: tuple[Rule, ...]
    cubes: tuple[tuple[Cube, ...], ...]
    domains: Domains

    @classmethod
    def build(cls, rules: Sequence[Rule], vocabulary: Vocabulary,
              premises: Iterable[Mapping[str, Any]] = ()) -> CompiledRules:
        domains = Domains.build(vocabulary, [*(r.when for r in rules), *premises])
        return cls(tuple(rules), tuple(cubes(r.when, domains) for r in rules), domains)

    def witness(self, index: int, premise: Mapping[str, Any]) -> dict[str, Any] | None:
        """A fact satisfying `premise` that rule `index` is the first to match, or None if there is none."""
        earlier = [c for cs in self.cubes[:index] for c in cs]
        for own in self.cubes[index]:
            for start in cubes(premise, self.domains):
                cube = _meet(own, start, self.domains)
                if cube is None:
                    continue
                found = _avoid(cube, earlier, 0, self.domains)
                if found is not None:
                    return _concrete(found, self.domains)
        return None

    def unmatched_witness(self, premise: Mapping[str, Any]) -> dict[str, Any] | None:
        """A fact satisfying `premise` that no rule matches (it becomes `unmapped`), or None."""
        every = [c for cs in self.cubes for c in cs]
        for start in cubes(premise, self.domains):
            found = _avoid(dict(start), every, 0, self.domains)
            if found is not None:
                return _concrete(found, self.domains)
        return None


def _avoid(cube: Mapping[str, frozenset[Any]], others: Sequence[Cube], start: int,
           domains: Domains) -> Mapping[str, frozenset[Any]] | None:
    """A sub-cube of `cube` disjoint from every cube of `others[start:]`, or None (depth-first, complete)."""
    for i in range(start, len(others)):
        other = others[i]
        if not _intersects(cube, other, domains):
            continue
        for name, allowed in other.items():
            rest = cube.get(name, domains.full(name)) - allowed
            if rest:
                found = _avoid({**cube, name: rest}, others, i + 1, domains)
                if found is not None:
                    return found
        return None
    return cube


def _intersects(a: Cube, b: Cube, domains: Domains) -> bool:
    return all(a.get(name, domains.full(name)) & allowed for name, allowed in b.items())


def _concrete(cube: Mapping[str, frozenset[Any]], domains: Domains) -> dict[str, Any]:
    """One fact of the cube: absent where allowed (the shortest fact), else the first value by name."""
    fact: dict[str, Any] = {}
    for name, full in domains.values.items():
        allowed = cube.get(name, full)
        if ABSENT in allowed:
            continue
        value = min(allowed, key=lambda v: (repr(type(v)), repr(v)))
        fact[name] = "<any other value>" if value is OTHER else _unkey(value)
    return fact
