"""Fleet snapshots built in SQL from consistent cached rows, against hand-computed expectations.

The site days below are the source: the daily rollups are computed from them with `recompute_rollups`,
the monthly performance rows are written by hand from them (as of D) and checked here against them.
The fleet, as of D = 2026-06-10 (June: 30 days; last 7 days 06-04…06-10; last 30 days 05-12…06-10):

| site | region      | kWp | active | expected (kWh/month)           | status    | signal | network  |
|------|-------------|-----|--------|--------------------------------|-----------|--------|----------|
| A    | South West  | 4   | yes    | May 248 (8/day), June 300 (10) | healthy   | 22     | EE       |
| B    | null        | 2   | yes    | June 150 (5/day)               | zero_read | 12     | Vodafone |
| C    | TBC         | 3   | yes    | –                              | no_coms   | 5      | null     |
| D    | South West  | 5   | no     | June 6000 (200/day)            | no_coms   | 16     | EE       |
| E    | London      | 1   | yes    | –                              | (none)    |        |          |
"""

import datetime as dt

import pytest
from sqlalchemy import select, text

from lux.compute import engine, rollups
from lux.compute.engine import recompute_rollups
from lux.compute.params import Params
from lux.compute.performance import rebuild_performance
from lux.compute.snapshots import KINDS, build_snapshots
from models import FleetSnapshot

D = dt.date(2026, 6, 10)
SITES = {  # site_id: (region, capacity_kwp, active)
    "A": ("South West", 4.0, True), "B": (None, 2.0, True), "C": ("TBC", 3.0, True),
    "D": ("South West", 5.0, False), "E": ("London", 1.0, True),
}
EXPECTED = [("A", 5, 248.0), ("A", 6, 300.0), ("B", 6, 150.0), ("D", 6, 6000.0)]
DAYS = [  # site, day, generation_kwh, segment_end, readings (a closing reading when > 0), estimated
    ("A", "2026-05-31", 20.0, "2026-05-31", 1, False), ("A", "2026-06-01", 10.0, "2026-06-01", 1, False),
    ("A", "2026-06-08", 8.0, "2026-06-08", 1, False), ("A", "2026-06-09", 9.0, "2026-06-09", 2, False),
    ("A", "2026-06-10", 12.0, "2026-06-10", 3, False),
    ("A", "2026-06-11", 7.0, "2026-06-11", 4, False),  # after D
    ("B", "2026-06-04", 4.0, "2026-06-04", 1, False), ("B", "2026-06-05", None, "2026-06-05", 1, False),  # rollback
    ("B", "2026-06-09", 3.0, "2026-06-09", 2, False),
    ("B", "2026-06-10", 2.0, "2026-06-12", 1, False),  # settled after D
    ("C", "2026-05-20", 7.0, "2026-05-20", 1, False),
    ("C", "2026-06-09", 5.0, "2026-06-10", 0, True),  # no reading of its own: estimated
    ("C", "2026-06-10", 6.0, "2026-06-10", 2, False),
    ("D", "2026-06-09", 100.0, "2026-06-09", 1, False),  # inactive site
]
# Monthly performance as of D: valued days ≤ D settled by D; expected = monthly × covered days / days in month.
MONTHS = [  # site, month, actual_kwh, covered_days, expected_kwh, ratio_pct
    ("A", "2026-05-01", 20.0, 1, 8.0, 250.0),  # 05-31: 248 × 1/31 (not this month)
    ("A", "2026-06-01", 39.0, 4, 40.0, 97.5),  # 06-01, 06-08…06-10 (06-11 is after D): 300 × 4/30
    ("B", "2026-06-01", 7.0, 2, 10.0, 70.0),  # 06-04, 06-09 (06-05 no value, 06-10 settled after D): 150 × 2/30
    ("C", "2026-05-01", 7.0, 1, None, None), ("C", "2026-06-01", 11.0, 2, None, None),
    ("D", "2026-06-01", 100.0, 1, 200.0, 50.0),  # inactive: 6000 × 1/30
]
STATUS = [("A", "healthy", 22.0, "EE"), ("B", "zero_read", 12.0, "Vodafone"), ("C", "no_coms", 5.0, None),
          ("D", "no_coms", 16.0, "EE")]
