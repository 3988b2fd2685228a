"""A realistic demo fleet with injected faults, written by bulk COPY.

Sites get UK postcodes and regions, capacities of 2–6 kWp and a UK monthly yield shape with
regional weather; a share of them get one of the faults of SPEC §4. Every injected fault is
recorded in `demo_faults` so tests and computations can be checked against it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg

from lux.postcodes import AREA_REGION

# Typical UK yield per kWp installed, kWh per month (January … December).
UK_MONTHLY_YIELD = (22, 38, 68, 98, 118, 120, 117, 101, 77, 50, 26, 16)
REGION_FACTOR = {
    "South West": 1.08, "South East": 1.06, "London": 1.02, "East of England": 1.04,
    "East Midlands": 0.99, "West Midlands": 0.97, "Wales": 0.96, "North West": 0.92,
    "Yorkshire and The Humber": 0.94, "North East": 0.91, "Scotland": 0.85, "Northern Ireland": 0.88,
}
NETWORKS = ("EE", "Vodafone", "O2", "Three")
PEAK_DAILY_YIELD = 6.5  # kWh per kWp: a clear June day in the UK; spikes are injected above it
FAULT_KINDS = ("no_coms", "never_reported", "stuck_register", "register_rollback", "gap", "spike",
               "low_signal", "underperformance")
FAULT_SHARE = 0.22  # share of sites (beyond the first of each kind) that get a fault
DEMO_PREFIX = "DEMO-"


@dataclass
class DemoSite:
    index: int
    site_id: str
    postcode: str
    region: str | None
    latitude: float
    longitude: float
    capacity_kwp: float
    install_day: dt.date
    active: bool
    fault: str | None = None
    faults: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SeedResult:
    sites: int
    readings: int
    faults: dict[str, int]


class DemoExists(Exception):
    """Demo sites are already present; pass replace=True to rebuild them."""


def seed_demo(
    conn: psycopg.Connection, *, sites: int, days: int, timezone: str, end_day: dt.date, seed: int = 7,
    replace: bool = False,
) -> SeedResult:
    """Write `sites` demo sites with `days` days of readings ending on `end_day` (inclusive)."""
    existing = conn.execute("SELECT count(*) FROM sites WHERE site_id LIKE %s", (DEMO_PREFIX + "%",)).fetchone()[0]
    if existing and not replace:
        raise DemoExists(f"{existing} demo sites exist already")
    if existing:
        _delete_demo(conn)
    rng = random.Random(seed)
    start_day = end_day - dt.timedelta(days=days - 1)
    fleet = [_make_site(rng, i, start_day, days) for i in range(sites)]
    pks = _copy_sites(conn, fleet)
    _copy_expected(conn, fleet, pks)
    weather = _regional_weather(rng, start_day, days)
    readings = _copy_readings(conn, fleet, pks, weather, start_day, end_day, ZoneInfo(timezone), rng)
    _copy_faults(conn, fleet, pks)
    counts: dict[str, int] = {}
    for site in fleet:
        for fault in site.faults:
            counts[fault["kind"]] = counts.get(fault["kind"], 0) + 1
    return SeedResult(sites=sites, readings=readings, faults=counts)


def _delete_demo(conn: psycopg.Connection) -> None:
    ids = "SELECT id FROM sites WHERE site_id LIKE 'DEMO-%%'"
    conn.execute(f"DELETE FROM readings WHERE site_pk IN ({ids})")
    conn.execute(f"DELETE FROM sites WHERE id IN ({ids})")


def _make_site(rng: random.Random, index: int, start_day: dt.date, days: int) -> DemoSite:
    area = rng.choice(sorted(a for a, r in AREA_REGION.items() if r))
    region = AREA_REGION[area] if rng.random() > 0.03 else None  # some legacy sites: region unknown
    postcode = f"{area}{rng.randint(1, 20)} {rng.randint(0, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
               f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    late_install = index >= len(FAULT_KINDS) and rng.random() < 0.05
    install_day = start_day + dt.timedelta(days=rng.randint(30, max(31, days // 2)) if late_install else 0)
    site = DemoSite(
        index=index, site_id=f"{DEMO_PREFIX}{index + 1:06d}", postcode=postcode, region=region,
        latitude=round(rng.uniform(50.1, 58.6), 5), longitude=round(rng.uniform(-5.5, 1.7), 5),
        capacity_kwp=round(rng.uniform(2.0, 6.0), 2), install_day=install_day, active=rng.random() > 0.01,
    )
    if index < len(FAULT_KINDS):
        site.fault = FAULT_KINDS[index]
    elif rng.random() < FAULT_SHARE:
        site.fault = rng.choice(FAULT_KINDS)
    return site


def _regional_weather(rng: random.Random, start_day: dt.date, days: int) -> dict[str | None, list[float]]:
    """A day factor per region (cloudy days are shared by neighbours)."""
    regions = [*REGION_FACTOR, None]
    return {r: [min(1.8, max(0.08, rng.gauss(1.0, 0.38))) for _ in range(days)] for r in regions}


def _copy_sites(conn: psycopg.Connection, fleet: list[DemoSite]) -> dict[str, int]:
    with conn.cursor() as cur, cur.copy(
        "COPY sites (site_id, name, postcode, region, latitude, longitude, capacity_kwp, install_date, active) "
        "FROM STDIN"
    ) as copy:
        for s in fleet:
            copy.write_row((s.site_id, f"Demo site {s.index + 1}", s.postcode, s.region, s.latitude,
                            s.longitude, s.capacity_kwp, s.install_day, s.active))
    rows = conn.execute("SELECT site_id, id FROM sites WHERE site_id LIKE 'DEMO-%%'").fetchall()
    return dict(rows)


def _copy_expected(conn: psycopg.Connection, fleet: list[DemoSite], pks: dict[str, int]) -> None:
    with conn.cursor() as cur, cur.copy(
        "COPY expected_generation (site_pk, month, expected_kwh, source) FROM STDIN"
    ) as copy:
        for s in fleet:
            factor = REGION_FACTOR.get(s.region or "", 1.0)
            for month, kwh_per_kwp in enumerate(UK_MONTHLY_YIELD, start=1):
                copy.write_row((pks[s.site_id], month, round(kwh_per_kwp * s.capacity_kwp * factor, 2), "demo"))


def _copy_readings(conn, fleet, pks, weather, start_day, end_day, zone, rng) -> int:
    """Generate every site's daily register readings (with its fault) and COPY them as text."""
    days = (end_day - start_day).days + 1
    day_list = [start_day + dt.timedelta(days=i) for i in range(days)]
    # UTC offset at 21:00 local on each day: reads between 09:00 and 23:00 local then land on that day.
    offsets = [zone.utcoffset(dt.datetime(d.year, d.month, d.day, 21)) for d in day_list]
    daily_yield = [UK_MONTHLY_YIELD[d.month - 1] / calendar.monthrange(d.year, d.month)[1] for d in day_list]
    total = 0
    with conn.cursor() as cur, cur.copy(
        "COPY readings (site_pk, reading_at, register_kwh, signal_level, network, meter_serial) FROM STDIN"
    ) as copy:
        for site in fleet:
            plan = _SitePlan(site, rng, day_list, days)
            lines = plan.lines(pks[site.site_id], weather[site.region], daily_yield, offsets)
            total += len(lines)
            copy.write("".join(lines))
    return total


