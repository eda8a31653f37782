"""Small memories of what a store wrote or read lately, so that a send repeats fewer statements."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``size`` entries (all forgotten at once when full). The store forgets every one of them when
    a write scope or a group commit is rolled back: they may describe rows that are gone."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._size:
            self._items.clear()
        self._items[key] = value

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
