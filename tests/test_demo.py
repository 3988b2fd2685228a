"""The demo fleet holds every fault kind it says it injected, where it says it did."""

import datetime as dt

import pytest
from sqlalchemy import text

from lux.demo import FAULT_KINDS, DemoExists, seed_demo

END = dt.date(2026, 6, 30)
TZ = "Europe/London"

DAILY = """
WITH closing AS (
    SELECT DISTINCT ON (r.site_pk, (r.reading_at AT TIME ZONE :tz)::date)
           r.site_pk, (r.reading_at AT TIME ZONE :tz)::date AS day, r.register_kwh
    FROM readings r ORDER BY r.site_pk, (r.reading_at AT TIME ZONE :tz)::date, r.reading_at DESC
)
SELECT site_pk, day, register_kwh,
       register_kwh - lag(register_kwh) OVER w AS delta, day - lag(day) OVER w AS span
FROM closing WINDOW w AS (PARTITION BY site_pk ORDER BY day)
"""


@pytest.fixture
def fleet(database):
    with database.raw_connection() as conn:
        result = seed_demo(conn, sites=120, days=200, timezone=TZ, end_day=END, seed=3)
    with database.engine.begin() as conn:
        conn.execute(text(f"CREATE TEMP TABLE daily ON COMMIT DROP AS {DAILY}"), {"tz": TZ})
        faults = conn.execute(text(
            "SELECT f.site_pk, f.kind, f.start_day, f.end_day, f.details, s.capacity_kwp "
            "FROM demo_faults f JOIN sites s ON s.id = f.site_pk")).mappings().all()
        yield result, faults, conn


def one(conn, sql: str, **params):
    return conn.execute(text(sql), params).scalar_one()


def test_every_kind_is_injected_and_counted(fleet):
    result, faults, _ = fleet
    assert set(result.faults) == set(FAULT_KINDS)
    assert sum(result.faults.values()) == len(faults)
    assert result.readings > 120 * 150


def test_faults_are_visible_in_the_readings(fleet):
    _, faults, conn = fleet
    for f in faults:
        site, start, end = f["site_pk"], f["start_day"], f["end_day"]
        where = {"site": site, "start": start, "end": end or END}
        if f["kind"] == "never_reported":
            assert one(conn, "SELECT count(*) FROM daily WHERE site_pk = :site", **where) == 0
        elif f["kind"] == "no_coms":
            assert one(conn, "SELECT max(day) FROM daily WHERE site_pk = :site", **where) == start - dt.timedelta(1)
        elif f["kind"] == "gap":
            assert one(conn, "SELECT count(*) FROM daily WHERE site_pk = :site AND day BETWEEN :start AND :end",
                       **where) == 0
            assert one(conn, "SELECT span FROM daily WHERE site_pk = :site AND day = :end + 1", **where) >= 3
        elif f["kind"] == "stuck_register":
            spread = "SELECT max(register_kwh) - min(register_kwh) FROM daily " \
                     "WHERE site_pk = :site AND day BETWEEN :start - 1 AND :end"
            assert one(conn, spread, **where) == 0
            assert (where["end"] - start).days + 1 >= 3
        elif f["kind"] == "register_rollback":
            assert one(conn, "SELECT delta FROM daily WHERE site_pk = :site AND day = :start", **where) < 0
        elif f["kind"] == "spike":
            delta = one(conn, "SELECT delta FROM daily WHERE site_pk = :site AND day = :start", **where)
            assert delta > 8 * f["capacity_kwp"]
        elif f["kind"] == "low_signal":
            mean = "SELECT avg(signal_level) FROM readings WHERE site_pk = :site " \
                   "AND (reading_at AT TIME ZONE 'Europe/London')::date BETWEEN :start AND :start + 6"
            assert one(conn, mean, **where) < 10
        elif f["kind"] == "underperformance":
            ratio = """
                SELECT sum(d.delta) / sum(e.expected_kwh / extract(day FROM
                       date_trunc('month', d.day) + interval '1 month - 1 day'))
                FROM daily d JOIN expected_generation e ON e.site_pk = d.site_pk AND e.month = extract(month FROM d.day)
                WHERE d.site_pk = :site AND d.day > :start AND d.span = 1"""
            assert one(conn, ratio, **where) < 0.8


def test_healthy_sites_meet_their_expected_generation(fleet):
    _, _, conn = fleet
    ratio = """
        SELECT sum(d.delta) / sum(e.expected_kwh / extract(day FROM
               date_trunc('month', d.day) + interval '1 month - 1 day'))
        FROM daily d JOIN expected_generation e ON e.site_pk = d.site_pk AND e.month = extract(month FROM d.day)
        WHERE d.span = 1 AND d.site_pk NOT IN (SELECT site_pk FROM demo_faults)"""
    assert 0.85 < one(conn, ratio) < 1.1


def test_same_seed_same_fleet_and_no_silent_double_seed(database):
    def snapshot():
        with database.engine.connect() as conn:
            return conn.execute(text(
                "SELECT md5(string_agg(concat_ws('|', s.site_id, r.reading_at, r.register_kwh, r.signal_level), ','"
                " ORDER BY s.site_id, r.reading_at)) FROM readings r JOIN sites s ON s.id = r.site_pk")).scalar_one()

    with database.raw_connection() as conn:
        seed_demo(conn, sites=20, days=30, timezone=TZ, end_day=END, seed=9)
    first = snapshot()
    with database.raw_connection() as conn, pytest.raises(DemoExists):
        seed_demo(conn, sites=20, days=30, timezone=TZ, end_day=END, seed=9)
    with database.raw_connection() as conn:
        seed_demo(conn, sites=20, days=30, timezone=TZ, end_day=END, seed=9, replace=True)
    assert snapshot() == first


def test_readings_fall_on_their_local_day_across_dst(database):
    with database.raw_connection() as conn:
        seed_demo(conn, sites=10, days=10, timezone=TZ, end_day=dt.date(2026, 3, 31), seed=1)
    with database.engine.connect() as conn:
        days = conn.execute(text(
            "SELECT count(DISTINCT (reading_at AT TIME ZONE 'Europe/London')::date) FROM readings")).scalar_one()
        hours = conn.execute(text(
            "SELECT min(extract(hour FROM reading_at AT TIME ZONE 'Europe/London')), "
            "max(extract(hour FROM reading_at AT TIME ZONE 'Europe/London')) FROM readings")).one()
    assert days == 10
    assert hours[0] >= 9 and hours[1] <= 22
