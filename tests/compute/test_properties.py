"""The SQL engine against the pure-Python reference, on random small fleets in a real PostgreSQL.

(a) SQL == reference for a random as-of day (per-site tables, then rollups separately);
(b) runs over shards == one unsharded run; (c) an incremental run after late readings == a fresh
full run, and so do runs day by day as new days arrive; (d) running twice writes identical rows;
(e) site tails kept for other parameters, or missing, are rebuilt rather than trusted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lux.compute import daily as daily_stage
from lux.compute import status as status_stage
from lux.compute.engine import follow_readings, recompute_rollups, recompute_sites
from lux.compute.params import Params
from models import compute as compute_models
from tests.compute import reference as ref
from tests.compute.reference import Reading, Site

LONDON = ZoneInfo("Europe/London")
ONE_DAY = dt.timedelta(days=1)
MAX_DAYS = 60
FAR_FUTURE = dt.date(2030, 1, 1)

RESULT_TABLES = tuple(
    model.__tablename__ for model in vars(compute_models).values()
    if isinstance(model, type) and issubclass(model, compute_models.Base) and model is not compute_models.Base
    and model.__module__ == compute_models.__name__)
INPUT_TABLES = ("sites", "readings", "expected_generation")

# table → (primary key columns, other compared columns; computed_at is never compared)
COLUMNS = {
    "site_days": (("site_pk", "day"), ("closing_at", "closing_kwh", "closing_signal", "network", "readings",
                                       "signal_sum", "signal_n",
                                       "generation_kwh", "estimated", "rollback", "segment_end", "flat_since")),
    "site_status": (("site_pk",), ("as_of", "status", "days", "last_day", "last_reading_at", "last_register_kwh",
                                   "signal_level", "network")),
    "anomalies": (("site_pk", "type", "start_day"), ("end_day", "details", "as_of")),
    "monthly_performance": (("site_pk", "month"), ("actual_kwh", "covered_days", "expected_kwh", "ratio_pct",
                                                   "as_of")),
    "daily_rollups": (("area", "day"), ("sites", "reporting_sites", "valued_sites", "estimated_sites", "readings",
                                        "generation_kwh", "rated_generation_kwh", "expected_kwh")),
}
PER_SITE = ("site_days", "site_status", "anomalies", "monthly_performance")

# Days to start a fleet on: across both 2026 Europe/London changes (03-29, 10-25), summer and a year end.
STARTS = [dt.date(2026, 3, 10), dt.date(2026, 3, 27), dt.date(2026, 10, 1), dt.date(2026, 10, 23),
          dt.date(2026, 6, 20), dt.date(2025, 12, 10)]


# --- fleets ----------------------------------------------------------------------------------


@dataclass
class Fleet:
    start: dt.date
    as_of: dt.date
    sites: list[Site]
    readings: list[Reading]
    expected: dict[int, list[float]]

    def __repr__(self) -> str:
        lines = [f"Fleet(start={self.start}, as_of={self.as_of})"]
        lines += [f"  site {s.pk} cap={s.capacity_kwp} region={s.region} active={s.active} "
                  f"expected={self.expected.get(s.pk)}" for s in self.sites]
        lines += [f"  reading {r.site_pk} {r.reading_at.isoformat()} "
                  f"(local {r.reading_at.astimezone(LONDON).isoformat()}) {r.register_kwh} "
                  f"sig={r.signal_level} net={r.network}"
                  for r in sorted(self.readings, key=lambda r: (r.site_pk, r.reading_at))]
        return "\n".join(lines)


def local_bounds(day: dt.date) -> tuple[dt.datetime, int]:
    """Local midnight of `day` in UTC and the day's length in seconds (23 h, 24 h or 25 h)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=LONDON).astimezone(dt.UTC)
    end = dt.datetime.combine(day + ONE_DAY, dt.time(), tzinfo=LONDON).astimezone(dt.UTC)
    return start, int((end - start).total_seconds())


