"""Time in questions: find the dates a query talks about, as windows over memory timestamps.

"What did I cook on 13 October 2023?", "...in July 2023?", "...in June?", "...last week?" each name
a span of time. Recall uses the span as a soft signal: memories created in it rank higher; nothing
outside it is ever dropped (a user who misremembers the month still finds the memory).

Rules (English, offline, no dependencies):

* a full date ("October 13, 2023", "13 Oct 2023", "2023-10-13") -> that day, plus a few days on
  either side, since people report events a little after they happen;
* month and year ("July 2023") -> the month (+ a week of reporting slack);
* a month alone ("in June") -> that month in any year (matched on the month of the timestamp);
* a year ("in 2022") -> the year;
* relative phrases ("yesterday", "last week", "last month", "last year", "this week", "today",
  "recently") -> relative to ``now``.

A question that *asks* for a time ("when did...", "what date", "how long ago") gets no window;
``asks_when`` says so. (Preferring memories that state a time for such questions was measured on
LoCoMo and gained nothing, so ranking does not use it; the prompt builder may.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memo_shell.extract import MONTHS, WEEKDAYS

_MON = {m: i + 1 for i, m in enumerate(MONTHS)} | {m[:3]: i + 1 for i, m in enumerate(MONTHS)}
_MON["sept"] = 9
_MONTH_RE = "(" + "|".join(sorted(_MON, key=len, reverse=True)) + r")\.?"
_DAY_RE = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR_RE = r"((?:19|20)\d\d)"

_DMY = re.compile(rf"\b{_DAY_RE}\s+(?:of\s+)?{_MONTH_RE},?\s+{_YEAR_RE}\b", re.I)
_MDY = re.compile(rf"\b{_MONTH_RE}\s+{_DAY_RE},?\s+{_YEAR_RE}\b", re.I)
_ISO = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
#: Numeric dates as people type them (bench/dates.py measures these rules against dateparser,
#: which reads day-first dates month-first and costs ~10x more per question). Dots are
#: day-first wherever they are used (Germany, Central and Eastern Europe, Scandinavia,
#: Russia...); slashes and dashes are day-first in most of the world and month-first in the US,
#: so an ambiguous one (both parts <= 12) yields both days, which costs little for a soft
#: signal; year-first (Japan, China, ISO) is unambiguous.
_NUM_DOT = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.((?:19|20)\d\d|\d\d)(?![\d.]\d)")
_NUM_SLASH = re.compile(r"(?<![\d/-])(\d{1,2})([/-])(\d{1,2})\2((?:19|20)\d\d|\d\d)(?![\d/-])")
_NUM_YMD = re.compile(r"(?<![\d/.])((?:19|20)\d\d)([/.])(\d{1,2})\2(\d{1,2})(?![\d/.]\d)")
#: Switch for the benchmark's ablation (bench/ablate.py); always on otherwise.
NUMERIC_DATES = True
_MY = re.compile(rf"\b{_MONTH_RE},?\s+{_YEAR_RE}\b", re.I)
_MONTH_ALONE = re.compile(
    rf"\b(?:in|during|of|since|early|late|mid|last|this|next)\s+{_MONTH_RE}\b", re.I
)
_YEAR_ALONE = re.compile(rf"\b(?:in|during|of|since)\s+{_YEAR_RE}\b", re.I)
_ASKS_WHEN = re.compile(
    r"\b(when|what (?:date|day|time|year|month)|how long (?:ago|has|have|had|did|was)|"
    r"which (?:year|month|day|week))\b",
    re.I,
)
#: Words that, in a memory, state when something happened.
TIME_WORDS = frozenset(
    {
        "yesterday",
        "today",
        "tonight",
        "tomorrow",
        "ago",
        "week",
        "weekend",
        "month",
        "year",
        "last",
        "recently",
        "earlier",
        "morning",
        "evening",
        "night",
        "since",
        "spring",
        "summer",
        "autumn",
        "fall",
        "winter",
    }
    | set(WEEKDAYS)
    | set(MONTHS)
)

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time: [start, end) in epoch seconds, or a month of any year (``month``)."""

    start: float = 0.0
    end: float = 0.0
    month: int = 0
    label: str = ""

    def contains(self, ts: float, month_of: int = 0) -> bool:
        if self.month:
            return month_of == self.month
        return self.start <= ts < self.end


@dataclass(frozen=True, slots=True)
class TimeQuery:
    """What a question says about time."""

    windows: list[Window] = field(default_factory=list)
    asks_when: bool = False


def _day(y: int, m: int, d: int) -> datetime | None:
    try:
        return datetime(y, m, d, tzinfo=UTC)
    except ValueError:
        return None


def _month_span(y: int, m: int) -> tuple[datetime, datetime]:
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _year(text: str) -> int:
    y = int(text)
    return y + 2000 if len(text) == 2 else y