ANOMALIES = [  # site, type, start_day, end_day
    ("A", "gap", "2026-06-02", "2026-06-07"), ("A", "spike", "2026-06-10", None),
    ("B", "stuck_register", "2026-06-06", None), ("B", "low_signal", "2026-06-01", "2026-06-12"),
    ("C", "gap", "2026-06-11", None), ("C", "register_rollback", "2026-06-10", "2026-06-10"),
    ("D", "stuck_register", "2026-06-01", None),
]


def day(value: str | None) -> dt.date | None:
    return value and dt.date.fromisoformat(value)


def seed(session) -> None:
    """The fleet's cached rows as of D; also the rollup of 06-11 as a later run leaves it (not counted as of D)."""
    pk = {}
    for site_id, (region, capacity, active) in SITES.items():
        pk[site_id] = session.execute(text(
            "INSERT INTO sites (site_id, name, region, capacity_kwp, active) "
            "VALUES (:s, :n, :r, :c, :a) RETURNING id"),
            {"s": site_id, "n": f"Site {site_id}", "r": region, "c": capacity, "a": active}).scalar_one()
    for site_id, month, kwh in EXPECTED:
        session.execute(text("INSERT INTO expected_generation (site_pk, month, expected_kwh) VALUES (:p, :m, :k)"),
                        {"p": pk[site_id], "m": month, "k": kwh})
    for site_id, value, kwh, segment_end, readings, estimated in DAYS:
        session.execute(text(
            "INSERT INTO site_days (site_pk, day, closing_at, generation_kwh, segment_end, readings, estimated, "
            "rollback) VALUES (:p, :d, CASE WHEN :r > 0 THEN CAST(:d AS date) + time '18:00' END, :g, :e, :r, :x, "
            ":b)"),
            {"p": pk[site_id], "d": day(value), "g": kwh, "e": day(segment_end), "r": readings, "x": estimated,
             "b": kwh is None})
    for site_id, month, actual, covered, expected, ratio in MONTHS:
        session.execute(text(
            "INSERT INTO monthly_performance (site_pk, month, actual_kwh, covered_days, expected_kwh, ratio_pct, "
            "as_of) VALUES (:p, :m, :a, :c, :e, :r, :d)"),
            {"p": pk[site_id], "m": day(month), "a": actual, "c": covered, "e": expected, "r": ratio, "d": D})
    for site_id, status, signal, network in STATUS:
        session.execute(text("INSERT INTO site_status (site_pk, as_of, status, days, signal_level, network) "
                             "VALUES (:p, :d, :s, 0, :l, :n)"),
                        {"p": pk[site_id], "d": D, "s": status, "l": signal, "n": network})
    for site_id, kind, start, end in ANOMALIES:
        session.execute(text("INSERT INTO anomalies (site_pk, type, start_day, end_day, as_of) "
                             "VALUES (:p, :t, :s, :e, '2026-06-12')"),
                        {"p": pk[site_id], "t": kind, "s": day(start), "e": day(end)})
    recompute_rollups(session, D)
    later = D + dt.timedelta(days=1)
    recompute_rollups(session, later, later, later)


@pytest.fixture
def snapshots(database):
    """Seed the fleet, build the snapshots as of D; {kind: payload}."""
    with database.session_scope() as session:
        seed(session)
        assert build_snapshots(session, Params(), D) == len(KINDS)
    with database.session_scope() as session:
        rows = session.scalars(select(FleetSnapshot).where(FleetSnapshot.as_of == D)).all()
        return {row.kind: row.payload for row in rows}


def by_region(regions: list[dict]) -> dict[str, dict]:
    return {row["region"]: row for row in regions}


def test_hand_written_monthly_performance_is_that_of_the_site_days(database):
    """MONTHS is what the engine's monthly performance makes of DAYS and EXPECTED as of D."""
    with database.session_scope() as session:
        seed(session)
        written = session.execute(text(
            "SELECT s.site_id, mp.month, mp.actual_kwh, mp.covered_days, mp.expected_kwh, mp.ratio_pct "
            "FROM monthly_performance mp JOIN sites s ON s.id = mp.site_pk ORDER BY 1, 2")).all()
        session.execute(engine.CREATE_SCOPE)
        session.execute(engine.CREATE_REBUILT)
        session.execute(text("INSERT INTO compute_scope (site_pk) SELECT id FROM sites"))
        rebuild_performance(session, D)
        rebuilt = session.execute(text(
            "SELECT s.site_id, mp.month, mp.actual_kwh, mp.covered_days, mp.expected_kwh, mp.ratio_pct "
            "FROM monthly_performance mp JOIN sites s ON s.id = mp.site_pk ORDER BY 1, 2")).all()
        session.rollback()
    assert [(*row[:2], *(None if v is None else pytest.approx(v) for v in row[2:])) for row in rebuilt] == written
    assert [(site, day(month), *rest) for site, month, *rest in MONTHS] == written