def instant(day: dt.date, kind: str, u: int) -> dt.datetime:
    """An instant of local `day`: in its first or last 90 minutes, or anywhere (u ∈ [0, 10⁶))."""
    start, length = local_bounds(day)
    offset = {"start": u % 5400, "end": length - 1 - u % 5400, "any": u * length // 10**6}[kind]
    return start + dt.timedelta(seconds=offset)


signals = st.one_of(st.none(), st.integers(5, 14), st.integers(0, 31))
times = st.tuples(st.sampled_from(["start", "end", "any"]), st.integers(0, 10**6 - 1))
day_events = st.fixed_dictionaries({
    "skip": st.sampled_from([0, 0, 0, 0, 1, 2, 3, 6]),  # days without readings before this event
    "repeat": st.sampled_from([1, 1, 1, 2, 3, 5]),  # consecutive days with this pattern
    "delta": st.one_of(st.just(0), st.just(0), st.integers(1, 15_000), st.integers(15_000, 120_000),
                       st.integers(-30_000, -1)),  # closing change per day, in Wh (the 0.001 kWh grid)
    "times": st.lists(times, min_size=1, max_size=3),
    "signals": st.lists(signals, min_size=3, max_size=3),
    "noise": st.integers(-5_000, 5_000),  # registers of the non-closing readings of a day
    "network": st.sampled_from([None, "EE", "Vodafone"]),
})


def site_readings(pk: int, start: dt.date, register_wh: int, events: list[dict]) -> list[Reading]:
    readings: list[Reading] = []
    day = start
    first = True
    for event in events:
        day += event["skip"] * ONE_DAY
        for _ in range(event["repeat"]):
            if (day - start).days > MAX_DAYS:
                return readings
            if not first:
                register_wh = max(0, register_wh + event["delta"])
            first = False
            instants = sorted({instant(day, kind, u) for kind, u in event["times"]})
            for i, at in enumerate(instants):
                wh = register_wh if i == len(instants) - 1 else max(0, register_wh + event["noise"] * (i + 1))
                readings.append(Reading(pk, at, wh / 1000, event["signals"][i], event["network"]))
            day += ONE_DAY
    return readings


@st.composite
def fleets(draw) -> Fleet:
    start = draw(st.sampled_from(STARTS))
    pks = draw(st.lists(st.integers(1, 30), min_size=1, max_size=5, unique=True))
    sites, readings, expected = [], [], {}
    for pk in pks:
        sites.append(Site(pk, draw(st.sampled_from([0.5, 1.0, 2.5, 4.0])),
                          draw(st.sampled_from([None, "TBC", "North", "South"])), draw(st.booleans())))
        first = start + draw(st.integers(0, 5)) * ONE_DAY
        readings += site_readings(pk, first, draw(st.integers(0, 10**7)), draw(st.lists(day_events, max_size=25)))
        months = draw(st.one_of(st.none(), st.lists(st.one_of(st.just(0), st.integers(1, 600_000)),
                                                    min_size=12, max_size=12)))
        if months is not None:
            expected[pk] = [wh / 1000 for wh in months]
    return Fleet(start, draw(as_of_days(start, readings)), sites, readings, expected)


def as_of_days(start: dt.date, readings: list[Reading]) -> st.SearchStrategy[dt.date]:
    """Mostly near some site's last reading day (so that every status occurs), else anywhere."""
    last_days = sorted({max(r.reading_at for r in readings if r.site_pk == pk).astimezone(LONDON).date()
                        for pk in {r.site_pk for r in readings}})
    anywhere = st.integers(-2, MAX_DAYS + 10).map(lambda k: start + k * ONE_DAY)
    if not last_days:
        return anywhere
    near = st.tuples(st.sampled_from(last_days), st.integers(-6, 4)).map(lambda t: t[0] + t[1] * ONE_DAY)
    return st.one_of(near, near, anywhere)


params_strategy = st.builds(
    Params,
    timezone=st.sampled_from(["Europe/London"] * 5 + ["UTC"]),
    no_coms_days=st.sampled_from([3, 1, 5]),
    zero_read_days=st.sampled_from([3, 2, 4]),
    max_daily_yield=st.sampled_from([8.0, 5.0]),
    low_signal_csq=st.sampled_from([10.0, 12.5]),
    performance_threshold=st.sampled_from([80.0, 95.0]),
)

# No explain phase: its line tracing makes shrinking several times slower than the runs themselves.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("LUX_PROPERTY_EXAMPLES", "40")),  # more for a soak run
    deadline=None, database=None, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.timeout(900)  # a failure's shrinking may take minutes; passing runs take seconds


# --- the database ----------------------------------------------------------------------------


def reset(database, tables=RESULT_TABLES + INPUT_TABLES) -> None:
    """Empty `tables` (DELETE: much faster than TRUNCATE on tables this small)."""
    with database.engine.begin() as conn:
        for table in ("expected_generation", *(t for t in tables if t != "expected_generation")):
            if table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


def load(database, fleet: Fleet) -> None:
    with database.session_scope() as session:
        session.execute(text("INSERT INTO sites (id, site_id, name, capacity_kwp, region, active) "
                             "VALUES (:id, :site_id, :name, :capacity_kwp, :region, :active)"),
                        [{"id": s.pk, "site_id": f"P{s.pk}", "name": f"site {s.pk}", "capacity_kwp": s.capacity_kwp,
                          "region": s.region, "active": s.active} for s in fleet.sites])
        insert_readings(session, fleet.readings)
        rows = [{"site_pk": pk, "month": m + 1, "kwh": kwh} for pk, months in fleet.expected.items()
                for m, kwh in enumerate(months)]
        if rows:
            session.execute(text("INSERT INTO expected_generation (site_pk, month, expected_kwh) "
                                 "VALUES (:site_pk, :month, :kwh)"), rows)


def insert_readings(session, readings: list[Reading]) -> None:
    if readings:
        session.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level, network) "
                             "VALUES (:site_pk, :reading_at, :register_kwh, :signal_level, :network)"),
                        [vars(r) for r in readings])


def run_full(database, params: Params, as_of: dt.date, **scope) -> None:
    with database.session_scope() as session:
        recompute_sites(session, params, as_of, **scope)
    with database.session_scope() as session:
        recompute_rollups(session, as_of)


def snapshot(database, tables=tuple(COLUMNS)) -> dict[str, dict]:
    """Every compared table, as {primary key tuple: {column: value}}."""
    result = {}
    with database.engine.connect() as conn:
        for table in tables:
            keys, values = COLUMNS[table]
            rows = conn.execute(text(f"SELECT {', '.join(keys + values)} FROM {table}")).mappings()
            result[table] = {tuple(row[k] for k in keys): {v: row[v] for v in values} for row in rows}
    return result


