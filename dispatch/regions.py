"""Regions of the platform: who may see what, by administrative division.

A county account sees its county, a city account the counties of its city, a province account
the whole province. Codes are the six-digit GB/T 2260 division codes the registry stores on
each elder. The check is made in queries (``elder_condition``), never in templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement

from dispatch.models import Elder


class RegionLevel(StrEnum):
    COUNTY = "county"
    CITY = "city"
    PROVINCE = "province"

    @property
    def rank(self) -> int:
        """0 for a county, 1 for a city, 2 for a province: a level holds those below it."""
        return list(RegionLevel).index(self)


def region_column(level: RegionLevel) -> Any:
    """The ``Elder`` column that holds the elder's division code at ``level``."""
    return {RegionLevel.COUNTY: Elder.county_code, RegionLevel.CITY: Elder.city_code,
            RegionLevel.PROVINCE: Elder.province_code}[level]


@dataclass(frozen=True, slots=True)
class Place:
    """Where an elder (and so their calls, alarms and orders) belongs; None if unknown."""

    province_code: str | None = None
    city_code: str | None = None
    county_code: str | None = None

    @classmethod
    def of(cls, elder: Elder | None) -> Place:
        """The elder's place (all None for no elder)."""
        if elder is None:
            return cls()
        return cls(elder.province_code, elder.city_code, elder.county_code)


@dataclass(frozen=True, slots=True)
class RegionScope:
    """An account's region: a division level and its six-digit code."""

    level: RegionLevel
    code: str

    def __post_init__(self) -> None:
        if not (len(self.code) == 6 and self.code.isdigit()):
            raise ValueError(f"region code must be six digits, not {self.code!r}")

    def covers(self, place: Place) -> bool:
        """True if ``place`` lies inside this region (an unknown place lies in none)."""
        return getattr(place, f"{self.level.value}_code") == self.code

    def elder_condition(self) -> ColumnElement[bool]:
        """The SQL condition on ``Elder`` that keeps only this region's elders."""
        return region_column(self.level) == self.code

    @classmethod
    def parse(cls, text: str) -> RegionScope:
        """``county:110105`` -> RegionScope(COUNTY, "110105"); ValueError if malformed."""
        level, sep, code = text.strip().partition(":")
        if not sep:
            raise ValueError(f"region must be LEVEL:CODE (county:110105), not {text!r}")
        try:
            return cls(RegionLevel(level.lower()), code)
        except ValueError as exc:
            raise ValueError(f"bad region {text!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.level.value}:{self.code}"
