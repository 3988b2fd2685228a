"""Expected monthly generation of a site (SPEC §2): parse 12 values or a PVGIS PVcalc response, store, read.

Two payload forms are accepted: `{"monthly_kwh": [12 numbers]}` (or the bare list), January first,
and a PVGIS PVcalc JSON response, whose `outputs.monthly.fixed[]` entries carry `month` (1..12)
and `E_m` (kWh in that month). Some PVGIS versions put the entries straight in `outputs.monthly`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from lux.ingest.journal import mark_dirty
from models import ExpectedGeneration

MONTHS = 12
SOURCES = ("manual", "pvgis")
# A month's kWh at most: far above any site (100,000 kWp, the largest capacity, at nameplate around the clock makes
# 74.4M kWh in 31 days), and low enough that the computation's products and fleet sums of it stay finite in float8
# (PostgreSQL raises on an overflow, so one site's 1e308 would fail every run holding that site).
MAX_MONTHLY_KWH = 1e9
MAX_SHOWN = 5  # problems named in the message of an ExpectedGenerationError
FORMS = 'Send {"monthly_kwh": [12 numbers]}, a JSON list of 12 numbers, or a PVGIS PVcalc JSON response'


class ExpectedGenerationError(ValueError):
    """The payload does not give 12 usable monthly values.

    `problems` lists every problem found; the message joins the first few of them.
    """

    def __init__(self, *problems: str) -> None:
        shown = "; ".join(problems[:MAX_SHOWN])
        more = len(problems) - MAX_SHOWN
        super().__init__(shown + (f" (and {more} more)" if more > 0 else ""))
        self.problems = list(problems)


@dataclass(frozen=True)
class Expected:
    """A site's stored expected generation.

    `monthly_kwh[0]` is January; a month without a stored row is None. `source` and `updated_at`
    are those of the most recently changed month.
    """

    source: str
    monthly_kwh: list[float | None]
    updated_at: dt.datetime
    journal_id: int | None = None  # set by store_expected when the values changed


def source_of(payload: object) -> str:
    """The source a payload is stored under: `pvgis` for a PVGIS response, `manual` for 12 values."""
    return "pvgis" if isinstance(payload, dict) and "outputs" in payload else "manual"


def parse_expected(payload: object) -> list[float]:
    """The 12 monthly kWh values (January first) of either payload form.

    Raises ExpectedGenerationError naming what is wrong: the shape, a missing, repeated or
    out-of-range month, or a value that is not a finite number from 0 to MAX_MONTHLY_KWH.
    """
    if isinstance(payload, list):
        return _parse_list(payload, "list")
    if not isinstance(payload, dict):
        raise ExpectedGenerationError(f"{FORMS}, not {_kind(payload)}.")
    if "monthly_kwh" in payload and "outputs" in payload:
        raise ExpectedGenerationError("Give either 'monthly_kwh' or a PVGIS 'outputs' object, not both.")
    if "monthly_kwh" in payload:
        return _parse_list(payload["monthly_kwh"], "monthly_kwh")
    if "outputs" in payload:
        where, entries = _pvgis_entries(payload["outputs"])
        return _parse_pvgis(where, entries)
    raise ExpectedGenerationError(f"{FORMS}; this object has neither 'monthly_kwh' nor 'outputs'.")


def load_pvgis_file(path: str | Path) -> list[float]:
    """The 12 monthly values of a PVGIS PVcalc JSON file; ExpectedGenerationError says what is wrong."""
    try:
        payload = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise ExpectedGenerationError(f"cannot read the file: {error.strerror or error}") from None
    except ValueError as error:
        raise ExpectedGenerationError(f"not valid JSON: {error}") from None
    if source_of(payload) != "pvgis":
        raise ExpectedGenerationError("not a PVGIS PVcalc response: it has no 'outputs' object.")
    return parse_expected(payload)


def store_expected(session: Session, site_pk: int, values: Sequence[float], source: str) -> Expected:
    """Upsert the 12 months of a site in one statement and commit.

    Changed values put the site in the ingest journal, so its performance is recomputed from its
    first day (by the event the API sends for `journal_id`, else by the sweep).

    Storing the same values from the same source again changes nothing, not even `updated_at`,
    which therefore says when the values last changed.
    """
    if len(values) != MONTHS:
        raise ValueError(f"expected {MONTHS} monthly values, got {len(values)}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = [{"site_pk": site_pk, "month": month, "expected_kwh": float(kwh), "source": source}
            for month, kwh in enumerate(values, start=1)]
    statement = insert(ExpectedGeneration).values(rows)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[ExpectedGeneration.site_pk, ExpectedGeneration.month],
        set_={"expected_kwh": new.expected_kwh, "source": new.source, "updated_at": func.now()},
        where=or_(ExpectedGeneration.expected_kwh.is_distinct_from(new.expected_kwh),
                  ExpectedGeneration.source.is_distinct_from(new.source)),
    )
    changed = bool(session.execute(statement.returning(ExpectedGeneration.month)).all())
    journal_id = mark_dirty(session, [site_pk], reason=f"expected-generation:{site_pk}") if changed else None
    session.commit()
    stored = get_expected(session, site_pk)
    assert stored is not None  # the 12 rows were just committed
    return replace(stored, journal_id=journal_id)


def get_expected(session: Session, site_pk: int) -> Expected | None:
    """The stored expected generation of a site, or None when it has none."""
    rows = session.execute(
        select(ExpectedGeneration.month, ExpectedGeneration.expected_kwh, ExpectedGeneration.source,
               ExpectedGeneration.updated_at)
        .where(ExpectedGeneration.site_pk == site_pk)
        .order_by(ExpectedGeneration.month)
    ).all()
    if not rows:
        return None
    monthly: list[float | None] = [None] * MONTHS
    for row in rows:
        monthly[row.month - 1] = row.expected_kwh
    latest = max(rows, key=lambda row: row.updated_at)
    return Expected(source=latest.source, monthly_kwh=monthly, updated_at=latest.updated_at)


def _parse_list(values: object, where: str) -> list[float]:
    if not isinstance(values, list):
        raise ExpectedGenerationError(f"{where} must be a list of 12 numbers (kWh, January first), "
                                      f"not {_kind(values)}.")
    if len(values) != MONTHS:
        raise ExpectedGenerationError(f"{where} must hold 12 values (January … December), got {len(values)}.")
    return _numbers((f"{where}[{index}] ({calendar.month_name[index + 1]})", value)
                    for index, value in enumerate(values))


def _pvgis_entries(outputs: object) -> tuple[str, list]:
    """Where the monthly entries of a PVGIS response are (for messages), and the entries."""
    monthly = outputs.get("monthly") if isinstance(outputs, dict) else None
    if isinstance(monthly, list):
        return "outputs.monthly", monthly
    if isinstance(monthly, dict) and isinstance(monthly.get("fixed"), list):
        return "outputs.monthly.fixed", monthly["fixed"]
    if isinstance(monthly, dict) and "fixed" in monthly:
        raise ExpectedGenerationError(f"outputs.monthly.fixed must be a list, not {_kind(monthly['fixed'])}.")
    if isinstance(monthly, dict) and monthly:
        raise ExpectedGenerationError(
            f"The PVGIS response has no outputs.monthly.fixed (it has {', '.join(sorted(map(str, monthly)))}); "
            "only fixed-mounting PVcalc results can be imported.")
    raise ExpectedGenerationError("The PVGIS response has no outputs.monthly.fixed list of monthly results.")


def _parse_pvgis(where: str, entries: list) -> list[float]:
    """E_m of each month 1..12, in month order; every problem of every entry is reported at once."""
    if not entries:
        raise ExpectedGenerationError(f"{where} is empty; it must hold one entry per month 1..12.")
    problems: list[str] = []
    values: list[float] = []
    found: dict[int, tuple[str, object]] = {}
    for index, entry in enumerate(entries):
        label = f"{where}[{index}]"
        problem = _entry_problem(entry)
        if problem is None and entry["month"] in found:
            problem = f"repeats month {entry['month']} (first at {found[entry['month']][0]})"
        if problem is not None:
            problems.append(f"{label} {problem}")
        else:
            found[entry["month"]] = (label, entry.get("E_m"))
    missing = [str(month) for month in range(1, MONTHS + 1) if month not in found]
    if missing:
        problems.append(f"{where} lacks month(s) {', '.join(missing)}")
    try:
        values = _numbers((f"{found[month][0]}.E_m ({calendar.month_name[month]})", found[month][1])
                          for month in sorted(found))
    except ExpectedGenerationError as error:
        problems.extend(error.problems)
    if problems:
        raise ExpectedGenerationError(*problems)
    return values


def _entry_problem(entry: object) -> str | None:
    """What is wrong with a PVGIS monthly entry apart from its E_m, or None."""
    if not isinstance(entry, dict):
        return f"is not an object but {_kind(entry)}"
    month = entry.get("month")
    if month is None:
        return "has no month"
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= MONTHS:
        return f"has month {_show(month)}, not an integer 1..12"
    return None


def _numbers(labelled: Iterable[tuple[str, object]]) -> list[float]:
    """The values as floats, or ExpectedGenerationError listing each bad one by its label."""
    values: list[float] = []
    problems: list[str] = []
    for label, value in labelled:
        problem = _kwh_problem(value)
        if problem is None:
            values.append(float(value))  # type: ignore[arg-type]  # checked by _kwh_problem
        else:
            problems.append(f"{label} {problem}")
    if problems:
        raise ExpectedGenerationError(*problems)
    return values


def _kwh_problem(value: object) -> str | None:
    """What makes `value` unusable as a month's kWh, or None."""
    if value is None:
        return "is missing"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is not a number: {_show(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "is too large"
    if math.isnan(number):
        return "is NaN"
    if math.isinf(number):
        return "is infinite"
    if number < 0:
        return f"is negative ({number:g})"
    if number > MAX_MONTHLY_KWH:
        return f"is more than {MAX_MONTHLY_KWH:.0f} kWh in a month ({number:g})"
    return None


def _kind(value: object) -> str:
    """The JSON type of a parsed value, for messages."""
    kinds = ((type(None), "null"), (bool, "a boolean"), (int | float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _show(value: object, limit: int = 40) -> str:
    """A short repr of a bad value for a message."""
    shown = json.dumps(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