def reference_tables(fleet: Fleet, params: Params, as_of: dt.date, tables=tuple(COLUMNS)) -> dict[str, dict]:
    results = ref.compute(fleet.sites, fleet.readings, fleet.expected, params, as_of)
    every = {
        "site_days": {(pk, day): row for (pk, day), row in results.site_days.items()},
        "site_status": {(pk,): row for pk, row in results.site_status.items()},
        "anomalies": results.anomalies,
        "monthly_performance": results.monthly_performance,
        "daily_rollups": results.daily_rollups,
    }
    return {table: every[table] for table in tables}


def as_of_view(tables: dict[str, dict], as_of: dt.date) -> dict[str, dict]:
    """The tables as the result as of D: site days only with `segment_end ≤ D` (COMPUTATION.md's choice)."""
    days = {key: row for key, row in tables["site_days"].items() if row["segment_end"] <= as_of}
    return tables | {"site_days": days}


def check_later_site_days(database, fleet: Fleet, params: Params, as_of: dt.date) -> None:
    """Site days settled after D may be stored; if they are, they are those of a run seeing every reading."""
    later = {key: row for key, row in snapshot(database, ("site_days",))["site_days"].items()
             if row["segment_end"] > as_of}
    if later:
        everything = reference_tables(fleet, params, FAR_FUTURE, ("site_days",))["site_days"]
        found = [f"site_days {key} (segment_end > D): not in the reference as of {FAR_FUTURE}: {row}"
                 for key, row in later.items() if key not in everything]
        found += differences({"site_days": {k: everything[k] for k in later if k in everything}},
                             {"site_days": later}, labels=(f"reference as of {FAR_FUTURE}", "sql"))
        assert not found, f"{len(found)} differences:\n" + "\n".join(found[:25])


# --- comparing -------------------------------------------------------------------------------


DETAILS_ROUNDING = 0.005 + 1e-9  # details are display values: rounded to 2 decimals is still the same value


def same(a, b, exact: bool, abs_tol: float = 1e-9) -> bool:
    if exact:
        return a == b and type(a) is type(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=abs_tol)
    if isinstance(a, dict) and isinstance(b, dict):  # anomaly details
        return a.keys() == b.keys() and all(same(a[k], b[k], exact, DETAILS_ROUNDING) for k in a)
    return a == b


def differences(expected: dict, actual: dict, labels=("reference", "sql"), exact: bool = False) -> list[str]:
    left, right = labels
    found = []
    for table, rows in expected.items():
        other = actual[table]
        found += [f"{table} {key}: only in {left}: {rows[key]}" for key in sorted(rows.keys() - other.keys())]
        found += [f"{table} {key}: only in {right}: {other[key]}" for key in sorted(other.keys() - rows.keys())]
        for key in sorted(rows.keys() & other.keys()):
            found += [f"{table} {key} {column}: {left}={rows[key][column]!r} {right}={other[key][column]!r}"
                      for column in rows[key] if not same(rows[key][column], other[key][column], exact)]
    return found


def assert_same(expected: dict, actual: dict, labels=("reference", "sql"), exact: bool = False) -> None:
    found = differences(expected, actual, labels, exact)
    assert not found, f"{len(found)} differences:\n" + "\n".join(found[:25])


# --- the properties --------------------------------------------------------------------------


@pytest.fixture(params=["by key", "by join"])
def status_writes(request, monkeypatch):
    """Run a test with the status written by key, then by join (the form of small and of large scopes)."""
    monkeypatch.setattr(status_stage, "BY_KEY_MAX_SITES", 10**9 if request.param == "by key" else 0)
    return request.param


@pytest.fixture(params=["probed", "scanned"])
def fresh_reads(request, monkeypatch):
    """Run a test with sites built whole reading their readings key range by range, then by one scan."""
    monkeypatch.setattr(daily_stage, "SCAN_FRESH_SITES", 10**9 if request.param == "probed" else 0)
    return request.param


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy)
def test_sql_matches_reference(database, fleet, params, status_writes, fresh_reads):
    as_of = fleet.as_of
    note(f"as_of={as_of} params={params}")
    reset(database)
    load(database, fleet)
    run_full(database, params, as_of)
    assert_same(reference_tables(fleet, params, as_of, PER_SITE), as_of_view(snapshot(database, PER_SITE), as_of))
    check_later_site_days(database, fleet, params, as_of)


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy)
def test_rollups_match_reference(database, fleet, params):
    as_of = fleet.as_of
    note(f"as_of={as_of} params={params}")
    reset(database)
    load(database, fleet)
    run_full(database, params, as_of)
    assert_same(reference_tables(fleet, params, as_of, ("daily_rollups",)), snapshot(database, ("daily_rollups",)))


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, shards=st.integers(2, 4))
def test_sharded_runs_equal_one_run(database, fleet, params, shards, fresh_reads):
    as_of = fleet.as_of
    note(f"as_of={as_of} params={params} shards={shards}")
    reset(database)
    load(database, fleet)
    for k in range(shards):
        with database.session_scope() as session:
            recompute_sites(session, params, as_of, shard=(k, shards))
    with database.session_scope() as session:
        recompute_rollups(session, as_of)
    sharded = snapshot(database)
    reset(database, RESULT_TABLES)
    run_full(database, params, as_of)
    assert_same(snapshot(database), sharded, labels=("unsharded", "sharded"))


