"""UK regions and an offline table of postcode areas with their (majority) region.

Areas that straddle two regions map to the region holding most of their postcodes.
GY, JE and IM (Crown Dependencies) belong to no UK region.
"""

from __future__ import annotations

import re

REGIONS = (
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
    "Wales",
    "Scotland",
    "Northern Ireland",
)

_AREAS_BY_REGION = {
    "North East": "DH DL NE SR TS",
    "North West": "BB BL CA CH CW FY L LA M OL PR SK WA WN",
    "Yorkshire and The Humber": "BD DN HD HG HU HX LS S WF YO",
    "East Midlands": "DE LE LN NG NN",
    "West Midlands": "B CV DY HR ST SY TF WR WS WV",
    "East of England": "AL CB CM CO IP LU NR PE SG SS WD",
    "London": "BR CR E EC EN HA IG N NW RM SE SM SW TW UB W WC",
    "South East": "BN CT DA GU HP KT ME MK OX PO RG RH SL SO TN",
    "South West": "BA BH BS DT EX GL PL SN SP TA TQ TR",
    "Wales": "CF LD LL NP SA",
    "Scotland": "AB DD DG EH FK G HS IV KA KW KY ML PA PH TD ZE",
    "Northern Ireland": "BT",
}

AREA_REGION: dict[str, str | None] = {
    area: region for region, areas in _AREAS_BY_REGION.items() for area in areas.split()
} | {"GY": None, "JE": None, "IM": None}

POSTCODE_RE = re.compile(r"^([A-Z]{1,2})([0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def normalise_postcode(raw: str) -> str | None:
    """Upper-case a UK postcode with one space before the inward code; None if it is not one."""
    match = POSTCODE_RE.match(re.sub(r"\s+", "", raw).upper())
    if not match or match.group(1) not in AREA_REGION:
        return None
    return f"{match.group(1)}{match.group(2)} {match.group(3)}"


def region_for_postcode(postcode: str) -> str | None:
    """The region of a (normalised) postcode's area, or None when unknown."""
    area = re.match(r"[A-Z]{1,2}", postcode)
    return AREA_REGION.get(area.group(0)) if area else None
