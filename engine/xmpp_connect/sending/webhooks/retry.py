"""When to try a webhook delivery again: exponential backoff with jitter, Retry-After, a bounded schedule."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (from 1) failing waits ``first_delay * factor**(n-1)`` capped at ``max_delay``, each spread
    by +-``jitter`` (a fraction), or what the receiver's Retry-After asks (capped too). After
    ``give_up_after`` seconds since the first attempt the event is dead. ``timeout``: one attempt's bound."""

    first_delay: float = 5.0
    factor: float = 2.0
    max_delay: float = 3600.0
    give_up_after: float = 86400.0
    jitter: float = 0.2
    timeout: float = 10.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, failures: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        asked = _retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.max_delay)
        base = min(self.first_delay * self.factor ** (failures - 1), self.max_delay)
        return max(0.0, base * (1.0 + self.jitter * (2.0 * self.random() - 1.0)))


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