extra_readings = st.lists(st.tuples(
    st.integers(0, 4),  # site (index into the fleet, modulo its size)
    st.integers(-3, MAX_DAYS + 5),  # day, from the fleet's start
    times,
    st.one_of(st.just(0), st.integers(-2_000, 20_000), st.integers(0, 10**7)),  # Wh from the previous register
    signals,
), min_size=1, max_size=8)


def late_readings(fleet: Fleet, extras: list[tuple]) -> list[Reading]:
    """New readings (no key of an existing one), registers relative to the site's previous reading."""
    taken = {(r.site_pk, r.reading_at) for r in fleet.readings}
    new = []
    for index, offset, (kind, u), change_wh, signal in extras:
        pk = fleet.sites[index % len(fleet.sites)].pk
        at = instant(fleet.start + offset * ONE_DAY, kind, u)
        if (pk, at) in taken:
            continue
        taken.add((pk, at))
        before = [r for r in fleet.readings if r.site_pk == pk and r.reading_at < at]
        base_wh = round(max(before, key=lambda r: r.reading_at).register_kwh * 1000) if before else 0
        new.append(Reading(pk, at, max(0, base_wh + change_wh) / 1000, signal, "late"))
    return new


def changed_from(fleet: Fleet, late: list[Reading], params: Params, from_day: dt.date) -> dt.date:
    """The earliest day whose site days late readings can change: a reading on day b settles (a, b]."""
    earliest = from_day
    for pk in {r.site_pk for r in late}:
        before = [day for r in fleet.readings if r.site_pk == pk
                  and (day := ref.local_day(r.reading_at, params.timezone)) < from_day]
        if before:
            earliest = min(earliest, max(before) + ONE_DAY)
    return earliest


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, extras=extra_readings)
def test_incremental_after_late_readings_equals_full(database, fleet, params, extras):
    as_of = fleet.as_of
    late = late_readings(fleet, extras)
    assume(late)  # every extra reading collided with an existing key
    affected = sorted({r.site_pk for r in late})
    from_day = min(ref.local_day(r.reading_at, params.timezone) for r in late)
    note(f"as_of={as_of} params={params} from_day={from_day} affected={affected}\n"
         + "\n".join(f"  late {r.site_pk} {r.reading_at.isoformat()} {r.register_kwh} sig={r.signal_level}"
                     for r in late))
    reset(database)
    load(database, fleet)
    run_full(database, params, as_of)
    with database.session_scope() as session:
        insert_readings(session, late)
    with database.session_scope() as session:
        recompute_sites(session, params, as_of, sites=affected, from_day=from_day)
    with database.session_scope() as session:
        recompute_rollups(session, as_of, from_day=changed_from(fleet, late, params, from_day))
    incremental = snapshot(database)
    reset(database, RESULT_TABLES)
    run_full(database, params, as_of)
    assert_same(snapshot(database), incremental, labels=("full", "incremental"))


