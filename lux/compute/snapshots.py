"""Fleet snapshots: one JSON document per kind and as-of day, aggregated in SQL from the cached tables.

Each kind is one `INSERT … SELECT` upsert into `fleet_snapshots`, so the API only reads them.
No kind reads `site_days`: per-day figures come from `daily_rollups` (a few rows per day), per-site
month-to-date figures from `monthly_performance`, so a snapshot costs the same whatever the history.
Conventions shared by every kind (docs/COMPUTATION.md, "Rollups and snapshots"):

- aggregates cover **active** sites; `total_sites` alone counts every registered site;
- a region is `Unknown` when null, empty or the legacy `TBC`;
- a generation value counts as of `D` only when its `segment_end ≤ D`: the rollups and monthly
  performance are computed that way, so the snapshots of `D` follow a run as of `D`;
- windows end on `D`: "last 7 days" is `D−6 … D`, "last 30 days" `D−29 … D`, "month to date"
  the first of `D`'s month … `D`;
- generation of a window is the sum of its days' rollups (`area = 'fleet'`, or the region's);
  average daily generation is `Σgeneration_kwh / Σvalued_sites` (per valued site-day);
- expected generation of one valued day is `expected_kwh[month] / days_in_month`, so the
  energy-weighted ratio of any window is `100 × Σactual / Σexpected` over valued days of sites
  with expected generation (SPEC §4, summed day by day): `100 × Σrated_generation_kwh / Σexpected_kwh`
  of the window's rollups;
- month to date per site is its `monthly_performance` row of `D`'s month (actual, covered days,
  expected scaled to them, ratio); a fleet or region month-to-date ratio weights those rows by energy;
- an anomaly is open at `D` when `start_day ≤ D` and it has no `end_day` or ends after `D`;
- statuses, signal levels and networks are those of `site_status` (the latest as-of computed).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.params import Params
from lux.compute.sqlparts import UNKNOWN, region_sql

STATUSES = ("healthy", "zero_read", "no_coms")
ANOMALY_TYPES = ("stuck_register", "register_rollback", "gap", "spike", "low_signal", "underperformance")
SIGNAL_BANDS = ("Poor", "Average", "Good", "Excellent")
TOP_SITES = 10


def signal_band_sql(column: str) -> str:
    """SPEC §4 signal quality of a (mean) CSQ column; null when the level is unknown."""
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} < 10 THEN 'Poor' "
            f"WHEN {column} < 15 THEN 'Average' WHEN {column} < 20 THEN 'Good' ELSE 'Excellent' END")


def _zeros(keys: tuple[str, ...]) -> str:
    """A jsonb object with every key at 0, so absent categories still appear."""
    return "jsonb_build_object(" + ", ".join(f"'{key}', 0" for key in keys) + ")"


def _round(expr: str, digits: int = 3) -> str:
    return f"round(({expr})::numeric, {digits})"


# Active sites with their display region.
ACTIVE = f"active AS (SELECT s.id, s.site_id, s.name, {region_sql('s.region')} AS region, s.capacity_kwp "\
         "FROM sites s WHERE s.active)"

# Month to date per active site with a valued day: actual, covered days, expected (null without expected
# generation) and ratio (null without a positive expected), from its monthly performance of :month_start.
MONTH_TO_DATE = """mtd AS (
    SELECT mp.site_pk, mp.actual_kwh, mp.covered_days, mp.expected_kwh, mp.ratio_pct
      FROM monthly_performance mp JOIN active a ON a.id = mp.site_pk
     WHERE mp.month = :month_start)"""

# Energy-weighted ratio (%) of daily rollups (see the module docstring).
ROLLUP_RATIO = "100 * sum(rated_generation_kwh) / NULLIF(sum(expected_kwh), 0)"

# Energy-weighted ratio (%) of rows carrying `actual_kwh` and `expected_kwh`.
WEIGHTED_RATIO = "100 * sum(actual_kwh) FILTER (WHERE expected_kwh IS NOT NULL) / NULLIF(sum(expected_kwh), 0)"

# Episodes open at :as_of, of active sites.
OPEN_ANOMALIES = """open_anomalies AS (
    SELECT an.site_pk, an.type, a.region FROM anomalies an JOIN active a ON a.id = an.site_pk
     WHERE an.start_day <= :as_of AND (an.end_day IS NULL OR an.end_day > :as_of))"""

QUICK_STATS = f"""
WITH {ACTIVE}, {MONTH_TO_DATE}, {OPEN_ANOMALIES},
statuses AS (
    SELECT COALESCE(st.status, 'not_computed') AS status, count(*) AS n
      FROM active a LEFT JOIN site_status st ON st.site_pk = a.id GROUP BY 1),
generation AS (
    SELECT sum(generation_kwh) FILTER (WHERE day = :as_of - 1) AS yesterday,
           sum(generation_kwh) FILTER (WHERE day >= :month_start) AS month
      FROM daily_rollups
     WHERE area = 'fleet' AND day BETWEEN LEAST(:as_of - 1, :month_start) AND :as_of)
