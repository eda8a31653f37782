"""Stored timestamp text: the format every stored row and index already holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from xmpp_connect.store.timestamps import from_text, to_text

OLD_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, 5, 120_000, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(1970, 1, 1, tzinfo=timezone(timedelta(0), "GMT")),
    ],
)
def test_to_text_matches_the_strftime_format_it_replaced(moment):
    text = to_text(moment)
    assert text == moment.astimezone(UTC).strftime(OLD_FORMAT)
    assert from_text(text) == moment


@pytest.mark.parametrize("moment", [datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                                    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
                                    datetime(2026, 12, 5, 0, 8, 48, 738_853, tzinfo=UTC)])
def test_to_text_matches_the_isoformat_text_it_replaced(moment):
    assert to_text(moment) == moment.isoformat(timespec="microseconds")[:-6] + "Z"


def test_to_text_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        to_text(datetime(2026, 1, 1, 12, 0))


def test_to_text_over_many_minutes_is_the_isoformat_text() -> None:
    """The remembered minutes (emptied when full) give the text ``isoformat`` gives, in and across them."""
    rnd = random.Random(5)
    start = datetime(2026, 12, 5, 4, 59, 59, 999_999, tzinfo=UTC)
    zones = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    for step in range(5_000):
        moment = start + timedelta(microseconds=rnd.randint(0, 10**11) if step % 2 else step)
        moment = moment.replace(microsecond=0) if step % 5 == 0 else moment
        moment = moment.astimezone(zones[step % 3])
        assert to_text(moment) == moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
