"""`lux pvgis import`: PVGIS PVcalc JSON files into expected generation, one site per file."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lux import sites
from lux.cli import main
from models import ExpectedGeneration
from tests.pvgis import pvcalc_response

E_M = [52.3, 78.1, 131.7, 170.2, 205.9, 203.4, 209.8, 182.6, 139.5, 95.0, 57.4, 44.6]  # 1570.5 kWh/year


def pvcalc(e_m=E_M) -> dict:
    return pvcalc_response(e_m)


@pytest.fixture
def run(settings):
    def invoke(*args: str):
        return CliRunner().invoke(main, ["pvgis", "import", *args], obj=settings, catch_exceptions=False)

    return invoke


@pytest.fixture
def fleet(database):
    with database.session_scope() as session:
        for site_id in ("SITE-001", "SITE-002", "SITE-003"):
            sites.create_site(session, {"site_id": site_id, "name": site_id, "capacity_kwp": 1.5})


def write(path, payload) -> str:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=4))
    return str(path)


def stored(database, site_id: str) -> list[tuple[float, str]]:
    with database.session_scope() as session:
        site = sites.get_site(session, site_id)
        rows = session.execute(select(ExpectedGeneration.expected_kwh, ExpectedGeneration.source)
                               .where(ExpectedGeneration.site_pk == site.id).order_by(ExpectedGeneration.month))
        return [tuple(row) for row in rows]


def test_imports_each_file_into_the_site_named_by_its_stem(run, fleet, database, tmp_path):
    first = write(tmp_path / "SITE-001.json", pvcalc())
    second = write(tmp_path / "SITE-002.json", pvcalc([kwh * 2 for kwh in E_M]))
    result = run(first, second)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["SITE-001: imported 12 months (1570.5 kWh/year)",
                                          "SITE-002: imported 12 months (3141.0 kWh/year)"]
    assert stored(database, "SITE-001") == [(kwh, "pvgis") for kwh in E_M]
    assert stored(database, "SITE-002") == [(kwh * 2, "pvgis") for kwh in E_M]
    assert run(first).exit_code == 0 and stored(database, "SITE-001") == [(kwh, "pvgis") for kwh in E_M]


def test_site_option_names_the_site_of_one_file(run, fleet, database, tmp_path):
    result = run(write(tmp_path / "pvgis-response.json", pvcalc()), "--site", "SITE-003")
    assert result.exit_code == 0 and result.output.startswith("SITE-003: imported 12 months")
    assert len(stored(database, "SITE-003")) == 12


def test_site_option_with_several_files_is_a_usage_error(settings, fleet, tmp_path):
    files = [write(tmp_path / f"SITE-00{i}.json", pvcalc()) for i in (1, 2)]
    result = CliRunner().invoke(main, ["pvgis", "import", *files, "--site", "SITE-001"], obj=settings)
    assert result.exit_code == 2 and "--site names the site of one FILE" in result.output


def test_bad_files_are_reported_good_ones_imported_and_exit_is_1(run, fleet, database, tmp_path):
    duplicated = pvcalc()
    duplicated["outputs"]["monthly"]["fixed"][4]["month"] = 4
    negative = pvcalc()
    negative["outputs"]["monthly"]["fixed"][11]["E_m"] = -44.6
    tracking = pvcalc()
    tracking["outputs"]["monthly"] = {"two_axis": tracking["outputs"]["monthly"]["fixed"]}
    files = [
        write(tmp_path / "SITE-001.json", duplicated),
        write(tmp_path / "SITE-002.json", pvcalc()),
        write(tmp_path / "SITE-003.json", negative),
        write(tmp_path / "SITE-004.json", pvcalc()),
        write(tmp_path / "SITE-005.json", '{"outputs": {"monthly": '),
        write(tmp_path / "SITE-006.json", {"monthly_kwh": E_M}),
        write(tmp_path / "SITE-007.json", tracking),
        str(tmp_path / "SITE-008.json"),
    ]
    result = run(*files)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["SITE-002: imported 12 months (1570.5 kWh/year)"]
    errors = result.stderr.splitlines()
    reasons = [
        ("SITE-001", "outputs.monthly.fixed[4] repeats month 4 (first at outputs.monthly.fixed[3]); "
                     "outputs.monthly.fixed lacks month(s) 5"),
        ("SITE-003", "outputs.monthly.fixed[11].E_m (December) is negative (-44.6)"),
        ("SITE-004", "no site with site_id 'SITE-004'"),
        ("SITE-005", "not valid JSON"),
        ("SITE-006", "not a PVGIS PVcalc response: it has no 'outputs' object"),
        ("SITE-007", "no outputs.monthly.fixed (it has two_axis)"),
        ("SITE-008", "cannot read the file: No such file or directory"),
    ]
    assert errors[-1] == "7 of 8 file(s) failed"
    for line, (site_id, reason) in zip(errors[:-1], reasons, strict=True):
        assert line.startswith(f"{site_id}: failed ({tmp_path / site_id}.json): ") and reason in line, line
    assert len(stored(database, "SITE-002")) == 12
    assert stored(database, "SITE-001") == [] and stored(database, "SITE-003") == []