def test_every_kind_is_written_once_per_as_of_and_rebuilt_in_place(database, snapshots):
    assert set(snapshots) == set(KINDS)
    with database.session_scope() as session:
        first = dict(session.execute(text("SELECT kind, computed_at FROM fleet_snapshots")).all())
        assert build_snapshots(session, Params(), D) == 5
        assert build_snapshots(session, Params(), D + dt.timedelta(days=1)) == 5
    with database.session_scope() as session:
        rows = session.execute(text("SELECT kind, as_of, computed_at FROM fleet_snapshots")).all()
    assert len(rows) == 10
    assert all(computed > first[kind] for kind, as_of, computed in rows if as_of == D)


def test_quick_stats(snapshots):
    stats = snapshots["quick-stats"]
    assert stats["total_sites"] == 5 and stats["active_sites"] == 4
    assert stats["status_counts"] == {"healthy": 1, "zero_read": 1, "no_coms": 1, "not_computed": 1}
    # open at D: A spike (no end), B stuck (no end), B low_signal (ends after D); not: ended, later, inactive
    assert stats["open_anomalies"] == {"stuck_register": 1, "register_rollback": 0, "gap": 0, "spike": 1,
                                       "low_signal": 1, "underperformance": 0}
    assert stats["open_anomalies_total"] == 3
    assert stats["generation_yesterday_kwh"] == pytest.approx(9 + 3 + 5)  # D's 100 kWh: inactive
    # A 10+8+9+12 (not 06-11), B 4+3 (06-10 settled after D), C 5+6; not A's 05-31
    assert stats["generation_month_to_date_kwh"] == pytest.approx(57)
    # A 97.5 %; B 70 % < 80; C has no expected generation; D (50 %) is inactive
    assert stats["underperforming_sites"] == 1
    assert stats["performance_threshold"] == 80 and stats["month_start"] == "2026-06-01"


def test_underperformance_follows_the_threshold_parameter(database):
    with database.session_scope() as session:
        seed(session)
        build_snapshots(session, Params(performance_threshold=98), D)
        payload = session.scalar(select(FleetSnapshot.payload).where(FleetSnapshot.kind == "quick-stats"))
    assert payload["underperforming_sites"] == 2 and payload["performance_threshold"] == 98


def test_fleet_summary_per_region_with_unknown(snapshots):
    regions = snapshots["fleet-summary"]["regions"]
    assert [r["region"] for r in regions] == ["London", "South West", "Unknown"]
    london, south_west, unknown = regions
    assert london == {"region": "London", "sites": 1, "capacity_kwp": 1,
                      "status_counts": {"healthy": 0, "zero_read": 0, "no_coms": 0, "not_computed": 1},
                      "generation_7d_kwh": 0, "generation_30d_kwh": 0, "performance_ratio_pct": None}
    assert south_west["sites"] == 1 and south_west["capacity_kwp"] == 4  # D is inactive
    assert south_west["status_counts"]["healthy"] == 1
    assert south_west["generation_7d_kwh"] == pytest.approx(8 + 9 + 12)
    assert south_west["generation_30d_kwh"] == pytest.approx(29 + 10 + 20)
    assert south_west["performance_ratio_pct"] == pytest.approx(97.5)  # June only; not D's 50 %
    assert unknown["sites"] == 2 and unknown["capacity_kwp"] == 5  # null and TBC
    assert unknown["status_counts"] == {"healthy": 0, "zero_read": 1, "no_coms": 1, "not_computed": 0}
    assert unknown["generation_7d_kwh"] == pytest.approx(4 + 3 + 5 + 6)
    assert unknown["generation_30d_kwh"] == pytest.approx(18 + 7)
    assert unknown["performance_ratio_pct"] == pytest.approx(70)  # C has no expected: not weighted