def without_as_of(tables: dict[str, dict], names=("anomalies", "monthly_performance")) -> dict[str, dict]:
    """`tables` without the as-of day of `names`' rows: a row an incremental run keeps carries the as-of day of
    the run that wrote it, a full run's rows all carry its own."""
    return tables | {name: {key: {k: v for k, v in row.items() if k != "as_of"} for key, row in tables[name].items()}
                     for name in names}


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, days=st.integers(1, 8))
def test_runs_day_by_day_equal_one_full_run(database, fleet, params, days):
    """The nightly pattern: each day's readings arrive, then every site is recomputed from that day as of it
    (running episodes are continued, not re-read); the end state is that of one full run."""
    final = fleet.as_of
    first = final - days * ONE_DAY
    seen = [r for r in fleet.readings if ref.local_day(r.reading_at, params.timezone) <= final]
    note(f"as_of={final} first={first} params={params}")
    reset(database)
    load(database, replace(fleet, readings=[r for r in seen if ref.local_day(r.reading_at, params.timezone) <= first]))
    run_full(database, params, first)
    for n in range(1, days + 1):
        day = first + n * ONE_DAY
        with database.session_scope() as session:
            insert_readings(session, [r for r in seen if ref.local_day(r.reading_at, params.timezone) == day])
        with database.session_scope() as session:
            recompute_sites(session, params, day, from_day=day)
    daily = without_as_of(snapshot(database, PER_SITE))
    reset(database, RESULT_TABLES)
    run_full(database, params, final)
    assert_same(without_as_of(snapshot(database, PER_SITE)), daily, labels=("full", "day by day"), exact=True)


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, cuts=st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_readings_recomputed_as_they_arrive_equal_one_full_run(database, fleet, params, cuts):
    """A live fleet: the readings arrive in time order, batch after batch, and each batch's sites are recomputed with
    what its journal entry says (no reading of the batch is before its earliest one). A site whose new readings
    follow its last computed one, on that same day, extends the day's stored counts (a seeded day, daily.ANCHOR)
    instead of reading it again; the end state is that of one full run."""
    final = fleet.as_of
    seen = sorted((r for r in fleet.readings if ref.local_day(r.reading_at, params.timezone) <= final),
                  key=lambda r: r.reading_at)
    assume(len(seen) >= 2)
    bounds = sorted({1 + c * (len(seen) - 1) // 10**6 for c in cuts} | {len(seen)})
    note(f"as_of={final} params={params} batches end at {bounds}")
    reset(database)
    load(database, replace(fleet, readings=seen[:bounds[0]]))
    run_full(database, params, final)
    for start, end in itertools.pairwise(bounds):
        batch = seen[start:end]
        from_days: dict[int, dt.date] = {}
        for r in batch:
            day = ref.local_day(r.reading_at, params.timezone)
            from_days[r.site_pk] = min(day, from_days.get(r.site_pk, day))
        with database.session_scope() as session:
            insert_readings(session, batch)
        with database.session_scope() as session:
            recompute_sites(session, params, final, sites=from_days,
                            readings_after=dict.fromkeys(from_days, batch[0].reading_at))
    arrived = snapshot(database, PER_SITE)
    reset(database, RESULT_TABLES)
    run_full(database, params, final)
    assert_same(snapshot(database, PER_SITE), arrived, labels=("full", "as they arrive"))


def test_a_seeded_day_is_extended_from_its_stored_row_not_read_again(database):
    """The journal says a site's new readings all follow its last computed one: its day's earlier readings are not
    read again (a change to one of them, written behind the engine's back, stays unseen), while without that word
    the day is read again whole."""
    params = Params(timezone="UTC")
    day = dt.date(2026, 3, 4)

    def reading(at: str, kwh: float, signal: int) -> Reading:
        return Reading(1, dt.datetime.fromisoformat(at), kwh, signal)

    reset(database)
    load(database, Fleet(day, day, [Site(1, 4.0, "North", True)], [
        reading("2026-03-03T19:00Z", 10.0, 12), reading("2026-03-04T08:00Z", 12.0, 20),
        reading("2026-03-04T09:00Z", 13.0, 22)], {}))
    run_full(database, params, day)
    with database.session_scope() as session:  # an earlier reading of the day changed behind the engine's back
        session.execute(text("UPDATE readings SET signal_level = 4 WHERE reading_at = '2026-03-04T08:00Z'"))
        insert_readings(session, [reading("2026-03-04T10:00Z", 14.0, 24)])
    counts = "SELECT readings, signal_sum, signal_n, closing_kwh, generation_kwh FROM site_days WHERE day = :day"
    after = {1: dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC)}
    with database.session_scope() as session:
        recompute_sites(session, params, day, sites={1: day}, readings_after=after)
        assert session.execute(text(counts), {"day": day}).one() == (3, 66, 3, 14.0, 4.0)  # 20 + 22 + 24
        session.rollback()
    with database.session_scope() as session:
        recompute_sites(session, params, day, sites={1: day})
        assert session.execute(text(counts), {"day": day}).one() == (3, 50, 3, 14.0, 4.0)  # 4 + 22 + 24


def test_a_running_episode_is_reread_when_a_late_reading_changes_its_days(database):
    """A running low-signal episode whose later days a late reading changes is recomputed from its start, not
    continued: continuing would keep its old minimum (8.43, of days the late reading lifted) instead of 9.0."""
    start, params = dt.date(2026, 6, 1), Params(timezone="Europe/London")
    signals = [9] * 8 + [5, 9]  # days 1–10: the 7-day mean is below 10 throughout, lowest from day 9
    fleet = Fleet(start, start + 9 * ONE_DAY, [Site(1, 4.0, "North")],
                  [Reading(1, instant(start + n * ONE_DAY, "any", 500_000), 100.0 + n, signal, "EE")
                   for n, signal in enumerate(signals)], {})
    late = Reading(1, instant(start + 8 * ONE_DAY, "start", 60), 107.5, 31, "EE")
    reset(database)
    load(database, fleet)
    run_full(database, params, fleet.as_of)
    with database.session_scope() as session:
        insert_readings(session, [late])
        recompute_sites(session, params, fleet.as_of, sites=[1], from_day=start + 8 * ONE_DAY)
    expected = reference_tables(replace(fleet, readings=[*fleet.readings, late]), params, fleet.as_of,
                                ("anomalies",))
    assert expected["anomalies"] == {(1, "low_signal", start): {
        "end_day": start + 7 * ONE_DAY, "details": {"min_mean_csq": 9.0}, "as_of": fleet.as_of}}
    assert_same(expected, snapshot(database, ("anomalies",)))


@pytest.mark.parametrize("first_as_of", [dt.date(2026, 6, 10), dt.date(2026, 5, 31)])
def test_months_stored_as_of_an_earlier_day_are_summed_again_not_extended(database, first_as_of):
    """Site days after a run's as-of day are stored but not in its months: a later run that appends a day must
    re-sum the month, not add the new day to the stored sum (which lacks June 11–14), nor start the month
    afresh when it has no row yet (as of May 31)."""
    start, params = dt.date(2026, 5, 29), Params(timezone="Europe/London")
    fleet = Fleet(start, start + 16 * ONE_DAY, [Site(1, 4.0, "North")],
                  [Reading(1, instant(start + n * ONE_DAY, "any", 500_000), 100.0 + 2 * n, 20, "EE")
                   for n in range(17)], {1: [100.0] * 12})
    new_day = start + 17 * ONE_DAY
    new = Reading(1, instant(new_day, "any", 500_000), 140.0, 20, "EE")
    reset(database)
    load(database, fleet)
    run_full(database, params, first_as_of)
    with database.session_scope() as session:
        insert_readings(session, [new])
        recompute_sites(session, params, new_day, sites=[1], from_day=new_day)
    expected = reference_tables(replace(fleet, readings=[*fleet.readings, new]), params, new_day,
                                ("monthly_performance",))
    assert expected["monthly_performance"][(1, dt.date(2026, 6, 1))]["covered_days"] == 15
    months = ("monthly_performance",)
    assert_same(without_as_of(expected, months), without_as_of(snapshot(database, months), months))


def test_a_month_lifted_above_the_threshold_ends_its_running_underperformance(database):
    """A site whose month is extended by a new day keeps its underperformance episodes unless the month joins or
    leaves one: here June 1–2 yield 0.6 kWh of 6.67 expected (a running episode from June), and June 3 lifts the
    month to 20 of 10, so the episode must go, though the site's months are only extended."""
    start, params = dt.date(2026, 5, 31), Params(timezone="Europe/London")
    registers = [100.0, 100.3, 100.6]
    fleet = Fleet(start, start + 2 * ONE_DAY, [Site(1, 4.0, "North")],
                  [Reading(1, instant(start + n * ONE_DAY, "any", 500_000), kwh, 20, "EE")
                   for n, kwh in enumerate(registers)], {1: [100.0] * 12})
    new_day = start + 3 * ONE_DAY
    new = Reading(1, instant(new_day, "any", 500_000), 120.0, 20, "EE")
    reset(database)
    load(database, fleet)
    run_full(database, params, fleet.as_of)
    assert set(snapshot(database, ("anomalies",))["anomalies"]) == {(1, "underperformance", dt.date(2026, 6, 1))}
    with database.session_scope() as session:
        insert_readings(session, [new])
        recompute_sites(session, params, new_day, sites=[1], from_day=new_day)
    expected = reference_tables(replace(fleet, readings=[*fleet.readings, new]), params, new_day, ("anomalies",))
    assert expected["anomalies"] == {}
    assert_same(expected, snapshot(database, ("anomalies",)))


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy)
def test_running_twice_writes_identical_rows(database, fleet, params):
    as_of = fleet.as_of
    note(f"as_of={as_of} params={params}")
    reset(database)
    load(database, fleet)
    run_full(database, params, as_of)
    first = snapshot(database)
    run_full(database, params, as_of)
    assert_same(first, snapshot(database), labels=("first", "second"), exact=True)


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, back=st.integers(1, 10))
def test_an_earlier_as_of_never_replaces_a_later_status(database, fleet, params, back, status_writes):
    """COMPUTATION.md: `site_status` holds the latest as-of day computed."""
    reset(database)
    load(database, fleet)
    run_full(database, params, fleet.as_of)
    later = snapshot(database, ("site_status",))
    with database.session_scope() as session:
        recompute_sites(session, params, fleet.as_of - back * ONE_DAY)
    assert_same(later, snapshot(database, ("site_status",)), labels=(f"as of {fleet.as_of}", "after an earlier run"))


