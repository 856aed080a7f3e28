"""The UTC column type's SQLite fast path writes and reads exactly what SQLAlchemy's own
SQLite DATETIME does, so rows written before and after it compare and sort alike."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from fairsub.adapters.db.types import UtcDateTime

DIALECT = sqlite.dialect()
OURS = UtcDateTime()
THEIRS = sqlite.DATETIME()

# Hypothesis takes naive bounds and applies `timezones` to what it draws.
EARLIEST, LATEST = datetime(1970, 1, 1), datetime(9998, 12, 31)  # noqa: DTZ001
moments = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moments, offsets)
def test_sqlite_text_is_sqlalchemys_format_for_the_same_instant(moment, zone):
    bind = OURS.bind_processor(DIALECT)
    theirs = THEIRS.bind_processor(DIALECT)
    assert bind is not None and theirs is not None
    text = bind(moment.astimezone(zone))
    assert text == theirs(moment.replace(tzinfo=None))


@given(moments)
def test_sqlite_text_reads_back_as_the_same_aware_utc_instant(moment):
    bind = OURS.bind_processor(DIALECT)
    read = OURS.result_processor(DIALECT, None)
    assert bind is not None and read is not None
    back = read(bind(moment))
    assert back == moment and back.tzinfo is UTC


def test_text_written_by_sqlalchemy_without_microseconds_still_reads():
    read = OURS.result_processor(DIALECT, None)
    assert read is not None
    assert read("2026-11-27 20:40:32") == datetime(2026, 11, 27, 20, 40, 32, tzinfo=UTC)


def test_a_naive_datetime_is_refused_and_none_stays_none():
    bind = OURS.bind_processor(DIALECT)
    read = OURS.result_processor(DIALECT, None)
    assert bind is not None and read is not None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 11, 27, 12, 0))  # noqa: DTZ001 - the mistake under test
    assert bind(None) is None and read(None) is None