def test_production_metrics(snapshots):
    metrics = snapshots["production-metrics"]
    daily = metrics["daily"]
    assert len(daily) == 30 and daily[0]["day"] == "2026-05-12" and daily[-1]["day"] == "2026-06-10"
    assert daily[0]["generation_kwh"] is None and daily[0]["sites"] is None
    # 06-09: A, B and C (estimated, no reading of its own) valued; D inactive
    assert daily[-2] == {"day": "2026-06-09", "generation_kwh": 17, "sites": 4, "reporting_sites": 2,
                         "valued_sites": 3, "estimated_sites": 1, "readings": 4}
    # 06-10: A and C; B's value settles after D
    assert daily[-1] == {"day": "2026-06-10", "generation_kwh": 18, "sites": 4, "reporting_sites": 2,
                         "valued_sites": 2, "estimated_sites": 0, "readings": 5}
    mtd = metrics["month_to_date"]  # June rows of the active sites; C counts in actual but has no expected
    assert mtd["actual_kwh"] == pytest.approx(39 + 7 + 11) and mtd["expected_kwh"] == pytest.approx(40 + 10)
    assert mtd["ratio_pct"] == pytest.approx(100 * (39 + 7) / 50) and mtd["sites_with_expected"] == 2
    # not A's May (250 %) nor inactive D (50 %)
    assert [(s["site_id"], s["ratio_pct"]) for s in metrics["top_sites"]] == [("A", 97.5), ("B", 70)]
    assert [s["site_id"] for s in metrics["bottom_sites"]] == ["B", "A"]
    assert metrics["bottom_sites"][0] == {"site_id": "B", "name": "Site B", "region": "Unknown",
                                          "actual_kwh": 7, "expected_kwh": 10, "ratio_pct": 70}


def test_connection_analysis(snapshots):
    connection = snapshots["connection-analysis"]
    assert connection["networks"] == [  # most sites first; E (no status) and C (no network) are Unknown
        {"network": "Unknown", "sites": 2, "average_signal": 5},
        {"network": "EE", "sites": 1, "average_signal": 22},
        {"network": "Vodafone", "sites": 1, "average_signal": 12},
    ]
    assert connection["signal_quality"] == {"Poor": 1, "Average": 1, "Good": 0, "Excellent": 1, "Unknown": 1}
    assert by_region(connection["regions"]) == {
        "London": {"region": "London", "sites": 1, "average_signal": None, "no_coms": 0},
        "South West": {"region": "South West", "sites": 1, "average_signal": 22, "no_coms": 0},
        "Unknown": {"region": "Unknown", "sites": 2, "average_signal": 8.5, "no_coms": 1},
    }


def test_readings_analysis(snapshots):
    analysis = snapshots["readings-analysis"]
    assert analysis["window_start"] == "2026-05-12"
    regions = by_region(analysis["regions"])
    assert set(regions) == {"London", "South West", "Unknown"}
    south_west, unknown = regions["South West"], regions["Unknown"]
    assert south_west["total_readings"] == 1 + 1 + 1 + 2 + 3  # A's; not the 06-11 rollup, nor inactive D
    assert south_west["average_daily_generation_kwh"] == pytest.approx((20 + 10 + 8 + 9 + 12) / 5)
    assert south_west["anomalies"] == 2 and south_west["open_anomalies"] == 1
    # energy-weighted across months: 05-31 expects 248/31 = 8 kWh, each June day 300/30 = 10 kWh
    assert south_west["performance_score"] == round(100 * 59 / (8 + 4 * 10), 2)  # not 100 × 59/50
    assert unknown["total_readings"] == 1 + 1 + 2 + 1 + 0 + 2  # not B's 06-10 (settled after D)
    # B 4 + 3, C 7 + 5 + 6: five valued site-days (B's 06-05 has no value)
    assert unknown["average_daily_generation_kwh"] == pytest.approx((4 + 3 + 7 + 5 + 6) / 5)
    assert unknown["anomalies"] == 3 and unknown["open_anomalies"] == 2  # C's gap starts after D
    assert unknown["performance_score"] == pytest.approx(70)  # B 7 / (2 × 5); C has no expected: not weighted
    assert regions["London"] == {"region": "London", "sites": 1, "total_readings": 0,
                                 "average_daily_generation_kwh": None, "anomalies": 0, "open_anomalies": 0,
                                 "performance_score": None}


