"""Counts the rulesets durable_rules holds in native memory, so a test can check that each one is freed.

A deterministic stand-in for watching the process's RSS, whose growth also depends on what other threads
allocate meanwhile and on the allocator; the RSS figures are printed by ``bench/policy_memory.py``.
"""

from __future__ import annotations

from typing import Any

import durable_rules_engine
import pytest


class NativeRulesets:
    """Wraps durable_rules_engine's create/delete of rulesets (durable looks them up at each call)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.created = 0
        self.live: set[int] = set()
        self.unknown_deletes = 0
        create, delete = durable_rules_engine.create_ruleset, durable_rules_engine.delete_ruleset

        def counted_create(*args: Any) -> int:
            handle = create(*args)
            self.created += 1
            self.live.add(handle)
            return handle

        def counted_delete(handle: int) -> Any:
            if handle in self.live:
                self.live.discard(handle)
            else:
                self.unknown_deletes += 1
            return delete(handle)

        monkeypatch.setattr(durable_rules_engine, "create_ruleset", counted_create)
        monkeypatch.setattr(durable_rules_engine, "delete_ruleset", counted_delete)
