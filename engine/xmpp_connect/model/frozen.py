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


_NOT_GIVEN = object()
"""The default of a parameter whose field has a default factory (called when the argument is not given)."""


def dict_init(cls: type[T]) -> type[T]:
    """Class decorator over ``@dataclass(frozen=True)``: the generated ``__init__`` (same parameters, same
    defaults and default factories) sets the instance's dict in one step instead of one
    ``object.__setattr__`` per field, for about half the instructions. The same objects (fields, order,
    equality, hash, still frozen). Only for plain frozen dataclasses, as ``FrozenBuilder``."""
    declared = fields(cls)  # type: ignore[arg-type]
    params = getattr(cls, "__dataclass_params__", None)
    hooks = hasattr(cls, "__post_init__") or hasattr(cls, "__slots__")
    plain = all(f.init for f in declared) and not hooks
    if params is None or not params.frozen or not plain:
        raise TypeError(f"{cls.__name__} is not a plain frozen dataclass")
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_NOT_GIVEN": _NOT_GIVEN}
    positional: list[str] = []
    keyword_only: list[str] = []
    factories: list[str] = []
    for f in declared:
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            parameter = f"{f.name}=_default_{f.name}"
        elif f.default_factory is not MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            parameter = f"{f.name}=_NOT_GIVEN"
            factories.append(f"    if {f.name} is _NOT_GIVEN:\n        {f.name} = _factory_{f.name}()\n")
        else:
            parameter = f.name
        (keyword_only if f.kw_only else positional).append(parameter)
    signature = ", ".join(["self", *positional, *(["*", *keyword_only] if keyword_only else [])])
    state = ", ".join(f"{f.name!r}: {f.name}" for f in declared)
    body = f"{''.join(factories)}    _set(self, '__dict__', {{{state}}})\n"
    exec(f"def __init__({signature}):\n{body}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