def test_empty_fleet_gives_zeros_and_empty_lists(database):
    with database.session_scope() as session:
        assert build_snapshots(session, Params(), D) == 5
        payloads = dict(session.execute(text("SELECT kind, payload FROM fleet_snapshots")).all())
    assert payloads["quick-stats"]["total_sites"] == 0
    assert payloads["quick-stats"]["generation_month_to_date_kwh"] == 0
    assert payloads["fleet-summary"]["regions"] == []
    assert payloads["production-metrics"]["top_sites"] == [] and len(payloads["production-metrics"]["daily"]) == 30
    assert payloads["production-metrics"]["month_to_date"]["ratio_pct"] is None
    assert payloads["connection-analysis"]["networks"] == []
    assert payloads["readings-analysis"]["regions"] == []


def rollup_rows(database) -> dict:
    """Every daily rollup row but its computed_at: (area, day) → values."""
    with database.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT area, day, sites, reporting_sites, valued_sites, estimated_sites, readings, generation_kwh, "
            "rated_generation_kwh, expected_kwh FROM daily_rollups")).mappings().all()
    return {(row["area"], row["day"]): dict(row) for row in rows}


def test_a_few_days_across_a_month_end_roll_up_as_every_day_does(database):
    """The rollup of a short range (each site's key range, and only the expected generation of the range's
    months) writes the rows the rollup of every day wrote, on both sides of the end of May."""
    with database.session_scope() as session:
        seed(session)
    every_day = rollup_rows(database)
    assert every_day[("fleet", dt.date(2026, 5, 31))]["expected_kwh"] == pytest.approx(8.0)  # A: 248 / 31
    assert every_day[("fleet", dt.date(2026, 6, 1))]["expected_kwh"] == pytest.approx(10.0)  # A: 300 / 30
    with database.session_scope() as session:
        session.execute(text("UPDATE daily_rollups SET expected_kwh = -1 WHERE day BETWEEN '2026-05-31' AND :d"),
                        {"d": D})
        recompute_rollups(session, D, dt.date(2026, 5, 31))
    assert rollup_rows(database) == every_day


def test_a_long_range_holding_few_site_days_is_read_site_by_site_and_rolls_up_as_every_day_does(database):
    """Nine sites fall silent on 1 March; a tenth reports on to 10 April. The rollup from 2 March covers 40 days but
    holds the tenth site's days alone, so it reads each site's key range instead of scanning the table (as it did for
    any range of 31 days or more) and writes what the rollup of every day wrote. The whole history is scanned."""
    as_of, silent_from, back_to = dt.date(2026, 4, 10), dt.date(2026, 3, 2), dt.date(2026, 1, 1)
    with database.session_scope() as session:
        pks = session.execute(text(
            "INSERT INTO sites (site_id, name, region, capacity_kwp) "
            "SELECT 'L' || n, 'l' || n, CASE WHEN n % 2 = 0 THEN 'London' ELSE 'Wales' END, 4 "
            "FROM generate_series(1, 10) n RETURNING id")).scalars().all()
        session.execute(text(
            "INSERT INTO expected_generation (site_pk, month, expected_kwh) "
            "SELECT p, m, 100 + m FROM unnest(CAST(:pks AS int[])) p, generate_series(1, 12) m"),
            {"pks": pks[:4] + pks[-1:]})
        session.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level)
            SELECT p, date '2026-01-01' + n + time '12:00', 3 * n + p % 5, 18
              FROM unnest(CAST(:pks AS int[])) p, generate_series(0, 99) n  -- 1 January to 10 April
             WHERE n <= 59 OR p = :last  -- 59: 1 March"""), {"pks": pks, "last": pks[-1]})
        engine.recompute_sites(session, Params(), as_of)
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE site_days"))
    with database.session_scope() as session:
        recompute_rollups(session, as_of)
        assert rollups.probes_range(session, silent_from, as_of)
        assert not rollups.probes_range(session, back_to, as_of)
    every_day = rollup_rows(database)
    assert every_day[("fleet", dt.date(2026, 4, 1))]["reporting_sites"] == 1
    assert every_day[("fleet", dt.date(2026, 4, 1))]["expected_kwh"] == pytest.approx(104 / 30)
    with database.session_scope() as session:
        session.execute(text("UPDATE daily_rollups SET generation_kwh = -1, expected_kwh = -1 WHERE day >= :d"),
                        {"d": silent_from})
        recompute_rollups(session, as_of, silent_from)
    assert rollup_rows(database) == every_day
