"""Turn a timestamp column in any common encoding into int64 UTC epoch nanoseconds.

Encodings understood:

- datetimes already typed (zone-aware ones are converted to UTC, naive ones localised);
- epoch numbers, whose unit is chosen from the largest absolute value in the column:
  below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds
  (each cut-off is year 5138 in the smaller unit and March 1973 in the larger one, so any
  timestamp between 1973 and 5138 is read right); fractions are kept, and float text with
  an exponent (``1.7041878e+18`` as pandas writes a float column of epoch nanoseconds,
  ``1.7041878e+09`` seconds) is read the same way; float nanoseconds, exact only to a few
  hundred ns, are rounded to whole microseconds;
- whole numbers that all look like calendar digits, ``YYYYMMDD`` (19000101..21001231) or
  ``YYYYMMDDhhmmss``, are read as local dates rather than epochs (as epoch seconds they
  would all fall in August 1970);
- text: ISO 8601 with or without ``Z``/offset, and other layouts pandas can infer from the
  first row (``01.02.2024 22:00:00.000``, ``2024.01.02 09:30``, ``01/02/2024 9:30``).
  Day/month order: ``dd.mm.yyyy`` (dots, year last) is tried day-first, slashes month-first;
  the other order is tried when the first does not fit every row.

Naive times are UTC unless ``tz`` (an IANA zone) is given, then they are local times in that
zone. Times that do not exist (the hour skipped when clocks go forward) move forward to the
first instant after the gap. Times that occur twice (clocks going back) are resolved from the
file's order, as pandas' ``ambiguous="infer"`` does: in a file sorted by local time the first
pass through the repeated hour is daylight time and the second standard time. When the order
cannot tell (the hour appears once), a DataError names the first ambiguous row. Zone-aware
inputs and epochs ignore ``tz``: they already say which instant they mean.
"""

from __future__ import annotations

import re
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.tseries.api import guess_datetime_format

from stratforge.errors import DataError

#: (upper bound of max |value|, unit) for epoch numbers; above the last bound: nanoseconds.
EPOCH_UNIT_CUTOFFS: tuple[tuple[float, str], ...] = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_CALENDAR_DIGITS = ((19000101, 21001231, "%Y%m%d"),
                    (19000101000000, 21001231235959, "%Y%m%d%H%M%S"))
_NAT = np.iinfo(np.int64).min
_TEXT = pd.StringDtype("pyarrow")  # vectorised string methods
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_OFFSET_AT_END = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d\d(?::?\d\d)?)$"
_DAY_MONTH_YEAR = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{4}")
_READABLE_HINT = ("Write timestamps as ISO 8601 (2024-01-02 09:30:00, optionally ending in Z "
                  "or an offset such as +01:00) or as epoch seconds/ms/us/ns, or fix the row")


def check_timezone(tz: str | None, source: str) -> None:
    """Raise DataError unless ``tz`` is None or a known IANA time zone name."""
    if tz is None:
        return
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(f"{source}: unknown time zone {tz!r} (rule: IANA time zone). Give a "
                        "name such as America/Chicago, Europe/London or UTC",
                        source=source, rule="time zone") from exc


def epoch_unit(max_abs: float) -> str:
    """The epoch unit ('s', 'ms', 'us' or 'ns') implied by a column's largest |value|."""
    for bound, unit in EPOCH_UNIT_CUTOFFS:
        if max_abs < bound:
            return unit
    return "ns"


def combine_date_time(date: pd.Series, time: pd.Series) -> pd.Series:
    """Text ``"<date> <time>"`` from separate date and time columns.

    A time column of bare digits (``930``, ``0930``, ``093000``) gets its colons back.
    """
    day = date.astype(_TEXT).str.strip()
    clock = time.astype(_TEXT).str.strip()
    present = clock.dropna()
    if len(present) and present.str.fullmatch(r"\d{1,6}").all():
        width = 4 if present.str.len().max() <= 4 else 6
        padded = clock.str.zfill(width)
        clock = padded.str[0:2] + ":" + padded.str[2:4]
        if width == 6:
            clock = clock + ":" + padded.str[4:6]
    return day + " " + clock


