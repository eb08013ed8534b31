"""Registry CSV import: good rows in, bad rows reported by line, malformed files survived."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatch.csv_records import MAX_LINE_CHARS, MAX_RECORD_LINES
from dispatch.db import make_sync_engine, upgrade
from dispatch.importer import import_registry_csv
from dispatch.models import Elder, ElderPhone, FamilyContact
from tests.storage import sqlite_url

HEADER = ("name,gender,birth_date,id_card,phones,handset,family,address,province_code,"
          "city_code,county_code,county_name,street_code,community_code,latitude,longitude,"
          "language,subsidy,health_notes")
GOOD = f"""{HEADER}
张秀英,女,1941-03-08,620102194103081234,13893112345;0931-8123456,,王芳:女儿:13800138000;王强:儿子:13900139000,兰州市城关区张掖路街道1号,620000,620100,620102,城关区,620102001000,620102001001,36.06,103.83,zh,低保,高血压；行动不便
李建国,M,1938-11-20,620123********123X,8456789,09314567890,"李强:儿子:13919312345",榆中县城关镇,620000,620100,620123,榆中县,,,,,yue,none,
陈桂兰,,,,+86 186 9311 2345,,"王芳:女儿:13800138000",,,,,,,,,,,,
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "registry.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def _query(url: str, statement: Any) -> list[Any]:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(statement))
    finally:
        engine.dispose()


def _count(url: str, model: Any) -> int:
    return _query(url, select(func.count()).select_from(model))[0][0]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url


def test_good_rows_are_imported(migrated_db_url: str, tmp_path: Path) -> None:
    report = import_registry_csv(migrated_db_url, _write(tmp_path, GOOD))
    assert report.ok, str(report)
    assert (report.created, report.updated) == (3, 0)
    elders = {e.name: e for e in _query(migrated_db_url, select(Elder.__table__))}
    zhang, li, chen = elders["张秀英"], elders["李建国"], elders["陈桂兰"]
    assert (zhang.gender, str(zhang.birth_date), zhang.id_card_masked) == (
        "F", "1941-03-08", "620102********1234")
    assert (zhang.subsidy_category, zhang.street_code, zhang.latitude) == (
        "dibao", "620102001000", 36.06)
    assert zhang.health_notes == "高血压;行动不便"  # full-width punctuation folded
    assert (li.gender, li.preferred_language, li.id_card_masked) == ("M", "yue",
                                                                     "620123********123X")
    assert (chen.preferred_language, chen.subsidy_category, chen.gender) == ("zh", "none", None)
    phones = {(p.number_e164, p.kind, p.elder_id)
              for p in _query(migrated_db_url, select(ElderPhone.__table__))}
    assert phones == {
        ("+8613893112345", "mobile", zhang.id), ("+869318123456", "landline", zhang.id),
        ("+869318456789", "landline", li.id), ("+869314567890", "handset", li.id),
        ("+8618693112345", "mobile", chen.id),
    }  # fmt: skip
    family = sorted((f.elder_id, f.priority, f.name, f.relation, f.number_e164)
                    for f in _query(migrated_db_url, select(FamilyContact.__table__)))
    assert family == sorted([
        (zhang.id, 1, "王芳", "女儿", "+8613800138000"),
        (zhang.id, 2, "王强", "儿子", "+8613900139000"),
        (li.id, 1, "李强", "儿子", "+8613919312345"),
        (chen.id, 1, "王芳", "女儿", "+8613800138000"),  # one daughter, two mothers
    ])  # fmt: skip


