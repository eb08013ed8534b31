"""Import of a registry CSV (format: docs/registry-csv.md).

Good rows are imported, bad rows reported with their line number and reason. An elder is
matched by its ``elder_ref`` if the file has one, else by its name and any of its phone
numbers, so re-importing updates instead of duplicating; a row never changes another
elder's data. Several elders may share a phone (a household); each row that shares a
number with another elder is noted in the report.
Nothing in a malformed file (bad UTF-8, NUL bytes, endless lines, wrong field counts,
unbalanced quotes) stops the import or raises, and a malformed record costs only itself:
reading starts again at the line after its first.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from dispatch.csv_records import (
    BadRow,
    CsvReport,
    RowError,
    date_cell,
    import_csv,
)
from dispatch.csv_records import (
    text_cell as _text,
)
from dispatch.models import Elder, ElderPhone, FamilyContact, PhoneKind, SubsidyCategory
from dispatch.phones import is_mobile, mask, normalize

REQUIRED = ("name", "phones")
OPTIONAL = (
    "elder_ref", "gender", "birth_date", "id_card", "handset", "family", "address",
    "province_code", "province_name", "city_code", "city_name", "county_code", "county_name",
    "street_code", "street_name", "community_code", "community_name",
    "latitude", "longitude", "language", "subsidy", "health_notes", "no_menu",
)  # fmt: skip
COMMIT_EVERY = 200
# SQLite has one writer and its waiting writers poll (at most every 100 ms): after each batch
# the import steps aside this long, so a live engine's writes get in between its batches.
SQLITE_YIELD_S = 0.15

SUBSIDY_ALIASES = {
    "": "none", "无": "none", "none": "none",
    "三无": "sanwu", "三无老人": "sanwu",
    "低保": "dibao",
    "低收入": "low_income",
    "重点优抚": "priority_care", "优抚": "priority_care", "重点优抚对象": "priority_care",
    "失能半失能困难": "disabled_hardship", "失能": "disabled_hardship",
    "半失能": "disabled_hardship",
    "劳模": "model_worker", "劳动模范": "model_worker",
}  # fmt: skip
GENDERS = {"": None, "m": "M", "男": "M", "f": "F", "女": "F"}
FLAGS = {"": False, "0": False, "no": False, "false": False, "否": False,
         "1": True, "yes": True, "true": True, "是": True}
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2,4})?")
_RAW_ID = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
_MASKED_ID = re.compile(r"[0-9]{6}\*{8}[0-9]{3}[0-9Xx]")
_CODE_LENGTHS = {"province": 6, "city": 6, "county": 6, "street": 12, "community": 12}
_CODE_PARENT = {"city": ("province", 2), "county": ("city", 4), "street": ("county", 6),
                "community": ("street", 9)}  # fmt: skip
_NAME_LIMITS = {"province": 32, "city": 32, "county": 32, "street": 64, "community": 64}


@dataclass
class ImportReport(CsvReport):
    created: int = 0
    updated: int = 0
    shared: list[BadRow] = field(default_factory=list)  # imported, sharing a number: a note

    def __str__(self) -> str:
        lines = [f"{self.path}: {self.created} elders created, {self.updated} updated, "
                 f"{len(self.errors)} rows rejected", *self.problems()]
        lines += [f"  line {n.line} (imported): {n.reason}" for n in self.shared[:50]]
        if len(self.shared) > 50:
            lines.append(f"  ... and {len(self.shared) - 50} more rows sharing a number")
        return "\n".join(lines)


@dataclass
class ElderRecord:
    """One validated row."""

    fields: dict[str, Any]
    phones: list[tuple[str, PhoneKind]]
    family: list[tuple[str, str, str]]


# -- cell parsers ------------------------------------------------------------------------

def _phone_list(value: str, area: str, column: str) -> list[str]:
    numbers: list[str] = []
    for item in (part.strip() for part in value.split(";")):
        if not item:
            continue
        number = normalize(item, area)
        if number is None:
            raise RowError(f"{column}: {mask(item)} is not a valid phone number")
        if number not in numbers:
            numbers.append(number)
    return numbers


def _family(value: str, area: str) -> list[tuple[str, str, str]]:
    contacts: list[tuple[str, str, str]] = []
    for item in (part.strip() for part in value.split(";")):
        if not item:
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 3:
            raise RowError("family: each contact must be name:relation:phone")
        name = _text(parts[0], "family name", 64, required=True)
        relation = _text(parts[1], "family relation", 16, required=True)
        number = normalize(parts[2], area)
        if number is None:
            raise RowError(f"family: {mask(parts[2])} is not a valid phone number")
        if all(number != c[2] for c in contacts):
            contacts.append((name or "", relation or "", number))
    return contacts


def _birth_date(value: str) -> date | None:
    born = date_cell(value, "birth_date")
    if born is not None and not date(1900, 1, 1) <= born <= datetime.now(UTC).date():
        raise RowError(f"birth_date {value.strip()} is out of range")
    return born


def _id_card(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if _MASKED_ID.fullmatch(value):
        return value.upper()
    if _RAW_ID.fullmatch(value):  # store masked only: region prefix and last 4 characters
        return (value[:6] + "*" * (len(value) - 10) + value[-4:]).upper()
    raise RowError("id_card is neither an 18/15-digit ID nor a masked one")


def _coordinate(value: str, column: str, limit: float) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise RowError(f"{column} {value[:20]!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise RowError(f"{column} {value[:20]} is out of range")
    return number


def _regions(cells: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level, length in _CODE_LENGTHS.items():
        column = f"{level}_code"
        if column in cells:
            code = cells[column].strip() or None
            if code is not None and not (code.isascii() and code.isdigit()
                                         and len(code) == length):
                raise RowError(f"{column} must be {length} digits")
            out[column] = code
        name_column = f"{level}_name"
        if name_column in cells:
            out[name_column] = _text(cells[name_column], name_column, _NAME_LIMITS[level])
    for level, (parent, prefix) in _CODE_PARENT.items():
        child, above = out.get(f"{level}_code"), out.get(f"{parent}_code")
        if child and above and child[:prefix] != above[:prefix]:
            raise RowError(f"{level}_code {child} does not lie in {parent}_code {above}")
    return out


def parse_row(cells: dict[str, str], area: str) -> ElderRecord:
    """Validate one row (cells by column name) into an ElderRecord; raise RowError."""
    for column, value in cells.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RowError(f"{column} is not valid UTF-8") from None
    cells = {k: unicodedata.normalize("NFKC", v) for k, v in cells.items()}
    fields: dict[str, Any] = {"name": _text(cells["name"], "name", 64, required=True)}
    ref = _text(cells.get("elder_ref", ""), "elder_ref", 64)
    if ref is not None:  # an empty cell keeps the stored reference
        fields["external_ref"] = ref
    if "gender" in cells:
        gender = cells["gender"].strip().lower()
        if gender not in GENDERS:
            raise RowError("gender must be M, F, 男, 女 or empty")
        fields["gender"] = GENDERS[gender]
    if "birth_date" in cells:
        fields["birth_date"] = _birth_date(cells["birth_date"])
    if "id_card" in cells:
        fields["id_card_masked"] = _id_card(cells["id_card"])
    if "address" in cells:
        fields["address"] = _text(cells["address"], "address", 255, fold_lines=True)
    fields.update(_regions(cells))
    lat_lon = [c for c in ("latitude", "longitude") if c in cells]
    if lat_lon:
        lat = _coordinate(cells.get("latitude", ""), "latitude", 90.0)
        lon = _coordinate(cells.get("longitude", ""), "longitude", 180.0)
        if (lat is None) != (lon is None):
            raise RowError("latitude and longitude go together")
        fields["latitude"], fields["longitude"] = lat, lon
    if "language" in cells:
        language = cells["language"].strip() or "zh"
        if not _LANGUAGE.fullmatch(language):
            raise RowError(f"language {language[:16]!r} is not a code like zh or yue")
        fields["preferred_language"] = language
    if "subsidy" in cells:
        subsidy = SUBSIDY_ALIASES.get(cells["subsidy"].strip().lower(), cells["subsidy"].strip())
        if subsidy not in {s.value for s in SubsidyCategory}:
            raise RowError(f"subsidy {subsidy[:24]!r} is not a known category")
        fields["subsidy_category"] = subsidy
    if "health_notes" in cells:
        fields["health_notes"] = _text(cells["health_notes"][:2000], "health_notes", 2000,
                                       fold_lines=True)
    if "no_menu" in cells:
        flag = cells["no_menu"].strip().lower()
        if flag not in FLAGS:
            raise RowError("no_menu must be 1/0, yes/no, true/false, 是/否 or empty")
        fields["no_menu"] = FLAGS[flag]

    phones = [(n, PhoneKind.MOBILE if is_mobile(n) else PhoneKind.LANDLINE)
              for n in _phone_list(cells["phones"], area, "phones")]
    handsets = _phone_list(cells.get("handset", ""), area, "handset")
    phones = [p for p in phones if p[0] not in handsets]
    phones += [(n, PhoneKind.HANDSET) for n in handsets]
    if not phones:
        raise RowError("no phone number: phones (or handset) is required")
    family = _family(cells.get("family", ""), area)
    own = {n for n, _ in phones}
    if any(number in own for _, _, number in family):
        raise RowError("a family contact has one of the elder's own numbers")
    return ElderRecord(fields, phones, family)


# -- storage -----------------------------------------------------------------------------

def _same_elder(conn: Connection, record: ElderRecord) -> int | None:
    """The registered elder this row describes: by ``elder_ref``, else by the same name on
    one of the row's numbers (an elder without a reference, when the row has one)."""
    ref = record.fields.get("external_ref")
    if ref is not None:
        found = conn.scalar(select(Elder.id).where(Elder.external_ref == ref))
        if found is not None:
            return int(found)
    numbers = [n for n, _ in record.phones]
    query = (select(Elder.id).distinct()
             .join(ElderPhone, ElderPhone.elder_id == Elder.id)
             .where(Elder.name == record.fields["name"], ElderPhone.number_e164.in_(numbers)))
    if ref is not None:
        query = query.where(Elder.external_ref.is_(None))
    owners = sorted(conn.scalars(query))
    if len(owners) > 1:
        raise RowError(f"{len(owners)} registered elders have this name and one of these "
                       "numbers: add elder_ref to tell them apart")
    return owners[0] if owners else None