SELECT jsonb_build_object(
    'total_sites', (SELECT count(*) FROM sites),
    'active_sites', (SELECT count(*) FROM active),
    'status_counts', {_zeros((*STATUSES, "not_computed"))}
                     || COALESCE((SELECT jsonb_object_agg(status, n) FROM statuses), '{{}}'),
    'open_anomalies', {_zeros(ANOMALY_TYPES)}
                      || COALESCE((SELECT jsonb_object_agg(type, n)
                                     FROM (SELECT type, count(*) AS n FROM open_anomalies GROUP BY type) t), '{{}}'),
    'open_anomalies_total', (SELECT count(*) FROM open_anomalies),
    'generation_yesterday_kwh', (SELECT {_round("COALESCE(yesterday, 0)")} FROM generation),
    'generation_month_to_date_kwh', (SELECT {_round("COALESCE(month, 0)")} FROM generation),
    'underperforming_sites', (SELECT count(*) FROM mtd WHERE ratio_pct < :threshold),
    'performance_threshold', CAST(:threshold AS float8),
    'month_start', CAST(:month_start AS date))
"""

FLEET_SUMMARY = f"""
WITH {ACTIVE}, {MONTH_TO_DATE},
counts AS (
    SELECT a.region, count(*) AS sites, sum(a.capacity_kwp) AS capacity_kwp,
           count(*) FILTER (WHERE st.status = 'healthy') AS healthy,
           count(*) FILTER (WHERE st.status = 'zero_read') AS zero_read,
           count(*) FILTER (WHERE st.status = 'no_coms') AS no_coms,
           count(*) FILTER (WHERE st.status IS NULL) AS not_computed
      FROM active a LEFT JOIN site_status st ON st.site_pk = a.id GROUP BY a.region),
generation AS (
    SELECT area AS region, sum(generation_kwh) FILTER (WHERE day >= :as_of - 6) AS last_7,
           sum(generation_kwh) AS last_30
      FROM daily_rollups
     WHERE area <> 'fleet' AND day BETWEEN :as_of - 29 AND :as_of
     GROUP BY area),
performance AS (
    SELECT a.region, {WEIGHTED_RATIO} AS ratio_pct
      FROM mtd JOIN active a ON a.id = mtd.site_pk GROUP BY a.region)
SELECT jsonb_build_object(
    'month_start', CAST(:month_start AS date),
    'regions', COALESCE(jsonb_agg(jsonb_build_object(
        'region', c.region, 'sites', c.sites, 'capacity_kwp', {_round("c.capacity_kwp")},
        'status_counts', jsonb_build_object('healthy', c.healthy, 'zero_read', c.zero_read, 'no_coms', c.no_coms,
                                            'not_computed', c.not_computed),
        'generation_7d_kwh', {_round("COALESCE(g.last_7, 0)")},
        'generation_30d_kwh', {_round("COALESCE(g.last_30, 0)")},
        'performance_ratio_pct', {_round("p.ratio_pct", 2)}) ORDER BY c.region), '[]'::jsonb))
  FROM counts c LEFT JOIN generation g ON g.region = c.region LEFT JOIN performance p ON p.region = c.region
"""

_RANKED_SITE = f"""jsonb_build_object('site_id', a.site_id, 'name', a.name, 'region', a.region,
        'actual_kwh', {_round("m.actual_kwh")}, 'expected_kwh', {_round("m.expected_kwh")},
        'ratio_pct', {_round("m.ratio_pct", 2)})"""

PRODUCTION_METRICS = f"""
WITH {ACTIVE}, {MONTH_TO_DATE},
days AS (SELECT CAST(:as_of AS date) - i AS day FROM generate_series(0, 29) AS i)
SELECT jsonb_build_object(
    'daily', (SELECT jsonb_agg(jsonb_build_object(
                  'day', d.day, 'generation_kwh', {_round("r.generation_kwh")}, 'sites', r.sites,
                  'reporting_sites', r.reporting_sites, 'valued_sites', r.valued_sites,
                  'estimated_sites', r.estimated_sites, 'readings', r.readings) ORDER BY d.day)
                FROM days d LEFT JOIN daily_rollups r ON r.area = 'fleet' AND r.day = d.day),
    'month_to_date', (SELECT jsonb_build_object(
                          'month_start', CAST(:month_start AS date),
                          'actual_kwh', {_round("COALESCE(sum(actual_kwh), 0)")},
                          'expected_kwh', {_round("sum(expected_kwh)")},
                          'ratio_pct', {_round(WEIGHTED_RATIO, 2)},
                          'sites_with_expected', count(expected_kwh))
                        FROM mtd),
    'top_sites', COALESCE((SELECT jsonb_agg({_RANKED_SITE} ORDER BY m.ratio_pct DESC, a.site_id)
                             FROM (SELECT * FROM mtd WHERE ratio_pct IS NOT NULL
                                    ORDER BY ratio_pct DESC, site_pk LIMIT {TOP_SITES}) m
                             JOIN active a ON a.id = m.site_pk), '[]'::jsonb),
    'bottom_sites', COALESCE((SELECT jsonb_agg({_RANKED_SITE} ORDER BY m.ratio_pct, a.site_id)
                                FROM (SELECT * FROM mtd WHERE ratio_pct IS NOT NULL
                                       ORDER BY ratio_pct, site_pk LIMIT {TOP_SITES}) m
                                JOIN active a ON a.id = m.site_pk), '[]'::jsonb))
