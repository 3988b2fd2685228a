"""A pure-Python reference of docs/COMPUTATION.md, written day by day so it can be checked by eye.

No SQL and no cleverness: every rule of the document is one small function, named after the
table or anomaly it produces. The SQL engine in `lux/compute/` is held to these results by
tests/compute/test_properties.py.

Input: sites, readings (aware `reading_at`), expected generation {site_pk: 12 values}, Params and
the as-of date D. Output (`Results`): one dict per cached table, keyed like the table's primary
key, with the table's columns (without `computed_at`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from zoneinfo import ZoneInfo

from lux.compute.params import Params

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Site:
    pk: int
    capacity_kwp: float
    region: str | None = None
    active: bool = True


@dataclass(frozen=True)
class Reading:
    site_pk: int
    reading_at: dt.datetime  # aware
    register_kwh: float
    signal_level: int | None = None
    network: str | None = None


@dataclass
class Results:
    """The cached tables, keyed by primary key; each value holds the other columns."""

    site_days: dict[tuple[int, dt.date], dict] = field(default_factory=dict)
    site_status: dict[int, dict] = field(default_factory=dict)
    anomalies: dict[tuple[int, str, dt.date], dict] = field(default_factory=dict)
    monthly_performance: dict[tuple[int, dt.date], dict] = field(default_factory=dict)
    daily_rollups: dict[tuple[str, dt.date], dict] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadingDay:
    """The readings of one site on one local day."""

    closing: Reading  # the latest reading of the day
    readings: int
    signal_sum: int
    signal_n: int


# --- days ------------------------------------------------------------------------------------


def local_day(at: dt.datetime, timezone: str) -> dt.date:
    """The local calendar date of an instant in the fleet's time zone."""
    if at.tzinfo is None:
        raise ValueError("reading_at must be aware")
    return at.astimezone(ZoneInfo(timezone)).date()


