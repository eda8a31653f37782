"""The store's memories keep what was put lately when full, and never answer with a value popped or
replaced."""

from __future__ import annotations

from xmpp_connect.store.recent import Recent


def test_keeps_the_latest_entries_when_full() -> None:
    recent: Recent[int, str] = Recent(4)
    for key in range(10):
        recent.put(key, f"v{key}")
    kept = [key for key in range(10) if recent.get(key) is not None]
    assert kept == [4, 5, 6, 7, 8, 9]  # the newer generation (8, 9) and the full one before it
    assert all(recent.get(key) == f"v{key}" for key in kept)


def test_a_replaced_value_wins_over_the_older_generation() -> None:
    recent: Recent[str, int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    recent.put("c", 3)  # "a" and "b" are now the older generation
    recent.put("a", 10)
    assert recent.get("a") == 10
    assert recent.pop("a") == 10
    assert recent.get("a") is None  # the older generation's copy went too


def test_pop_and_clear_forget_both_generations() -> None:
    recent: Recent[str, int] = Recent(1)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.pop("a") == 1
    assert recent.get("a") is None
    recent.put("c", 3)
    recent.clear()
    assert recent.get("b") is None and recent.get("c") is None