class _SitePlan:
    """One site's readings over the demo period, with its fault applied and recorded."""

    def __init__(self, site: DemoSite, rng: random.Random, day_list: list[dt.date], days: int) -> None:
        self.site, self.rng, self.day_list, self.days = site, rng, day_list, days
        self.first = (site.install_day - day_list[0]).days
        self.factor = REGION_FACTOR.get(site.region or "", 1.0) * rng.uniform(0.88, 1.04)
        self.base_csq = rng.randint(11, 28)
        self.network = rng.choice(NETWORKS)
        self.serial = f"MTR{rng.randint(10**7, 10**8 - 1)}"
        self.twice_daily = rng.random() < 0.04
        self.skip: set[int] = set()
        self.flat: set[int] = set()
        self.low_signal: set[int] = set()
        self.events: dict[int, str] = {}
        self.perf_from = self.days
        self.perf_ratio = 1.0
        self._apply_fault()

    def _window(self, min_len: int, max_len: int, at_end: bool = False) -> tuple[int, int]:
        span = self.days - self.first
        length = min(self.rng.randint(min_len, max_len), max(1, span - 2))
        latest = max(self.first + 1, self.days - length - 2)
        start = self.days - length if at_end else self.rng.randint(self.first + 1, latest)
        return start, start + length - 1

    def _record(self, kind: str, start: int, end: int | None, **details: object) -> None:
        self.site.faults.append({
            "kind": kind, "start_day": self.day_list[start].isoformat(),
            "end_day": self.day_list[end].isoformat() if end is not None else None, "details": details,
        })

    def _apply_fault(self) -> None:
        kind = self.site.fault
        if kind is None or self.days - self.first < 12:
            return
        if kind == "never_reported":
            self.skip = set(range(self.days))
            self._record(kind, self.first, None)
        elif kind == "no_coms":
            start, _ = self._window(3, 30, at_end=True)
            self.skip = set(range(start, self.days))
            self._record(kind, start, None, silent_days=self.days - start)
        elif kind == "stuck_register":
            at_end = self.rng.random() < 0.5
            start, end = self._window(4, 20, at_end=at_end)
            self.flat = set(range(start, end + 1))
            self._record(kind, start, None if at_end else end, flat_days=end - start + 1)
        elif kind == "register_rollback":
            day, _ = self._window(1, 1)
            self.events[day] = "rollback"
            self._record(kind, day, day)
        elif kind == "gap":
            start, end = self._window(2, 10)
            self.skip = set(range(start, end + 1))
            self._record(kind, start, end, missing_days=end - start + 1)
        elif kind == "spike":
            day, _ = self._window(1, 1)
            self.events[day] = "spike"
            self._record(kind, day, day)
        elif kind == "low_signal":
            start, end = self._window(10, 60)
            self.low_signal = set(range(start, end + 1))
            self._record(kind, start, end)
        elif kind == "underperformance":
            self.perf_from = self.rng.randint(self.first, max(self.first, self.days - 60))
            self.perf_ratio = round(self.rng.uniform(0.45, 0.7), 2)
            self._record(kind, self.perf_from, None, ratio=self.perf_ratio)

    def lines(self, pk: int, weather: list[float], daily_yield: list[float], offsets: list) -> list[str]:
        """COPY text lines of this site's readings (evening reads, some sites also in the morning)."""
        rand, gauss, site = self.rng.random, self.rng.gauss, self.site
        register = round(rand() * 15000, 2) if rand() < 0.7 else 0.0
        tail = f"\t{self.network}\t{self.serial}\n"
        out: list[str] = []
        for i in range(self.first, self.days):
            energy = max(0.0, site.capacity_kwp * daily_yield[i] * weather[i] * self.factor * gauss(1.0, 0.08))
            energy = min(energy, site.capacity_kwp * PEAK_DAILY_YIELD)
            energy = 0.0 if i in self.flat else energy * (self.perf_ratio if i >= self.perf_from else 1.0)
            register += energy
            event = self.events.get(i)
            if event == "spike":
                register += site.capacity_kwp * (12 + 13 * rand())
            elif event == "rollback":
                register = round(5 * rand(), 2)  # meter replaced: the register restarts
            if i in self.skip:
                continue
            csq = 2 + int(7 * rand()) if i in self.low_signal else min(31, max(0, self.base_csq + int(7 * rand()) - 3))
            signal = "\\N" if rand() < 0.01 else str(csq)
            local_day = dt.datetime.combine(self.day_list[i], dt.time()) - offsets[i]
            if self.twice_daily and event is None:
                at = local_day + dt.timedelta(minutes=540 + int(60 * rand()))
                out.append(f"{pk}\t{at.isoformat(' ')}+00\t{register - energy * 0.8:.2f}\t{signal}{tail}")
            at = local_day + dt.timedelta(minutes=1200 + int(180 * rand()))
            out.append(f"{pk}\t{at.isoformat(' ')}+00\t{register:.2f}\t{signal}{tail}")
        return out


def _copy_faults(conn: psycopg.Connection, fleet: list[DemoSite], pks: dict[str, int]) -> None:
    with conn.cursor() as cur, cur.copy(
        "COPY demo_faults (site_pk, kind, start_day, end_day, details) FROM STDIN"
    ) as copy:
        for site in fleet:
            for f in site.faults:
                copy.write_row((pks[site.site_id], f["kind"], f["start_day"], f["end_day"], json.dumps(f["details"])))