def test_reimport_updates_instead_of_duplicating(migrated_db_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    import_registry_csv(migrated_db_url, path)
    again = import_registry_csv(migrated_db_url, path)
    assert again.ok and (again.created, again.updated) == (0, 3)
    assert (_count(migrated_db_url, Elder), _count(migrated_db_url, ElderPhone),
            _count(migrated_db_url, FamilyContact)) == (3, 5, 4)
    changed = _write(tmp_path, "name,phones,family,address\n"
                     "张秀英,0931-8123456;13312345678,王强:儿子:13900139000,新地址\n",
                     "changed.csv")
    report = import_registry_csv(migrated_db_url, changed)
    assert report.ok and (report.created, report.updated) == (0, 1)
    zhang = _query(migrated_db_url, select(Elder.__table__).where(Elder.name == "张秀英"))[0]
    assert (zhang.address, zhang.birth_date) == ("新地址", zhang.birth_date)  # absent: kept
    assert zhang.id_card_masked == "620102********1234"
    numbers = {p.number_e164 for p in _query(
        migrated_db_url, select(ElderPhone.__table__).where(ElderPhone.elder_id == zhang.id))}
    assert numbers == {"+869318123456", "+8613312345678"}
    contacts = _query(migrated_db_url, select(FamilyContact.__table__)
                      .where(FamilyContact.elder_id == zhang.id))
    assert [(c.name, c.priority) for c in contacts] == [("王强", 1)]


BAD = """name,phones,family,birth_date,county_code,street_code,latitude,longitude,address
好人甲,13800000001,,,,,,,
,13800000002,,,,,,,
坏号码,12345abc,,,,,,,
坏家属,13800000003,只有名字,,,,,,
坏日期,13800000004,,1941-13-40,,,,,
多行地址,13800000005,,,,,,,"兰州市
城关区"
坏区划,13800000006,,,620102,620103001000,,,
半个坐标,13800000007,,,,,36.1,,
字段太少,13800000008
"名字
换行",13800000009,,,,,,,
没有电话,,,,,,,,
自己的号,13800000010,儿子:儿子:13800000010,,,,,,
好人乙,13800000011,,,,,,,
两个老人,13800000001;13800000011,,,,,,,
"""


def test_bad_rows_are_reported_with_line_numbers(migrated_db_url: str,
                                                  tmp_path: Path) -> None:
    report = import_registry_csv(migrated_db_url, _write(tmp_path, BAD))
    reasons = {e.line: e.reason for e in report.errors}
    assert (report.created, report.updated, report.fatal) == (4, 0, None)
    assert sorted(reasons) == [3, 4, 5, 6, 9, 10, 11, 12, 14, 15]
    assert "name is empty" in reasons[3]
    assert "12345abc" not in reasons[4] and "not a valid phone number" in reasons[4]
    assert "name:relation:phone" in reasons[5]
    assert "YYYY-MM-DD" in reasons[6]
    assert "does not lie in" in reasons[9]
    assert "together" in reasons[10]
    assert "expected 9 fields, found 2" in reasons[11]
    assert "name contains control characters" in reasons[12]
    assert "no phone number" in reasons[14]
    assert "own numbers" in reasons[15]
    # another name on two registered numbers: a third member of both households, noted
    assert [(n.line, n.reason) for n in report.shared] == [
        (17, "+86138******01 is shared with 1 other elder(s): one household"),
        (17, "+86138******11 is shared with 1 other elder(s): one household")]
    rows = _query(migrated_db_url, select(Elder.name, Elder.address))
    assert {tuple(r) for r in rows} == {("好人甲", None), ("多行地址", "兰州市 城关区"),
                                        ("好人乙", None), ("两个老人", None)}


def test_unknown_columns_are_ignored_and_listed(sqlite_db: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "\ufeffName,PHONES,favourite_colour\n王五,13700137000,红\n")
    report = import_registry_csv(sqlite_db, path)
    assert report.ok and report.created == 1 and report.ignored_columns == ["favourite_colour"]


@pytest.mark.parametrize(
    ("content", "fatal"),
    [
        (b"", "empty"),
        (b"name,address\n\xe5\xbc\xa0,x\n", "missing required column(s): phones"),
        (b"name,phones,name\n", "duplicate"),
        (bytes(range(256)) * 40, "missing required"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 500, "missing required"),
    ],
)
def test_unusable_files_stop_with_a_message(sqlite_db: str, tmp_path: Path, content: bytes,
                                            fatal: str) -> None:
    report = import_registry_csv(sqlite_db, _write(tmp_path, content))
    assert report.fatal is not None and fatal in report.fatal, report.fatal
    assert report.created == 0 and _count(sqlite_db, Elder) == 0


def test_missing_file_and_directory(sqlite_db: str, tmp_path: Path) -> None:
    assert "cannot open" in (import_registry_csv(sqlite_db, tmp_path / "nope.csv").fatal or "")
    assert "cannot open" in (import_registry_csv(sqlite_db, tmp_path).fatal or "")


def test_damaged_rows_do_not_stop_the_import(sqlite_db: str, tmp_path: Path) -> None:
    content = b"".join([
        b"name,phones\n",
        "甲,13800000001\n".encode(),
        b"\xff\xfe\xb2,13800000002\n",  # not UTF-8
        b"\xe4\xb9\x99\x00,13800000003\n",  # NUL byte
        b"x" * (MAX_LINE_CHARS * 3) + b",13800000004\n",  # endless line
        "丙,13800000005\n".encode(),
        b'"unterminated,13800000006\n',  # an open quote swallows the rest
    ])  # fmt: skip
    report = import_registry_csv(sqlite_db, _write(tmp_path, content))
    reasons = {e.line: e.reason for e in report.errors}
    assert reasons[3] == "name is not valid UTF-8"
    assert reasons[4] == "name contains control characters"
    assert reasons[5] == f"line longer than {MAX_LINE_CHARS} characters"
    assert reasons[7].startswith("malformed CSV")
    assert sorted(reasons) == [3, 4, 5, 7]
    names = {row.name for row in _query(sqlite_db, select(Elder.name))}
    assert names == {"甲", "丙"}


def test_too_many_bad_rows_stop_cleanly(sqlite_db: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import dispatch.csv_records as csv_records

    monkeypatch.setattr(csv_records, "MAX_ERRORS", 5)
    path = _write(tmp_path, "name,phones\n" + ",\n".join("x" * 20) + "\n")
    report = import_registry_csv(sqlite_db, path)
    assert len(report.errors) == 5 and "stopped" in (report.fatal or "")


def _good_rows(first: int, count: int) -> list[str]:
    return [f"好人{n},138{n:08d},\n" for n in range(first, first + count)]


@pytest.mark.parametrize("rows_after", [3, MAX_RECORD_LINES + 5])
def test_an_unbalanced_quote_costs_only_its_row(sqlite_db: str, tmp_path: Path,
                                                rows_after: int) -> None:
    lines = ["name,phones,address\n",
             '多行地址,13800000001,"兰州市\n', '城关区"\n',  # a quoted line break: fine
             '开引号,13800000002,"没有收尾\n',  # line 4: the quote never closes
             *_good_rows(10, rows_after),
             '收引号,13800000003,"x"y\n',  # a stray closing quote further down
             *_good_rows(100, 2)]
    report = import_registry_csv(sqlite_db, _write(tmp_path, "".join(lines)))
    reasons = {e.line: e.reason for e in report.errors}
    stray = 5 + rows_after
    assert sorted(reasons) == [4, stray], reasons
    assert "quote" in reasons[4] or "malformed CSV" in reasons[4]
    assert reasons[stray].startswith("malformed CSV")
    names = {row.name for row in _query(sqlite_db, select(Elder.name))}
    assert names == {"多行地址", *(f"好人{n}" for n in range(10, 10 + rows_after)),
                     "好人100", "好人101"}
    assert report.created == len(names)


def test_an_unclosed_quote_is_reported_as_such(sqlite_db: str, tmp_path: Path) -> None:
    lines = ["name,phones,address\n", '开引号,13800000002,"没有收尾\n',
             *_good_rows(10, MAX_RECORD_LINES + 1)]
    report = import_registry_csv(sqlite_db, _write(tmp_path, "".join(lines)))
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, f"unbalanced quote: the record is not closed within {MAX_RECORD_LINES} lines")]
    assert report.created == MAX_RECORD_LINES + 1