def days_between(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """Every day from `first` to `last`, both included."""
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def reading_days(readings: Iterable[Reading], params: Params, as_of: dt.date) -> dict[dt.date, ReadingDay]:
    """The reading days (day ≤ D) of one site's readings, in day order."""
    by_day: dict[dt.date, list[Reading]] = defaultdict(list)
    for reading in readings:
        day = local_day(reading.reading_at, params.timezone)
        if day <= as_of:
            by_day[day].append(reading)
    result = {}
    for day in sorted(by_day):
        todays = by_day[day]
        signals = [r.signal_level for r in todays if r.signal_level is not None]
        result[day] = ReadingDay(closing=max(todays, key=lambda r: r.reading_at), readings=len(todays),
                                 signal_sum=sum(signals), signal_n=len(signals))
    return result


def closing_kwh(days: Mapping[dt.date, ReadingDay], day: dt.date) -> float:
    return days[day].closing.register_kwh


def is_flat(a: float, b: float, params: Params) -> bool:
    return abs(b - a) <= params.flat_tolerance_kwh


# --- site days -------------------------------------------------------------------------------


def flat_since(days: Mapping[dt.date, ReadingDay], params: Params) -> dict[dt.date, dt.date]:
    """For each reading day, the first day of the flat run that ends on it."""
    result: dict[dt.date, dt.date] = {}
    previous = None
    for day in days:  # in day order
        if previous is not None and is_flat(closing_kwh(days, previous), closing_kwh(days, day), params):
            result[day] = result[previous]
        else:
            result[day] = day
        previous = day
    return result


def generation_of(days: Mapping[dt.date, ReadingDay], day: dt.date) -> dict:
    """generation_kwh, estimated, rollback and segment_end of a day after the first reading day."""
    a = max(d for d in days if d < day)  # previous closing day
    b = min(d for d in days if d >= day)  # the closing day that settles `day`
    k = (b - a).days
    delta = closing_kwh(days, b) - closing_kwh(days, a)
    if delta >= 0:
        return {"generation_kwh": delta / k, "estimated": k > 1, "rollback": False, "segment_end": b}
    return {"generation_kwh": None, "estimated": False, "rollback": day == b, "segment_end": b}


def reading_columns(days: Mapping[dt.date, ReadingDay], day: dt.date) -> dict:
    """The columns a site day has from its own readings (empty values on a day without any)."""
    if day not in days:
        return {"closing_at": None, "closing_kwh": None, "closing_signal": None, "network": None, "readings": 0,
                "signal_sum": 0, "signal_n": 0}
    today = days[day]
    return {"closing_at": today.closing.reading_at, "closing_kwh": today.closing.register_kwh,
            "closing_signal": today.closing.signal_level, "network": today.closing.network,
            "readings": today.readings, "signal_sum": today.signal_sum, "signal_n": today.signal_n}


def site_days(days: Mapping[dt.date, ReadingDay], params: Params) -> dict[dt.date, dict]:
    """One row per day from the first to the last reading day, built one day at a time."""
    if not days:
        return {}
    first, last = min(days), max(days)
    flats = flat_since(days, params)
    rows = {}
    for day in days_between(first, last):
        row = reading_columns(days, day)
        if day == first:
            row |= {"generation_kwh": None, "estimated": False, "rollback": False, "segment_end": day}
        else:
            row |= generation_of(days, day)
        row["flat_since"] = flats.get(day)
        rows[day] = row
    return rows


# --- status ----------------------------------------------------------------------------------


def site_status(days: Mapping[dt.date, ReadingDay], params: Params, as_of: dt.date) -> dict:
    """The communication status of one site as of D."""
    if not days:
        return {"as_of": as_of, "status": "no_coms", "days": None, "last_day": None, "last_reading_at": None,
                "last_register_kwh": None, "signal_level": None, "network": None}
    last_day = max(days)
    latest = days[last_day].closing
    row = {"as_of": as_of, "last_day": last_day, "last_reading_at": latest.reading_at,
           "last_register_kwh": latest.register_kwh,
           "signal_level": None if latest.signal_level is None else float(latest.signal_level),
           "network": latest.network}
    days_since = (as_of - last_day).days
    if days_since >= params.no_coms_days:
        return row | {"status": "no_coms", "days": days_since}
    refs = [d for d in days if d <= last_day - dt.timedelta(days=params.zero_read_days)]
    if refs and is_flat(closing_kwh(days, max(refs)), latest.register_kwh, params):
        return row | {"status": "zero_read", "days": (last_day - flat_since(days, params)[last_day]).days}
    return row | {"status": "healthy", "days": days_since}


# --- anomalies -------------------------------------------------------------------------------


def runs(items: Sequence, follows) -> list[list]:
    """Maximal runs of `items` (in order) in which each item `follows(previous, item)`."""
    result: list[list] = []
    for item in items:
        if result and follows(result[-1][-1], item):
            result[-1].append(item)
        else:
            result.append([item])
    return result


def next_day(a: dt.date, b: dt.date) -> bool:
    return b - a == ONE_DAY


def rollback_anomalies(days: Mapping[dt.date, ReadingDay]) -> list[tuple]:
    found = []
    for a, b in pairwise(days):
        if closing_kwh(days, b) - closing_kwh(days, a) < 0:
            found.append(("register_rollback", b, b,
                          {"from_kwh": closing_kwh(days, a), "to_kwh": closing_kwh(days, b)}))
    return found


def gap_anomalies(days: Mapping[dt.date, ReadingDay]) -> list[tuple]:
    found = []
    for a, b in pairwise(days):
        missing = (b - a).days - 1
        if missing >= 2:
            found.append(("gap", a + ONE_DAY, b - ONE_DAY, {"days": missing}))
    return found


def stuck_anomalies(days: Mapping[dt.date, ReadingDay], params: Params) -> list[tuple]:
    found = []
    flats = flat_since(days, params)
    last_reading_day = max(days)
    run_last: dict[dt.date, dt.date] = {}  # first day of a flat run → its last day
    for day in days:
        run_last[flats[day]] = day  # days are in order, so the last assignment is the run's end
    for first, last in run_last.items():
        length = (last - first).days
        if length >= params.zero_read_days:
            end = None if last == last_reading_day else last
            found.append(("stuck_register", first, end,
                          {"register_kwh": closing_kwh(days, first), "days": length}))
    return found


def spike_anomalies(rows: Mapping[dt.date, dict], capacity_kwp: float, params: Params) -> list[tuple]:
    limit = capacity_kwp * params.max_daily_yield
    valued = [d for d, row in rows.items() if row["generation_kwh"] is not None]
    if not valued:
        return []
    last_valued = max(valued)
    spiking = [d for d in valued if rows[d]["generation_kwh"] > limit]
    found = []
    for run in runs(spiking, next_day):
        end = None if last_valued in run else run[-1]
        found.append(("spike", run[0], end,
                      {"max_kwh": max(rows[d]["generation_kwh"] for d in run), "limit_kwh": limit}))
    return found


def window_mean_csq(days: Mapping[dt.date, ReadingDay], day: dt.date) -> float | None:
    """Mean of the non-null signal levels of the readings on days d − 6 … d (None without any)."""
    window = [days[d] for d in days_between(day - dt.timedelta(days=6), day) if d in days]
    n = sum(w.signal_n for w in window)
    return sum(w.signal_sum for w in window) / n if n else None


def low_signal_anomalies(days: Mapping[dt.date, ReadingDay], params: Params, as_of: dt.date) -> list[tuple]:
    last_checked = min(as_of, max(days) + dt.timedelta(days=6))
    means = {d: window_mean_csq(days, d) for d in days_between(min(days), last_checked)}
    low = [d for d, mean in means.items() if mean is not None and mean < params.low_signal_csq]
    found = []
    for run in runs(low, next_day):
        end = None if run[-1] == last_checked == as_of else run[-1]
        found.append(("low_signal", run[0], end, {"min_mean_csq": min(means[d] for d in run)}))
    return found


def month_number(month: dt.date) -> int:
    return month.year * 12 + month.month


def last_day_of_month(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def underperformance_anomalies(months: Mapping[dt.date, dict], params: Params) -> list[tuple]:
    rated = [m for m in sorted(months) if months[m]["ratio_pct"] is not None]
    if not rated:
        return []
    latest_rated = rated[-1]
    under = [m for m in rated if months[m]["ratio_pct"] < params.performance_threshold]
    found = []
    for run in runs(under, lambda a, b: month_number(b) - month_number(a) == 1):
        actual = sum(months[m]["actual_kwh"] for m in run)
        expected = sum(months[m]["expected_kwh"] for m in run)
        end = None if latest_rated in run else last_day_of_month(run[-1])
        found.append(("underperformance", run[0], end, {"months": len(run), "ratio_pct": 100 * actual / expected}))
    return found


# --- monthly performance -----------------------------------------------------------------------


def monthly_performance(rows: Mapping[dt.date, dict], expected: Sequence[float] | None) -> dict[dt.date, dict]:
    """Per calendar month with at least one valued day."""
    valued: dict[dt.date, list[float]] = defaultdict(list)
    for day, row in rows.items():  # in day order
        if row["generation_kwh"] is not None:
            valued[day.replace(day=1)].append(row["generation_kwh"])
    result = {}
    for month, values in sorted(valued.items()):
        actual, covered = sum(values), len(values)
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        expected_kwh = None if expected is None else expected[month.month - 1] * covered / days_in_month
        ratio = None if not expected_kwh else 100 * actual / expected_kwh
        result[month] = {"actual_kwh": actual, "covered_days": covered, "expected_kwh": expected_kwh,
                         "ratio_pct": ratio}
    return result


# --- rollups ---------------------------------------------------------------------------------


def area_of(site: Site) -> str:
    return "Unknown" if site.region is None or site.region == "TBC" else site.region


def daily_rollups(sites: Sequence[Site], days: Mapping[tuple[int, dt.date], dict], as_of: dt.date,
                  expected: Mapping[int, Sequence[float]]) -> dict[tuple[str, dt.date], dict]:
    """Per day with at least one site day of an active site in the area (fleet and each region), up to D."""
    by_pk = {site.pk: site for site in sites if site.active}
    active = defaultdict(int)
    for site in by_pk.values():
        active["fleet"] += 1
        active[area_of(site)] += 1
    result: dict[tuple[str, dt.date], dict] = {}
    for (pk, day), row in sorted(days.items(), key=lambda item: (item[0][1], item[0][0])):
        if day > as_of or pk not in by_pk:
            continue
        monthly = expected.get(pk)
        rated = row["generation_kwh"] is not None and monthly is not None
        for area in ("fleet", area_of(by_pk[pk])):
            totals = result.setdefault((area, day), {
                "sites": active[area], "reporting_sites": 0, "valued_sites": 0, "estimated_sites": 0,
                "readings": 0, "generation_kwh": 0.0, "rated_generation_kwh": 0.0, "expected_kwh": 0.0})
            totals["reporting_sites"] += row["readings"] > 0
            totals["valued_sites"] += row["generation_kwh"] is not None
            totals["estimated_sites"] += row["estimated"]
            totals["readings"] += row["readings"]
            totals["generation_kwh"] += row["generation_kwh"] or 0.0
            if rated:
                totals["rated_generation_kwh"] += row["generation_kwh"]
                totals["expected_kwh"] += monthly[day.month - 1] / calendar.monthrange(day.year, day.month)[1]
    return result


# --- everything --------------------------------------------------------------------------------


def site_anomalies(site: Site, days: Mapping[dt.date, ReadingDay], rows: Mapping[dt.date, dict],
                   months: Mapping[dt.date, dict], params: Params, as_of: dt.date) -> list[tuple]:
    """(type, start_day, end_day, details) of every episode of one site."""
    if not days:
        return []
    return (rollback_anomalies(days) + gap_anomalies(days) + stuck_anomalies(days, params)
            + spike_anomalies(rows, site.capacity_kwp, params) + low_signal_anomalies(days, params, as_of)
            + underperformance_anomalies(months, params))


def compute(sites: Sequence[Site], readings: Iterable[Reading], expected: Mapping[int, Sequence[float]],
            params: Params, as_of: dt.date) -> Results:
    """Every per-site table and the daily rollups as of D, for all `sites`."""
    by_site: dict[int, list[Reading]] = defaultdict(list)
    for reading in readings:
        by_site[reading.site_pk].append(reading)
    results = Results()
    for site in sites:
        days = reading_days(by_site[site.pk], params, as_of)
        rows = site_days(days, params)
        months = monthly_performance(rows, expected.get(site.pk))
        results.site_days |= {(site.pk, day): row for day, row in rows.items()}
        results.site_status[site.pk] = site_status(days, params, as_of)
        results.monthly_performance |= {(site.pk, m): row | {"as_of": as_of} for m, row in months.items()}
        for kind, start, end, details in site_anomalies(site, days, rows, months, params, as_of):
            results.anomalies[(site.pk, kind, start)] = {"end_day": end, "details": details, "as_of": as_of}
    results.daily_rollups = daily_rollups(sites, results.site_days, as_of, expected)
    return results