"""

CONNECTION_ANALYSIS = f"""
WITH {ACTIVE},
sites_status AS (
    SELECT a.region, st.status, st.signal_level, {signal_band_sql("st.signal_level")} AS band,
           COALESCE(st.network, '{UNKNOWN}') AS network
      FROM active a LEFT JOIN site_status st ON st.site_pk = a.id)
SELECT jsonb_build_object(
    'networks', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                              'network', network, 'sites', sites, 'average_signal', {_round("average", 2)})
                              ORDER BY sites DESC, network)
                            FROM (SELECT network, count(*) AS sites, avg(signal_level) AS average
                                    FROM sites_status GROUP BY network) n), '[]'::jsonb),
    'signal_quality', {_zeros((*SIGNAL_BANDS, UNKNOWN))}
                      || COALESCE((SELECT jsonb_object_agg(band, n)
                                     FROM (SELECT COALESCE(band, '{UNKNOWN}') AS band, count(*) AS n
                                             FROM sites_status GROUP BY 1) b), '{{}}'),
    'regions', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                             'region', region, 'sites', sites, 'average_signal', {_round("average", 2)},
                             'no_coms', no_coms) ORDER BY region)
                           FROM (SELECT region, count(*) AS sites, avg(signal_level) AS average,
                                        count(*) FILTER (WHERE status = 'no_coms') AS no_coms
                                   FROM sites_status GROUP BY region) r), '[]'::jsonb))
"""

READINGS_ANALYSIS = f"""
WITH {ACTIVE}, {OPEN_ANOMALIES},
regions AS (SELECT region, count(*) AS sites FROM active GROUP BY region),
readings AS (
    SELECT area AS region, sum(readings) AS readings FROM daily_rollups WHERE day <= :as_of GROUP BY area),
generation AS (
    SELECT area AS region, sum(generation_kwh) / NULLIF(sum(valued_sites), 0) AS average,
           {ROLLUP_RATIO} AS ratio_pct
      FROM daily_rollups
     WHERE area <> 'fleet' AND day BETWEEN :as_of - 29 AND :as_of
     GROUP BY area),
episodes AS (
    SELECT a.region, count(*) AS anomalies FROM anomalies an JOIN active a ON a.id = an.site_pk
     WHERE an.start_day <= :as_of AND COALESCE(an.end_day, :as_of) >= :as_of - 29 GROUP BY a.region),
still_open AS (
    SELECT region, count(*) AS open_anomalies FROM open_anomalies GROUP BY region)
SELECT jsonb_build_object(
    'window_start', CAST(:as_of AS date) - 29,
    'regions', COALESCE(jsonb_agg(jsonb_build_object(
        'region', g.region, 'sites', g.sites, 'total_readings', COALESCE(r.readings, 0),
        'average_daily_generation_kwh', {_round("v.average")},
        'anomalies', COALESCE(e.anomalies, 0), 'open_anomalies', COALESCE(o.open_anomalies, 0),
        'performance_score', {_round("v.ratio_pct", 2)}) ORDER BY g.region), '[]'::jsonb))
  FROM regions g
  LEFT JOIN readings r ON r.region = g.region
  LEFT JOIN generation v ON v.region = g.region
  LEFT JOIN episodes e ON e.region = g.region
  LEFT JOIN still_open o ON o.region = g.region
"""

KINDS: dict[str, str] = {
    "quick-stats": QUICK_STATS,
    "fleet-summary": FLEET_SUMMARY,
    "production-metrics": PRODUCTION_METRICS,
    "connection-analysis": CONNECTION_ANALYSIS,
    "readings-analysis": READINGS_ANALYSIS,
}

UPSERT = """
INSERT INTO fleet_snapshots (kind, as_of, payload, computed_at)
SELECT :kind, :as_of, ({payload}), now()
ON CONFLICT (kind, as_of) DO UPDATE SET payload = excluded.payload, computed_at = excluded.computed_at
"""


def build_snapshots(session: Session, params: Params, as_of: dt.date) -> int:
    """Upsert every snapshot kind for `as_of`, one statement per kind; returns the rows written.

    Runs in the caller's transaction (it does not commit), after the cached tables (statuses, monthly
    performance, anomalies, daily rollups) are refreshed as of `as_of`; turns JIT compilation off for the rest
    of that transaction (it costs more than these statements over ~100,000 sites take).
    """
    session.execute(text("SET LOCAL jit = off"))
    month_start = as_of.replace(day=1)
    binds = {"as_of": as_of, "month_start": month_start, "threshold": params.performance_threshold}
    written = 0
    for kind, payload in KINDS.items():
        written += session.execute(text(UPSERT.format(payload=payload)), {**binds, "kind": kind}).rowcount
    return written
