"""Dates named in a search question: the periods they stand for, and what is not a date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from repository.query_dates import MAX_PERIODS, query_periods


def _days(query: str) -> list[tuple[date, date]]:
    return [(start.date(), end.date()) for start, end in query_periods(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What did Melanie paint on October 13, 2023?", [(date(2023, 10, 13), date(2023, 10, 14))]),
        ("What game did Nate play on 9 October, 2022?", [(date(2022, 10, 9), date(2022, 10, 10))]),
        ("the 13th of Oct. 2023", [(date(2023, 10, 13), date(2023, 10, 14))]),
        ("notes from 2024-02-29", [(date(2024, 2, 29), date(2024, 3, 1))]),
        ("What did John host in May 2023?", [(date(2023, 5, 1), date(2023, 6, 1))]),
        ("budget for December, 2023", [(date(2023, 12, 1), date(2024, 1, 1))]),
        ("invoices of 2023-11", [(date(2023, 11, 1), date(2023, 12, 1))]),
        ("Which performances did John achieve in 2023?", [(date(2023, 1, 1), date(2024, 1, 1))]),
        ("from 2022-01-05 to 2022-02", [(date(2022, 1, 5), date(2022, 1, 6)), (date(2022, 2, 1), date(2022, 3, 1))]),
    ],
)
def test_dates_become_utc_periods(query, expected):
    assert _days(query) == expected
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in query_periods(query))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "What did we do in June?",  # no year: no period
        "Room 404, 12 people",
        "Feb 30, 2023",  # impossible day
        "2023-13",  # impossible month
        "call me at 5551234567",
        "version 3000",
    ],
)
def test_text_without_a_whole_date_names_no_period(query):
    assert query_periods(query) == []


def test_a_day_is_not_also_read_as_its_year():
    assert _days("on 8 May, 2023") == [(date(2023, 5, 8), date(2023, 5, 9))]


def test_periods_are_bounded():
    query = " ".join(f"{year}" for year in range(2000, 2020))
    assert len(query_periods(query)) == MAX_PERIODS
    assert query_periods(query)[0] == (datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC))