def timestamps_to_utc_ns(values: pd.Series, *, tz: str | None, source: str) -> np.ndarray:
    """int64 UTC epoch nanoseconds of ``values``; missing entries become NaT.

    Raises DataError naming the first row that cannot be read, the first ambiguous local time,
    or a time outside pandas' nanosecond range (1677-2262).
    """
    check_timezone(tz, source)
    values = values.reset_index(drop=True)
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _utc_ns(values, source)
    if pd.api.types.is_datetime64_dtype(dtype):
        return _utc_ns(_localize(values, tz, source), source)
    if pd.api.types.is_bool_dtype(dtype):
        raise _unreadable(source, 0, values.iloc[0], "a number or date text")
    if pd.api.types.is_numeric_dtype(dtype):
        return _from_numbers(values, tz, source)
    text = values.astype(_TEXT).str.strip()
    text = text.mask(text == "")
    present = text.notna().to_numpy()
    if not present.any():
        return np.full(len(text), _NAT, dtype=np.int64)
    if _NUMBER.fullmatch(text[present].iloc[0]):
        return _from_numbers(_text_to_numbers(text, present, source), tz, source)
    return _utc_ns(_localize_if_naive(_parse_text(text, present, source), tz, source), source)


def _text_to_numbers(text: pd.Series, present: np.ndarray, source: str) -> pd.Series:
    """Numbers from digit text, int64 when every entry is whole (no float rounding of ns)."""
    arrow = pa.array(text.array)
    for kind, nullable in ((pa.int64(), pd.Int64Dtype()), (pa.float64(), pd.Float64Dtype())):
        try:
            return pd.Series(pc.cast(arrow, kind).to_pandas(types_mapper=lambda _, n=nullable: n))
        except pa.ArrowInvalid:
            continue
    coerced = pd.to_numeric(text, errors="coerce")
    i = int(np.argmax(coerced.isna().to_numpy() & present))
    raise _unreadable(source, i, text.iat[i], "a number like the first row")


def _from_numbers(values: pd.Series, tz: str | None, source: str) -> np.ndarray:
    present = values.notna().to_numpy()
    if pd.api.types.is_integer_dtype(values.dtype):
        raw = values.to_numpy(dtype=np.int64, na_value=0)
    else:
        raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = present & ~np.isfinite(raw)
        if bad.any():
            i = int(np.argmax(bad))
            raise _unreadable(source, i, raw[i], "a finite number")
    out = np.full(len(raw), _NAT, dtype=np.int64)
    if not present.any():
        return out
    calendar = _calendar_digits(raw[present])
    if calendar is not None:
        out[present] = _utc_ns(_localize(calendar, tz, source), source)
        return out
    unit = epoch_unit(float(np.abs(raw[present]).max()))
    factor = _NS_PER_UNIT[unit]
    limit = np.iinfo(np.int64).max // factor
    too_big = present & (np.abs(raw) > limit)
    if too_big.any():
        i = int(np.argmax(too_big))
        raise _out_of_range(source, i, f"{raw[i]} (read as epoch {unit})")
    if raw.dtype == np.int64:
        out[present] = raw[present] * factor
    elif unit == "ns":
        # a float64 near 1.7e18 is only exact to 256 ns: keep whole microseconds
        out[present] = np.round(raw[present] / 1_000).astype(np.int64) * 1_000
    else:
        whole = np.floor(raw[present])  # split so that 1704187860.25 s is exact in ns
        fraction = np.round((raw[present] - whole) * factor).astype(np.int64)
        out[present] = whole.astype(np.int64) * factor + fraction
    return out


def _calendar_digits(numbers: np.ndarray) -> pd.Series | None:
    if numbers.dtype != np.int64 and not np.array_equal(numbers, np.floor(numbers)):
        return None
    low, high = numbers.min(), numbers.max()
    for first, last, fmt in _CALENDAR_DIGITS:
        if first <= low and high <= last:
            text = pd.Series(numbers.astype(np.int64)).astype(str)
            try:
                return pd.to_datetime(text, format=fmt)
            except ValueError:
                return None
    return None