def test_an_overlong_quoted_cell_swallows_no_row(sqlite_db: str, tmp_path: Path) -> None:
    huge = "长" * (MAX_LINE_CHARS + 10)
    lines = ["name,phones,address\n", f'大地址,13800000001,"{huge}"\n',
             "下一行,13800000002,兰州\n",
             '两行都长,13800000003,"' + "x" * (MAX_LINE_CHARS // 2) + "\n",
             "y" * (MAX_LINE_CHARS // 2) + '"\n',
             "再下一行,13800000004,兰州\n"]
    report = import_registry_csv(sqlite_db, _write(tmp_path, "".join(lines)))
    reasons = {e.line: e.reason for e in report.errors}
    assert reasons[2] == f"line longer than {MAX_LINE_CHARS} characters"
    assert reasons[4] == f"record longer than {MAX_LINE_CHARS} characters"
    assert 6 not in reasons
    names = {row.name for row in _query(sqlite_db, select(Elder.name))}
    assert names == {"下一行", "再下一行"}


def _elders(url: str) -> dict[str, Any]:
    """name -> (address, health notes, external ref, sorted phones)."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            elders = {row.name: row for row in conn.execute(select(Elder))}
            phones: dict[int, list[str]] = {}
            for elder_id, number in conn.execute(select(ElderPhone.elder_id,
                                                        ElderPhone.number_e164)):
                phones.setdefault(elder_id, []).append(number)
    finally:
        engine.dispose()
    return {name: (row.address, row.health_notes, row.external_ref,
                   sorted(phones.get(row.id, []))) for name, row in elders.items()}


def test_a_shared_phone_makes_a_household_and_erases_nobody(sqlite_db: str,
                                                            tmp_path: Path) -> None:
    header = "name,phones,address,health_notes\n"
    first = _write(tmp_path, header + "张秀英,13800000001;13900000002,城关区1号,高血压\n",
                   "first.csv")
    report = import_registry_csv(sqlite_db, first)
    assert (report.created, report.updated, report.errors) == (1, 0, [])
    second = _write(tmp_path, header + "李建国,13800000001,城关区1号,\n"
                                       "王五,13800000001,城关区1号,\n", "second.csv")
    report = import_registry_csv(sqlite_db, second)
    assert (report.created, report.updated, report.errors) == (2, 0, [])
    assert [(n.line, n.reason) for n in report.shared] == [
        (2, "+86138******01 is shared with 1 other elder(s): one household"),
        (3, "+86138******01 is shared with 2 other elder(s): one household")]
    assert _elders(sqlite_db) == {
        "张秀英": ("城关区1号", "高血压", None, ["+8613800000001", "+8613900000002"]),
        "李建国": ("城关区1号", None, None, ["+8613800000001"]),
        "王五": ("城关区1号", None, None, ["+8613800000001"]),
    }
    before = _elders(sqlite_db)
    again = import_registry_csv(sqlite_db, first)  # the same file again: nothing changes
    assert (again.created, again.updated, again.errors) == (0, 1, [])
    assert _elders(sqlite_db) == before


def test_elder_ref_is_the_stable_key(sqlite_db: str, tmp_path: Path) -> None:
    header = "elder_ref,name,phones\n"
    report = import_registry_csv(sqlite_db, _write(tmp_path, header + (
        "A001,张秀英,13800000001\n"
        "A002,张秀英,13800000001\n"  # a namesake on the same line: told apart by the key
    ), "a.csv"))
    assert (report.created, report.errors) == (2, [])
    # the key finds the elder whatever the name and numbers say now
    report = import_registry_csv(sqlite_db, _write(tmp_path, header + (
        "A001,张秀瑛,13800000001;13700000003\n"
    ), "b.csv"))
    assert (report.created, report.updated, report.errors) == (0, 1, [])
    found = _elders(sqlite_db)
    assert found["张秀瑛"] == (None, None, "A001", ["+8613700000003", "+8613800000001"])
    assert found["张秀英"] == (None, None, "A002", ["+8613800000001"])
    # without a key: matched by name and number; an elder without a key gets one
    report = import_registry_csv(sqlite_db, _write(tmp_path, (
        "name,phones\n张秀英,13800000001\n李建国,13600000004\n"), "c.csv"))
    assert (report.created, report.updated, report.errors) == (1, 1, [])
    report = import_registry_csv(sqlite_db, _write(tmp_path, header + (
        "B777,李建国,13600000004\n"), "d.csv"))
    assert (report.created, report.updated) == (0, 1)
    assert _elders(sqlite_db)["李建国"][2] == "B777"


def test_two_namesakes_on_one_number_need_the_key(sqlite_db: str, tmp_path: Path) -> None:
    import_registry_csv(sqlite_db, _write(tmp_path, (
        "elder_ref,name,phones\nA001,张秀英,13800000001\nA002,张秀英,13800000001\n"), "a.csv"))
    report = import_registry_csv(sqlite_db, _write(tmp_path, (
        "name,phones,address\n张秀英,13800000001,新地址\n"), "b.csv"))
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, "2 registered elders have this name and one of these numbers: add elder_ref "
            "to tell them apart")]
    assert [row.address for row in _query(sqlite_db, select(Elder.address))] == [None, None]


def test_the_no_menu_flag_is_imported(migrated_db_url: str, tmp_path: Path) -> None:
    rows = ("elder_ref,name,phones,no_menu\nA1,张秀英,13893112345,是\nA2,李建国,13893112346,\n"
            "A3,陈桂兰,13893112347,maybe\n")
    report = import_registry_csv(migrated_db_url, _write(tmp_path, rows))
    assert report.created == 2 and [e.line for e in report.errors] == [4]
    assert "no_menu" in report.errors[0].reason
    flags = dict(_query(migrated_db_url, select(Elder.name, Elder.no_menu)))
    assert flags == {"张秀英": True, "李建国": False}
    # the file's word is final: clearing it clears the flag; a file without the column
    # leaves it as the console set it
    import_registry_csv(migrated_db_url, _write(tmp_path, "elder_ref,name,phones,no_menu\n"
                                                          "A1,张秀英,13893112345,0\n"))
    assert dict(_query(migrated_db_url, select(Elder.name, Elder.no_menu)))["张秀英"] is False
    import_registry_csv(migrated_db_url, _write(tmp_path, "elder_ref,name,phones,no_menu\n"
                                                          "A2,李建国,13893112346,yes\n"))
    import_registry_csv(migrated_db_url, _write(tmp_path, "elder_ref,name,phones\n"
                                                          "A2,李建国,13893112346\n"))
    assert dict(_query(migrated_db_url, select(Elder.name, Elder.no_menu)))["李建国"] is True
