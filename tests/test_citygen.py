"""The synthetic city: determinism, counts, plausibility, unique numbers, sample numbers."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from dispatch.citygen import (
    COUNTIES,
    RegistryNotEmptyError,
    generate_city,
    sample_numbers,
    summarize,
)
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine, upgrade
from dispatch.models import (
    Base,
    Elder,
    ElderPhone,
    FamilyContact,
    Vendor,
    VendorPhone,
    vendor_coverage,
    vendor_services,
)
from dispatch.phones import normalize
from dispatch.registry import CallerStatus, identify

ELDERS = 1500
VENDORS = 12


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [tuple(r) for r in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in Base.metadata.sorted_tables
            }  # fmt: skip
    finally:
        engine.dispose()


@pytest.fixture
def city_url(migrated_db_url: str) -> str:
    summary = generate_city(migrated_db_url, elders=ELDERS, vendors=VENDORS, seed=7)
    assert (summary.elders, summary.vendors) == (ELDERS, VENDORS)
    return migrated_db_url


def _fresh(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    return url


def test_same_seed_same_city_other_seed_other_city(tmp_path: Path) -> None:
    first, second, other = (_fresh(tmp_path, f"{n}.sqlite3") for n in ("a", "b", "c"))
    generate_city(first, elders=400, vendors=5, seed=42)
    generate_city(second, elders=400, vendors=5, seed=42)
    generate_city(other, elders=400, vendors=5, seed=43)
    assert _dump(first) == _dump(second)
    assert _dump(first)["elders"] != _dump(other)["elders"]


def test_counts_and_structure(city_url: str) -> None:
    data = _dump(city_url)
    summary = summarize(city_url)
    assert summary.elders == len(data["elders"]) == ELDERS
    assert summary.elder_phones == len(data["elder_phones"])
    assert summary.family_contacts == len(data["family_contacts"])
    assert summary.vendors == len(data["vendors"]) == VENDORS

    phones_per = Counter(row.elder_id for row in _rows(city_url, ElderPhone))
    family_per = Counter(row.elder_id for row in _rows(city_url, FamilyContact))
    assert set(phones_per) == set(family_per) == set(range(1, ELDERS + 1))
    assert max(phones_per.values()) <= 3 and max(family_per.values()) <= 4
    handsets = sum(1 for row in _rows(city_url, ElderPhone) if row.kind == "handset")
    assert 0.10 * ELDERS < handsets < 0.20 * ELDERS


def _rows(url: str, model: Any) -> list[Any]:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            table = getattr(model, "__table__", model)
            return list(conn.execute(select(table)))
    finally:
        engine.dispose()


def test_numbers_are_valid_and_unique(city_url: str) -> None:
    elder_numbers = [row.number_e164 for row in _rows(city_url, ElderPhone)]
    assert len(set(elder_numbers)) == len(elder_numbers)
    family = _rows(city_url, FamilyContact)
    vendor_numbers = [row.number_e164 for row in _rows(city_url, VendorPhone)]
    for number in [*elder_numbers, *(r.number_e164 for r in family), *vendor_numbers]:
        assert normalize(number, "931") == number
        assert number.startswith(("+861", "+86931"))
    assert not set(vendor_numbers) & (set(elder_numbers) | {r.number_e164 for r in family})
    # the only overlap: spouses who are both registered list each other (老伴)
    overlap = [r for r in family if r.number_e164 in set(elder_numbers)]
    assert overlap and all(r.relation == "老伴" for r in overlap)
    # shared family numbers: the children of registered couples
    holders: dict[str, set[int]] = defaultdict(set)
    for row in family:
        holders[row.number_e164].add(row.elder_id)
    shared = [ids for ids in holders.values() if len(ids) > 1]
    assert shared and all(len(ids) == 2 and max(ids) - min(ids) == 1 for ids in shared)


def test_elders_are_plausible(city_url: str) -> None:
    elders = _rows(city_url, Elder)
    counties = {c.code: c for c in COUNTIES}
    languages = Counter(e.preferred_language for e in elders)
    subsidies = Counter(e.subsidy_category for e in elders)
    for e in elders:
        county = counties[e.county_code]
        assert (e.province_code, e.city_code) == ("620000", "620100")
        assert e.street_code.startswith(e.county_code) and len(e.street_code) == 12
        assert e.community_code.startswith(e.street_code[:9]) and len(e.community_code) == 12
        assert abs(e.latitude - county.lat) < 1.0 and abs(e.longitude - county.lon) < 1.0
        assert e.address.startswith("兰州市" + county.name)
        assert e.gender in ("M", "F") and 2 <= len(e.name) <= 4
        assert 60 <= 2025 - e.birth_date.year <= 101
        assert e.id_card_masked.startswith(e.county_code) and "********" in e.id_card_masked
        assert e.created_at.tzinfo is not None and e.created_at < datetime(2025, 1, 1, tzinfo=UTC)
    assert set(counties) == {e.county_code for e in elders}
    assert languages["zh"] > 0.93 * ELDERS and set(languages) <= {"zh", "yue", "en"}
    assert languages["yue"] + languages["en"] > 0
    assert 0.6 < subsidies["none"] / ELDERS < 0.8 and len(subsidies) >= 5
    assert any(e.health_notes and "高血压" in e.health_notes for e in elders)


def test_vendors_are_plausible(city_url: str) -> None:
    services = defaultdict(set)
    for row in _rows(city_url, vendor_services):
        services[row.vendor_id].add(row.service)
    coverage = defaultdict(set)
    for row in _rows(city_url, vendor_coverage):
        coverage[row.vendor_id].add(row.county_code)
    vendors = _rows(city_url, Vendor)
    assert len({v.name for v in vendors}) == VENDORS
    for v in vendors:
        assert 1 <= len(services[v.id]) <= 3 and services[v.id] <= {"meal", "housekeeping",
                                                                     "health"}
        assert 1 <= len(coverage[v.id]) <= 4
        assert v.status in ("active", "suspended", "removed")


def test_registry_must_be_empty_and_ids_continue_after(city_url: str) -> None:
    with pytest.raises(RegistryNotEmptyError):
        generate_city(city_url, elders=10, vendors=0)
    engine = make_sync_engine(city_url)
    try:
        with engine.begin() as conn:  # PostgreSQL sequences were moved past the ids
            new_id = conn.execute(insert(Elder).values(
                name="新登记", created_at=datetime.now(UTC), preferred_language="zh",
                subsidy_category="none").returning(Elder.id)).scalar_one()  # fmt: skip
    finally:
        engine.dispose()
    assert new_id == ELDERS + 1


async def test_sample_numbers_identify_as_their_kind(city_url: str) -> None:
    samples = sample_numbers(city_url, 25, seed=3)
    assert samples == sample_numbers(city_url, 25, seed=3)
    assert {k: len(v) for k, v in samples.items()} == {
        "elders": 25, "handsets": 25, "family": 25, "unknown": 25}
    expected = {"elders": (CallerStatus.ELDER, False), "handsets": (CallerStatus.ELDER, True),
                "family": (CallerStatus.FAMILY, False), "unknown": (CallerStatus.UNKNOWN, False)}
    engine = make_async_engine(city_url, pool_size=2)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for kind, numbers in samples.items():
                assert len(set(numbers)) == len(numbers)
                for number in numbers:
                    who = await identify(session, number, "931")
                    assert (who.status, who.handset) == expected[kind], (kind, number)
    finally:
        await engine.dispose()


def test_empty_registry_samples_are_empty_but_unknown(migrated_db_url: str) -> None:
    samples = sample_numbers(migrated_db_url, 3)
    assert samples["elders"] == samples["family"] == samples["handsets"] == []
    assert len(samples["unknown"]) == 3