def _reading(day: int, kwh: float, signal: int | None = None, second: int = 0) -> Reading:
    return Reading(site_pk=1, reading_at=dt.datetime(2026, 3, day, 0, 0, second, tzinfo=dt.UTC), register_kwh=kwh,
                   signal_level=signal, network=None)


# Low-signal episodes found with a threshold of 12.5, then a run from the last day with 10.0: the episode it kept
# reached two of the new ones, and both took its first day (a duplicate key, before anomalies.DAY_EPISODES
# continued a kept episode by the first new one only).
@example(fleet=Fleet(start=dt.date(2026, 3, 10), as_of=dt.date(2026, 3, 17),
                     sites=[Site(pk=1, capacity_kwp=0.5, region=None, active=False)],
                     readings=[_reading(10, 0.0, 0), _reading(11, 0.001), _reading(12, 0.002), _reading(14, 8.003),
                               _reading(14, 8.003, 2, 1), _reading(14, 8.003, 31, 2), _reading(15, 12.004, 5),
                               _reading(16, 16.004), _reading(17, 20.005)], expected={}),
         first=Params(low_signal_csq=12.5), params=Params(low_signal_csq=10.0), drop_tails=True)
@PROPERTY_SETTINGS
@given(fleet=fleets(), first=params_strategy, params=params_strategy, drop_tails=st.booleans())
def test_tails_of_other_parameters_or_missing_are_rebuilt(database, fleet, first, params, drop_tails):
    """A site tail kept for another `zero_read_days`, or none at all (as right after migration 0005), is
    never taken as it is: a later run's status is the reference's for its own parameters."""
    assume(first.zero_read_days != params.zero_read_days or drop_tails)
    note(f"as_of={fleet.as_of} first={first} params={params} drop_tails={drop_tails}")
    reset(database)
    load(database, fleet)
    run_full(database, replace(first, timezone=params.timezone), fleet.as_of)
    if drop_tails:
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM site_tails"))
    with database.session_scope() as session:
        recompute_sites(session, params, fleet.as_of, from_day=fleet.as_of)
    expected = reference_tables(fleet, params, fleet.as_of, ("site_status",))
    assert_same(expected, snapshot(database, ("site_status",)))
    with database.engine.connect() as conn:
        kept_for = set(conn.execute(text("SELECT DISTINCT zero_read_days FROM site_tails")).scalars())
        tails = conn.execute(text("SELECT count(*) FROM site_tails")).scalar_one()
    assert kept_for <= {params.zero_read_days} and tails == len(fleet.sites)


following_readings = st.lists(st.tuples(
    st.integers(0, 4),  # site (index into the fleet, modulo its size)
    st.one_of(st.integers(0, 4), st.integers(-6, 4)),  # day, from the site's last reading day
    times,
    st.one_of(st.just(0), st.just(0), st.integers(1, 20_000), st.integers(-2_000, -1)),  # Wh from the previous
    signals,
), min_size=1, max_size=8)