@dataclass(frozen=True, slots=True)
class NumericDate:
    """A numeric date in text and the day(s) it can mean (two when the locale is ambiguous)."""

    start: int
    end: int
    days: tuple[datetime, ...]

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


def numeric_dates(text: str) -> list[NumericDate]:
    """Every numeric date in ``text``: ``10.01.2024``, ``01/10/2024``, ``2024/01/10``, ``10-1-24``.

    Dots are read day-first; slashes and dashes day-first unless the first part cannot be a
    day (a part > 12 fixes the order), and give both readings when either
    fits. Impossible dates (``31.02.2024``) are skipped.
    """
    found: list[NumericDate] = []
    for m in _NUM_YMD.finditer(text):
        day = _day(int(m[1]), int(m[3]), int(m[4]))
        if day is not None:
            found.append(NumericDate(m.start(), m.end(), (day,)))
    taken = [(d.start, d.end) for d in found]
    for m in _NUM_DOT.finditer(text):
        day = _day(_year(m[3]), int(m[2]), int(m[1]))
        if day is not None and not any(a < m.end() and m.start() < b for a, b in taken):
            found.append(NumericDate(m.start(), m.end(), (day,)))
    for m in _NUM_SLASH.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        a, b, y = int(m[1]), int(m[3]), _year(m[4])
        readings = [_day(y, b, a), _day(y, a, b)]  # day-first, then month-first
        days = tuple(dict.fromkeys(d for d in readings if d is not None))
        if days:
            found.append(NumericDate(m.start(), m.end(), days))
    return found


def parse(query: str, now: datetime | None = None) -> TimeQuery:
    """The time windows a query mentions (see the module docstring for the rules)."""
    text = query[:2000]
    now = now or datetime.now(UTC)
    windows: list[Window] = []
    spans: list[tuple[int, int]] = []

    def taken(match: re.Match[str]) -> bool:
        return any(a < match.end() and match.start() < b for a, b in spans)

    def add_day(when: datetime | None, match: re.Match[str] | NumericDate) -> None:
        if when is None:
            return
        spans.append((match.start(), match.end()) if isinstance(match, re.Match) else match.span)
        start = when - timedelta(days=3)
        windows.append(
            Window(
                start.timestamp(),
                (when + timedelta(days=4)).timestamp(),
                label=when.date().isoformat(),
            )
        )

    for m in _DMY.finditer(text):
        add_day(_day(int(m[3]), _MON[m[2].lower()], int(m[1])), m)
    for m in _MDY.finditer(text):
        if not taken(m):
            add_day(_day(int(m[3]), _MON[m[1].lower()], int(m[2])), m)
    for m in _ISO.finditer(text):
        if not taken(m):
            add_day(_day(int(m[1]), int(m[2]), int(m[3])), m)
    if NUMERIC_DATES:
        for day in numeric_dates(text):
            if not any(a < day.end and day.start < b for a, b in spans):
                for when in day.days:
                    add_day(when, day)
    for m in _MY.finditer(text):
        if taken(m):
            continue
        spans.append(m.span())
        start, end = _month_span(int(m[2]), _MON[m[1].lower()])
        windows.append(
            Window(
                start.timestamp(),
                (end + timedelta(days=7)).timestamp(),
                label=f"{MONTHS[start.month - 1].capitalize()} {start.year}",
            )
        )
    for m in _MONTH_ALONE.finditer(text):
        word = m[1].lower()
        if taken(m) or (word == "may" and m[0].split()[0].lower() not in ("in", "during", "of")):
            continue
        spans.append(m.span())
        windows.append(Window(month=_MON[word], label=MONTHS[_MON[word] - 1].capitalize()))
    for m in _YEAR_ALONE.finditer(text):
        if taken(m):
            continue
        y = int(m[1])
        windows.append(
            Window(
                datetime(y, 1, 1, tzinfo=UTC).timestamp(),
                datetime(y + 1, 1, 8, tzinfo=UTC).timestamp(),
                label=str(y),
            )
        )
    low = text.lower()
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    relative = {
        "yesterday": (today - timedelta(days=1), today),
        "today": (today, today + timedelta(days=1)),
        "last week": (today - timedelta(days=14), today),
        "this week": (today - timedelta(days=7), today + timedelta(days=1)),
        "last month": (today - timedelta(days=62), today),
        "this month": (today.replace(day=1), today + timedelta(days=1)),
        "last year": (
            today.replace(year=today.year - 1, month=1, day=1),
            today.replace(month=1, day=1),
        ),
        "recently": (today - timedelta(days=30), today + timedelta(days=1)),
    }
    for phrase, (start, end) in relative.items():
        if re.search(rf"\b{phrase}\b", low):
            windows.append(Window(start.timestamp(), end.timestamp(), label=phrase))
    return TimeQuery(windows, bool(_ASKS_WHEN.search(text)))
