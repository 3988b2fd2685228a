"""A PVGIS 5.2 PVcalc JSON response (outputformat=json), shaped as PVGIS sends it, for the expected-generation tests."""

from __future__ import annotations

from collections.abc import Sequence


def pvcalc_response(e_m: Sequence[float], months: Sequence[int] = range(1, 13)) -> dict:
    """The response for a roof whose month `m` (1–12) yields `e_m[m - 1]` kWh; `months` orders (or omits) them."""
    return {
        "inputs": {
            "location": {"latitude": 53.48, "longitude": -2.24, "elevation": 52.0},
            "meteo_data": {"radiation_db": "PVGIS-SARAH2", "meteo_db": "ERA5", "year_min": 2005, "year_max": 2020,
                           "use_horizon": True, "horizon_db": "DEM-calculated"},
            "mounting_system": {"fixed": {"slope": {"value": 30, "optimal": False},
                                          "azimuth": {"value": 5, "optimal": False}, "type": "building-integrated"}},
            "pv_module": {"technology": "c-Si", "peak_power": 1.5, "system_loss": 14.0},
            "economic_data": {"system_cost": None, "interest": None, "lifetime": None},
        },
        "outputs": {
            "monthly": {"fixed": [
                {"month": month, "E_d": round(e_m[month - 1] / 30, 2), "E_m": e_m[month - 1], "H(i)_d": 1.2,
                 "H(i)_m": 37.5, "SD_m": 8.4}
                for month in months
            ]},
            "totals": {"fixed": {"E_d": 4.3, "E_m": 130.9, "E_y": round(sum(e_m), 2), "H(i)_d": 3.0, "H(i)_m": 92.1,
                                 "H(i)_y": 1105.2, "SD_m": 11.2, "SD_y": 61.3, "l_aoi": -3.4, "l_spec": "0.7",
                                 "l_tg": -4.9, "l_total": -19.6}},
        },
        "meta": {"inputs": {"location": {"description": "Selected location"}}, "outputs": {}},
    }