def _sharing(conn: Connection, elder_id: int, numbers: list[str]) -> list[str]:
    """Notes on the row's numbers that other elders have too (a household)."""
    rows = conn.execute(
        select(ElderPhone.number_e164, func.count(ElderPhone.elder_id.distinct()))
        .where(ElderPhone.number_e164.in_(numbers), ElderPhone.elder_id != elder_id)
        .group_by(ElderPhone.number_e164).order_by(ElderPhone.number_e164)
    )
    return [f"{mask(number)} is shared with {others} other elder(s): one household"
            for number, others in rows]


def _store(conn: Connection, record: ElderRecord) -> tuple[bool, list[str]]:
    """Insert or update one elder; return whether it was created, and notes on numbers it
    shares. Only this elder's own rows are changed or replaced."""
    elder_id = _same_elder(conn, record)
    created = elder_id is None
    if elder_id is not None:
        conn.execute(update(Elder).where(Elder.id == elder_id).values(**record.fields))
        conn.execute(delete(ElderPhone).where(ElderPhone.elder_id == elder_id))
        conn.execute(delete(FamilyContact).where(FamilyContact.elder_id == elder_id))
    else:
        values = {"created_at": datetime.now(UTC), "preferred_language": "zh",
                  "subsidy_category": "none", **record.fields}
        elder_id = conn.execute(insert(Elder).values(**values)).inserted_primary_key[0]
    conn.execute(insert(ElderPhone), [
        {"elder_id": elder_id, "number_e164": n, "kind": k.value, "label": None}
        for n, k in record.phones
    ])  # fmt: skip
    if record.family:
        conn.execute(insert(FamilyContact), [
            {"elder_id": elder_id, "name": name, "relation": relation, "number_e164": number,
             "priority": priority}
            for priority, (name, relation, number) in enumerate(record.family, start=1)
        ])  # fmt: skip
    return created, _sharing(conn, elder_id, [n for n, _ in record.phones])


def import_registry_csv(url: str, path: str | Path, *, local_area_code: str = "931",
                        ) -> ImportReport:
    """Import the registry CSV at ``path`` into the (migrated) database at ``url``."""
    report = ImportReport(str(path))

    def store(conn: Connection, line: int, cells: dict[str, str]) -> None:
        created, notes = _store(conn, parse_row(cells, local_area_code))
        report.created += created
        report.updated += not created
        report.shared += [BadRow(line, note) for note in notes]

    import_csv(url, path, report, REQUIRED, OPTIONAL, store, commit_every=COMMIT_EVERY,
               pause_s=SQLITE_YIELD_S)
    return report
