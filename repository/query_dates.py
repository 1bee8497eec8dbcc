"""Calendar dates named in a search query ("on 13 October, 2023", "in May 2023", "2023-10-13", "in 2022").

Search ranks a row higher when it was created inside a period the question names: "what did we decide on
3 March, 2024?" is about that day's messages even when the words that day shared little with the question. The
periods are whole UTC days, months or years; only dates with a year count ("in June" alone names no period).
Nothing here filters: a row outside every period keeps its text score (see `search._rank`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"

# Most specific first: a span matched by one pattern is not read again by a later, coarser one.
_PATTERNS: tuple[tuple[re.Pattern[str], tuple[int, int, int | None]], ...] = (
    # (pattern, group numbers of year, month, day)
    (re.compile(rf"\b{_YEAR}-(\d{{1,2}})-(\d{{1,2}})\b"), (1, 2, 3)),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE), (3, 2, 1)),
    (re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE), (3, 1, 2)),
    (re.compile(rf"\b{_YEAR}-(\d{{1,2}})\b"), (1, 2, None)),
    (re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", re.IGNORECASE), (2, 1, None)),
    (re.compile(rf"\b{_YEAR}\b"), (1, 0, None)),
)
MAX_PERIODS = 4


def _month(text: str) -> int:
    return int(text) if text.isdigit() else _MONTHS.index(text.lower()[:3]) + 1


def query_periods(query: str) -> list[tuple[datetime, datetime]]:
    """The [start, end) UTC periods of the dates `query` names, at most MAX_PERIODS; impossible dates are skipped."""
    taken: list[tuple[int, int]] = []
    periods: list[tuple[datetime, datetime]] = []
    for pattern, (year_at, month_at, day_at) in _PATTERNS:
        for found in pattern.finditer(query):
            if any(start < found.end() and found.start() < end for start, end in taken):
                continue
            taken.append(found.span())
            year = int(found[year_at])
            try:
                if not month_at:
                    period = (datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
                else:
                    month = _month(found[month_at])
                    if day_at is None:
                        start = datetime(year, month, 1, tzinfo=UTC)
                        period = (start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC))
                    else:
                        start = datetime(year, month, int(found[day_at]), tzinfo=UTC)
                        period = (start, start + timedelta(days=1))
            except ValueError:  # 31 February, month 13: not a date, so no period
                continue
            periods.append(period)
    return periods[:MAX_PERIODS]
