"""Small memories of what a store wrote or read lately, so that a send repeats fewer statements."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The last ``size`` to ``2 * size`` entries put, in two generations: when the newer one holds ``size``,
    it becomes the older and the older is forgotten (what was put lately survives, unlike forgetting
    everything at once). The store forgets every entry when a write scope or a group commit is rolled
    back: they may describe rows that are gone."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._older: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is None:
            return self._older.get(key)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._size:
            self._older, self._items = self._items, {}
        self._items[key] = value

    def pop(self, key: K) -> V | None:
        value = self._items.pop(key, None)
        older = self._older.pop(key, None)
        return older if value is None else value

    def clear(self) -> None:
        self._items.clear()
        self._older.clear()
