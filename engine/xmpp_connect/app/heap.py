"""The served process's garbage collection: start-up's heap frozen, young objects collected less often."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between two collections of the youngest generation (CPython's default: 700).
At 700 the collector ran ~100 times per 1,000 sends and walked each in-flight send's objects, which are
alive anyway; at 10,000, ~4 times (bench/README.md, "Sixth round")."""


def freeze_start_up_heap() -> None:
    """What start-up built (modules, config, policy, the rule engine, the providers) lives as long as the
    process: collected once, then moved out of the collector's generations, so that each later full
    collection walks only what was made since instead of that whole heap again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
