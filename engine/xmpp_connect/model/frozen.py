"""Frozen dataclasses whose instances are built with one dict update, for the records built per event: the
generated ``__init__`` of a frozen dataclass writes each field through ``object.__setattr__``."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


_NOT_GIVEN = object()
"""The default of a parameter whose field has a default factory (called when the argument is not given)."""


def dict_init(cls: type[T]) -> type[T]:
    """Class decorator over ``@dataclass(frozen=True)``: the generated ``__init__`` (same parameters, same
    defaults and default factories) sets the instance's dict in one step instead of one
    ``object.__setattr__`` per field, for about half the instructions. The same objects (fields, order,
    equality, hash, still frozen). Only for plain frozen dataclasses: no ``__post_init__``, no ``init=False``
    fields, no slots."""
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
