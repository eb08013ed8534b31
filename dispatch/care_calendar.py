"""The days caring calls are planned around: Chinese festivals and statutory holidays.

Lunar festivals are dated by ``lunardate`` (the lunisolar calendar); the statutory holidays
and the working days moved around them by ``holidays`` (``holidays.China``). Nothing here is
a table typed by hand.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from functools import lru_cache

import holidays
from lunardate import LunarDate


class Festival(StrEnum):
    """Festivals a greeting campaign can be held on."""

    SPRING_FESTIVAL = "spring_festival"  # 春节, lunar 1-1
    LANTERN = "lantern"  # 元宵节, lunar 1-15
    DRAGON_BOAT = "dragon_boat"  # 端午节, lunar 5-5
    MID_AUTUMN = "mid_autumn"  # 中秋节, lunar 8-15
    DOUBLE_NINTH = "double_ninth"  # 重阳节, lunar 9-9: the elders' day (老年节)
    NEW_YEAR = "new_year"  # 元旦, 1 January
    NATIONAL_DAY = "national_day"  # 国庆节, 1 October


LUNAR: dict[Festival, tuple[int, int]] = {
    Festival.SPRING_FESTIVAL: (1, 1), Festival.LANTERN: (1, 15),
    Festival.DRAGON_BOAT: (5, 5), Festival.MID_AUTUMN: (8, 15),
    Festival.DOUBLE_NINTH: (9, 9),
}
SOLAR: dict[Festival, tuple[int, int]] = {
    Festival.NEW_YEAR: (1, 1), Festival.NATIONAL_DAY: (10, 1),
}
NAMES_ZH: dict[Festival, str] = {
    Festival.SPRING_FESTIVAL: "春节", Festival.LANTERN: "元宵节", Festival.DRAGON_BOAT: "端午节",
    Festival.MID_AUTUMN: "中秋节", Festival.DOUBLE_NINTH: "重阳节", Festival.NEW_YEAR: "元旦",
    Festival.NATIONAL_DAY: "国庆节",
}


class CalendarError(ValueError):
    """A year the calendars cannot date."""


def festival_date(festival: Festival, year: int) -> date:
    """The Gregorian date of ``festival`` in ``year``."""
    if festival in SOLAR:
        month, day = SOLAR[festival]
        return date(year, month, day)
    month, day = LUNAR[festival]
    try:
        return LunarDate(year, month, day).to_solar_date()
    except ValueError as exc:
        raise CalendarError(f"{festival.value} cannot be dated in {year}: {exc}") from exc


def festivals_on(day: date) -> list[Festival]:
    """The festivals that fall on ``day`` (usually none)."""
    return [festival for festival in Festival if _dated(festival, day.year) == day]


@lru_cache(maxsize=256)
def _dated(festival: Festival, year: int) -> date | None:
    try:
        return festival_date(festival, year)
    except CalendarError:
        return None


@lru_cache(maxsize=16)
def _statutory(year: int) -> holidays.HolidayBase:
    return holidays.China(years=year, language="zh_CN")


def statutory_holiday(day: date) -> str | None:
    """The name of the statutory holiday (or day off in lieu) on ``day``, else None."""
    name = _statutory(day.year).get(day)
    return str(name) if name else None