@PROPERTY_SETTINGS
@given(fleet=fleets(), params=params_strategy, extras=following_readings, as_of_shift=st.integers(-1, 3))
def test_a_followed_status_equals_the_recomputed_one(database, fleet, params, extras, as_of_shift):
    """New readings, mostly after each site's last one: the status written from the tails (engine.follow_readings)
    is the one a full recompute writes (with what a later follow continues from), for every site it writes; every
    other status is left as it was; and every site whose new readings are all after its last reading day, from a
    day by the as-of day on, is written."""
    last_days = {s.pk: max((r.reading_at.astimezone(LONDON).date() for r in fleet.readings if r.site_pk == s.pk),
                           default=fleet.start) for s in fleet.sites}
    shifted = [(index, (last_days[fleet.sites[index % len(fleet.sites)].pk] - fleet.start).days + offset, *rest)
               for index, offset, *rest in extras]
    new = late_readings(fleet, shifted)
    assume(new)
    as_of = max(r.reading_at.astimezone(LONDON).date() for r in new) + as_of_shift * ONE_DAY
    from_days = {}
    for r in new:
        day = ref.local_day(r.reading_at, params.timezone)
        from_days[r.site_pk] = min(from_days.get(r.site_pk, day), day)
    note(f"as_of={as_of} params={params} from_days={from_days}\n"
         + "\n".join(f"  new {r.site_pk} {r.reading_at.isoformat()} {r.register_kwh} sig={r.signal_level}"
                     for r in new))
    reset(database)
    load(database, fleet)
    with database.session_scope() as session:
        recompute_sites(session, params, as_of)
        session.execute(text("UPDATE site_status SET computed_at = '-infinity'"))
        tails = dict(session.execute(text("SELECT site_pk, last_day FROM site_tails")).all())
    before = snapshot(database, ("site_status",))["site_status"]
    with database.session_scope() as session:
        insert_readings(session, new)
    with database.session_scope() as session:
        followed = follow_readings(session, params, as_of, from_days)
    assert followed.held == 0
    with database.engine.connect() as conn:
        written = {pk for (pk,) in conn.execute(text("SELECT site_pk FROM site_status WHERE computed_at > 'epoch'"))}
    after = snapshot(database, ("site_status",))["site_status"]
    assert len(written) == followed.written
    assert written >= {pk for pk, day in from_days.items()
                       if tails.get(pk) is not None and tails[pk] < day <= as_of}
    followed_state = continued_from(database)
    reset(database, RESULT_TABLES)
    with database.session_scope() as session:
        recompute_sites(session, params, as_of)
    recomputed = snapshot(database, ("site_status",))["site_status"]
    def rows(table: dict, followed: bool) -> dict[str, dict]:
        return {"site_status": {key: row for key, row in table.items() if (key[0] in written) == followed}}

    assert_same(rows(recomputed, True), rows(after, True), labels=("recomputed", "followed"))
    assert_same(rows(before, False), rows(after, False), labels=("before", "after"))
    recomputed_state = continued_from(database)  # unknown (null) when read from site days: readings after as_of
    known = {pk for pk in written if recomputed_state[pk][1] is not None}
    assert {pk: recomputed_state[pk] for pk in known} == {pk: followed_state[pk] for pk in known}


def continued_from(database) -> dict[int, tuple]:
    """What a status of new readings continues from, per site: its flat run and recent days with their registers."""
    with database.engine.connect() as conn:
        return {pk: rest for pk, *rest in conn.execute(text(
            "SELECT site_pk, flat_since, recent_days, recent_kwh FROM site_status")).all()}


def test_following_leaves_a_site_it_cannot_follow_to_its_recompute(database):
    """Site 1 gets a reading before its tail's day, which lifts the reference; site 2's tail closing is replaced by
    one back at the day before's register, so its flat run began before what its tail knows. Following from the
    tails would keep site 1 zero_read and give site 2 zero days: both are left to their recompute. Site 3's new
    day is followed."""
    start, params = dt.date(2026, 6, 1), Params(timezone="Europe/London", zero_read_days=2)
    day = [start + n * ONE_DAY for n in range(5)]
    registers = {1: [10, 10, 10, 10], 2: [10, 10, 12], 3: [10, 11, 12]}
    fleet = Fleet(start, day[3], [Site(pk, 4.0, "North") for pk in registers],
                  [Reading(pk, instant(day[n], "any", 500_000), kwh, 20, "EE")
                   for pk, kwhs in registers.items() for n, kwh in enumerate(kwhs)], {})
    new = [Reading(1, instant(day[1], "end", 60), 13, 20, "EE"), Reading(2, instant(day[2], "end", 60), 10, 20, "EE"),
           Reading(3, instant(day[3], "any", 500_000), 13, 20, "EE")]
    reset(database)
    load(database, fleet)
    run_full(database, params, day[3])
    with database.session_scope() as session:
        insert_readings(session, new)
    with database.session_scope() as session:
        followed = follow_readings(session, params, day[3], {1: day[1], 2: day[2], 3: day[3]})
        written = session.execute(text("SELECT site_pk FROM site_status WHERE computed_at = now()")).scalars().all()
    assert (followed.written, written) == (1, [3])
    followed_status = snapshot(database, ("site_status",))["site_status"][(3,)]
    with database.session_scope() as session:
        recompute_sites(session, params, day[3], sites=[1, 2, 3], from_day=day[1])
    recomputed = snapshot(database, ("site_status",))["site_status"]
    assert (recomputed[(1,)]["status"], recomputed[(2,)]["status"], recomputed[(2,)]["days"]) == \
        ("healthy", "zero_read", 2)
    assert recomputed[(3,)] == followed_status