def _candidate_formats(sample: str) -> list[str]:
    match = _DAY_MONTH_YEAR.match(sample)
    orders = [False] if match is None else [match.group(1) == ".", match.group(1) != "."]
    formats = [guess_datetime_format(sample, dayfirst=dayfirst) for dayfirst in orders]
    return list(dict.fromkeys([f for f in formats if f] + ["ISO8601"]))


def _parse_text(text: pd.Series, present: np.ndarray, source: str) -> pd.Series:
    formats = _candidate_formats(text[present].iloc[0])
    for fmt in formats:
        parsed = _parse_with(text, fmt)
        if parsed is not None:
            return parsed
    coerced = _try_to_datetime(text, formats[0], errors="coerce")
    missing = coerced.isna().to_numpy() if coerced is not None else np.ones(len(text), bool)
    i = int(np.argmax(missing & present))
    raise _unreadable(source, i, text.iat[i], f"format {formats[0]} of the first row")


def _parse_with(text: pd.Series, fmt: str) -> pd.Series | None:
    """Parse with ``fmt``; day-month-year text is first rewritten to ISO (the fast path)."""
    match = re.fullmatch(r"%([dm])([./-])%([dm])\2%Y(.*)", fmt)
    if match and match.group(1) != match.group(3):
        sep, rest = re.escape(match.group(2)), match.group(4)
        order = r"\3-\2-\1" if match.group(1) == "d" else r"\3-\1-\2"
        iso = text.str.replace(rf"^(\d\d){sep}(\d\d){sep}(\d{{4}})", order, regex=True)
        parsed = _try_to_datetime(iso, "%Y-%m-%d" + rest)
        if parsed is not None:
            return parsed
    return _try_to_datetime(text, fmt)


def _try_to_datetime(text: pd.Series, fmt: str, errors: str = "raise") -> pd.Series | None:
    """``pd.to_datetime`` with ``fmt``, or None if a row does not fit.

    Rows with different UTC offsets (a zone's summer and winter time) are read as UTC, but
    only when every row carries an offset: naive rows are never silently taken as UTC.
    """
    try:
        return pd.to_datetime(text, format=fmt, errors=errors)
    except ValueError:
        pass
    has_offset = pc.match_substring_regex(pa.array(text.dropna().array), _OFFSET_AT_END)
    if not pc.all(has_offset).as_py():
        return None
    try:
        return pd.to_datetime(text, format=fmt, errors=errors, utc=True)
    except ValueError:
        return None


def _localize_if_naive(stamps: pd.Series, tz: str | None, source: str) -> pd.Series:
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        return stamps
    return _localize(stamps, tz, source)


def _localize(naive: pd.Series, tz: str | None, source: str) -> pd.Series:
    if tz is None:
        return naive.dt.tz_localize("UTC")
    try:
        return naive.dt.tz_localize(tz, ambiguous="infer", nonexistent="shift_forward")
    except ValueError:
        marked = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        i = int(np.argmax((marked.isna() & naive.notna()).to_numpy()))
        raise DataError(
            f"{source} row {i + 1}: local time {naive.iat[i]} occurs twice in {tz} (clocks go "
            "back) and the order of the rows does not tell which one is meant (rule: "
            "unambiguous local time). Give the times in UTC or with a UTC offset",
            source=source, row=i + 1, rule="unambiguous local time") from None


def _utc_ns(aware: pd.Series, source: str) -> np.ndarray:
    utc = aware.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return utc.dt.as_unit("ns").to_numpy().view(np.int64)
    except pd.errors.OutOfBoundsDatetime:
        outside = ((utc < pd.Timestamp.min) | (utc > pd.Timestamp.max)).to_numpy()
        i = int(np.argmax(outside))
        raise _out_of_range(source, i, str(utc.iat[i])) from None


def _unreadable(source: str, i: int, value: object, expected: str) -> DataError:
    return DataError(f"{source} row {i + 1}: cannot read timestamp {value!r} (rule: readable "
                     f"timestamp; expected {expected}). {_READABLE_HINT}",
                     source=source, row=i + 1, rule="readable timestamp")


def _out_of_range(source: str, i: int, value: str) -> DataError:
    return DataError(f"{source} row {i + 1}: timestamp {value} is outside 1677-2262 (rule: "
                     "timestamp in range). Check the epoch unit or fix the row",
                     source=source, row=i + 1, rule="timestamp in range")
