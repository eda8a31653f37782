"""Frozen dataclass instances built with one dict update, for the records built per event: the generated
``__init__`` of a frozen dataclass writes each field through ``object.__setattr__``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class FrozenBuilder(Generic[T]):
    """Builds ``cls(**values)``: an equal object with the same attributes in the same order, still frozen.
    Missing required fields and unknown names raise TypeError as the constructor does. Only for plain frozen
    dataclasses: no ``__post_init__``, no ``init=False`` fields, no slots."""

    def __init__(self, cls: type[T]) -> None:
        declared = fields(cls)  # type: ignore[arg-type]
        if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not all(f.init for f in declared):
            raise TypeError(f"{cls.__name__} is not a plain frozen dataclass")
        self._cls = cls
        self._names = frozenset(f.name for f in declared)
        self._required = frozenset(
            f.name for f in declared if f.default is MISSING and f.default_factory is MISSING
        )
        self._template = {f.name: None if f.default is MISSING else f.default for f in declared}
        self._factories: dict[str, Callable[[], Any]] = {
            f.name: f.default_factory for f in declared if f.default_factory is not MISSING
        }

    def __call__(self, **values: Any) -> T:
        names = values.keys()
        if not self._required <= names <= self._names:
            raise TypeError(f"{self._cls.__name__}: missing {sorted(self._required - names)}, "
                            f"unknown {sorted(names - self._names)}")
        instance = object.__new__(self._cls)
        state = instance.__dict__
        state.update(self._template)
        for name, factory in self._factories.items():
            if name not in values:
                state[name] = factory()
        state.update(values)
        return instance