def test_a_followed_flat_run_starts_after_the_stored_day(database):
    """A day that moved the register, then four flat days, all after the stored status' day: the follow finds the
    flat run's start among the new days, zero_read for 4 days (continuing the stored flat run would give 5), as the
    recompute does."""
    start, params = dt.date(2026, 6, 1), Params(timezone="Europe/London", zero_read_days=2)
    day = [start + n * ONE_DAY for n in range(6)]
    fleet = Fleet(start, day[0], [Site(1, 4.0, "North")], [Reading(1, instant(day[0], "any", 500_000), 10, 20, "EE")],
                  {})
    reset(database)
    load(database, fleet)
    run_full(database, params, day[0])
    with database.session_scope() as session:
        insert_readings(session, [Reading(1, instant(d, "any", 500_000), 11, 20, "EE") for d in day[1:]])
    with database.session_scope() as session:
        assert follow_readings(session, params, day[5], {1: day[1]}).written == 1
    followed = snapshot(database, ("site_status",))["site_status"][(1,)]
    assert (followed["status"], followed["days"]) == ("zero_read", 4)
    with database.session_scope() as session:
        recompute_sites(session, params, day[5], sites=[1], from_day=day[1])
    assert snapshot(database, ("site_status",))["site_status"][(1,)] == followed


def test_a_site_far_behind_is_followed_a_few_readings_at_a_time(database):
    """Ten new readings over five days (two a day; the register moves on the first two days, then stays), followed
    three at a time: the first follow stops at the third (the second day's morning reading, that day's closing so
    far), the next ones continue from there, and after the fourth the status is the recompute's (zero_read since
    the second day)."""
    start, params = dt.date(2026, 6, 1), Params(timezone="Europe/London", zero_read_days=2)
    day = [start + n * ONE_DAY for n in range(6)]
    fleet = Fleet(start, day[0], [Site(1, 4.0, "North")], [Reading(1, instant(day[0], "any", 500_000), 10, 20, "EE")],
                  {})
    registers = {1: (11, 12), 2: (13, 14), 3: (14, 14), 4: (14, 14), 5: (14, 14)}
    new = [Reading(1, instant(day[n], "any", at), kwh, 20, "EE")
           for n, kwhs in registers.items() for at, kwh in zip((100_000, 900_000), kwhs, strict=True)]
    reset(database)
    load(database, fleet)
    run_full(database, params, day[0])
    with database.session_scope() as session:
        insert_readings(session, new)
    for follow, from_day in enumerate((day[1], day[2], day[4], day[5])):
        with database.session_scope() as session:
            assert follow_readings(session, params, day[5], {1: from_day}, readings_cap=3).written == 1
        followed = snapshot(database, ("site_status",))["site_status"][(1,)]
        if follow == 0:
            assert (followed["last_reading_at"], followed["last_register_kwh"]) == (new[2].reading_at, 13)
    with database.session_scope() as session:
        recompute_sites(session, params, day[5], sites=[1], from_day=day[1])
    recomputed = snapshot(database, ("site_status",))["site_status"][(1,)]
    assert (recomputed["status"], recomputed["days"]) == ("zero_read", 3)
    assert recomputed == followed


def test_a_status_kept_for_other_zero_read_days_is_left_to_its_recompute(database):
    """Five days at one register, statuses kept for zero_read_days 2 (three recent days). With zero_read_days 4 the
    reference is the first day, which those days do not hold: following them would find no reference and say
    healthy. The site is left to its recompute (zero_read for 4 days), after which it is followed again."""
    start = dt.date(2026, 6, 1)
    day = [start + n * ONE_DAY for n in range(6)]
    kept_for, now = (Params(timezone="Europe/London", zero_read_days=n) for n in (2, 4))
    fleet = Fleet(start, day[3], [Site(1, 4.0, "North")],
                  [Reading(1, instant(d, "any", 500_000), 12, 20, "EE") for d in day[:4]], {})
    reset(database)
    load(database, fleet)
    run_full(database, kept_for, day[3])
    with database.session_scope() as session:
        insert_readings(session, [Reading(1, instant(day[4], "any", 500_000), 12, 20, "EE")])
    with database.session_scope() as session:
        assert follow_readings(session, now, day[4], {1: day[4]}).written == 0
        recompute_sites(session, now, day[4], sites=[1], from_day=day[4])
    recomputed = snapshot(database, ("site_status",))["site_status"][(1,)]
    with database.engine.connect() as conn:
        kept = conn.execute(text("SELECT zero_read_days, cardinality(recent_days) FROM site_status")).one()
    assert (recomputed["status"], recomputed["days"], *kept) == ("zero_read", 4, 4, 5)
    with database.session_scope() as session:
        insert_readings(session, [Reading(1, instant(day[5], "any", 500_000), 12, 20, "EE")])
    with database.session_scope() as session:
        assert follow_readings(session, now, day[5], {1: day[5]}).written == 1
    followed = snapshot(database, ("site_status",))["site_status"][(1,)]
    assert (followed["status"], followed["days"]) == ("zero_read", 5)
