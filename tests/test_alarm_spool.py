"""AlarmReceiver spool files on disk: parsing, waiting, moving, quarantine, and the
simulator's pendant base units (directly and through its control protocol)."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest

from dispatch.alarm_spool import (
    QuarantineNoteError,
    SpoolFileError,
    move_to_processed,
    parse_spool,
    pending_files,
    quarantine,
    read_spool_file,
    shown_name,
)
from dispatch.contact_id import Qualifier
from sim.alarm_box import AlarmBox, BoxEvent, Corruption, message, render, write_spool_file
from tests.file_limits import no_file_growth
from tests.sim.conftest import DIALPLANS
from tests.simharness import SimError, start_sim

# Byte for byte what app_alarmreceiver.c writes (default grouped metadata).
ASTERISK_FILE = (
    b"\n\n[metadata]\n\n"
    b"PROTOCOL=ADEMCO_CONTACT_ID\n"
    b"CHECKSUM=yes\n"
    b"CALLINGFROM=93112345678\n"
    b"CALLERNAME=<unknown>\n"
    b"TIMESTAMP=Mon Nov 23, 2026 @ 15:07:02 CST\n\n"
    b"[events]\n\n"
    b"1234181101010151\n"
    b"123418310101015B\n"
)
# With nogroupmetadata=yes in alarmreceiver.conf.
UNGROUPED_FILE = (
    b"PROTOCOL=ADEMCO_CONTACT_ID\nCHECKSUM=yes\nCALLINGFROM=<unknown>\nCALLERNAME=Box\n"
    b"TIMESTAMP=Mon Nov 23, 2026 @ 15:07:02 CST\n\nevent=1234181101010151\n"
)


def aged(path: Path, seconds: float = 60.0) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_parses_the_asterisk_layout() -> None:
    content = parse_spool(ASTERISK_FILE)
    assert content.calling_from == "93112345678"
    assert content.caller_name is None
    assert content.timestamp_text == "Mon Nov 23, 2026 @ 15:07:02 CST"
    assert [m.text for m in content.messages] == ["1234181101010151", "123418310101015E"]
    assert content.messages[1].qualifier is Qualifier.RESTORE


def test_parses_ungrouped_metadata_and_crlf() -> None:
    content = parse_spool(UNGROUPED_FILE)
    assert content.calling_from is None and content.caller_name == "Box"
    assert [m.code for m in content.messages] == ["101"]
    assert parse_spool(ASTERISK_FILE.replace(b"\n", b"\r\n")).messages[0].zone == "015"


@pytest.mark.parametrize(("data", "reason"), [
    (ASTERISK_FILE.replace(b"015B", b"015A"), "line 14: bad checksum"),
    (ASTERISK_FILE.split(b"[events]")[0], "truncated: no [events] section"),
    (ASTERISK_FILE[:-5], "truncated: the last line has no line end"),
    (ASTERISK_FILE.replace(b"<unknown>", b"\xb3\xc2"), "not UTF-8"),
    (ASTERISK_FILE.replace(b"ADEMCO_CONTACT_ID", b"ADEMCO_EXPRESS_4_1"), "unsupported protocol"),
    (ASTERISK_FILE.replace(b"CHECKSUM=yes", b"CHECKSUM=no"), "without checksum"),
    (ASTERISK_FILE.replace(b"CALLERNAME=<unknown>\n", b""), "missing CALLERNAME"),
    (ASTERISK_FILE.replace(b"CHECKSUM=yes\n", b"CHECKSUM=yes\nCHECKSUM=yes\n"), "given twice"),
    (ASTERISK_FILE.replace(b"[events]", b"[evil]"), "unknown section"),
    (ASTERISK_FILE.replace(b"PROTOCOL", b"HELLO"), "unexpected metadata line"),
    (ASTERISK_FILE.split(b"1234181")[0], "no events in the file"),
    (ASTERISK_FILE.replace(b"151\n", b"15\x001\n"), "NUL"),
    (b"", "truncated"),
    (bytes(range(256)) * 4, "not UTF-8"),
])
def test_defects_have_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(SpoolFileError, match=re.escape(reason)):
        parse_spool(data)


def test_a_bad_file_still_names_the_calling_line() -> None:
    with pytest.raises(SpoolFileError) as caught:
        parse_spool(ASTERISK_FILE.replace(b"015B", b"015A"))
    assert caught.value.calling_from == "93112345678"


def test_read_refuses_links_fifos_huge_and_vanished_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(ASTERISK_FILE)
    (tmp_path / "event-link").symlink_to(real)
    with pytest.raises(SpoolFileError, match="symbolic link"):
        read_spool_file(tmp_path / "event-link")
    os.mkfifo(tmp_path / "event-fifo")
    with pytest.raises(SpoolFileError, match="not a regular file"):
        read_spool_file(tmp_path / "event-fifo")
    (tmp_path / "event-big").write_bytes(ASTERISK_FILE + b"1234181101010151\n" * 5000)
    with pytest.raises(SpoolFileError, match="larger than"):
        read_spool_file(tmp_path / "event-big")
    with pytest.raises(SpoolFileError, match="unreadable"):
        read_spool_file(tmp_path / "event-gone")


def test_read_gives_hash_and_modification_time(tmp_path: Path) -> None:
    path = aged(write_spool_file(tmp_path, ASTERISK_FILE), 3600)
    spool = read_spool_file(path)
    assert spool.name == path.name and len(spool.sha256) == 64
    assert abs(spool.received_at.timestamp() - (time.time() - 3600)) < 5


def test_pending_orders_by_age_and_holds_back_young_files(tmp_path: Path) -> None:
    old = aged(write_spool_file(tmp_path, ASTERISK_FILE), 120)
    older = aged(write_spool_file(tmp_path, ASTERISK_FILE), 600)
    young = write_spool_file(tmp_path, ASTERISK_FILE)
    future = aged(write_spool_file(tmp_path, ASTERISK_FILE), -3600)  # a clock step
    (tmp_path / "processed").mkdir()
    (tmp_path / "event-dir").mkdir()
    (tmp_path / "other-file").write_text("x")
    ready, waiting = pending_files(tmp_path, min_age_s=5)
    assert ready == [older, old, future]
    assert waiting == [young]
    ready, waiting = pending_files(tmp_path, min_age_s=5, wall_time=time.time() + 10)
    assert young in ready and waiting == []


def test_moves_never_overwrite(tmp_path: Path) -> None:
    first = tmp_path / "event-AAAAAA"
    first.write_bytes(b"one")
    assert move_to_processed(first) == tmp_path / "processed" / "event-AAAAAA"
    second = tmp_path / "event-AAAAAA"
    second.write_bytes(b"two")
    assert move_to_processed(second).name == "event-AAAAAA.1"
    assert (tmp_path / "processed" / "event-AAAAAA").read_bytes() == b"one"
    assert (tmp_path / "processed" / "event-AAAAAA.1").read_bytes() == b"two"
    assert not first.exists()
    assert stat.S_IMODE((tmp_path / "processed").stat().st_mode) == 0o700


def test_quarantine_keeps_the_file_and_writes_the_reason(tmp_path: Path) -> None:
    path = write_spool_file(tmp_path, b"garbage")
    target = quarantine(path, "truncated: no [events] section")
    assert target.parent == tmp_path / "quarantine" and target.read_bytes() == b"garbage"
    note = target.with_name(target.name + ".reason")
    assert note.read_text(encoding="utf-8") == "truncated: no [events] section\n"
    assert stat.S_IMODE(note.stat().st_mode) == 0o600
    assert not path.exists()


@pytest.mark.parametrize(("name", "shown"), [
    ("event-AbC123", "event-AbC123"),
    (os.fsdecode(b"event-\xb3\xc2"), "event-\\xb3\\xc2"),
    ("event-x\n2026-11-23 ERROR forged", "event-x\\n2026-11-23 ERROR forged"),
    ("event-\r\t\x1b", "event-\\r\\t\\x1b"),
    ("event-a\\xb3", "event-a\\\\xb3"),  # a real backslash is not mistaken for a byte
    ("event-王", "event-王"),
])
def test_shown_names_are_one_printable_line(name: str, shown: str) -> None:
    assert shown_name(name) == shown
    assert shown.isprintable()


def test_names_that_cannot_be_recorded_are_defects(tmp_path: Path) -> None:
    odd = tmp_path / os.fsdecode(b"event-\xb3\xc2")
    odd.write_bytes(ASTERISK_FILE)
    with pytest.raises(SpoolFileError, match=re.escape("file name event-\\xb3\\xc2 is not "
                                                       "valid UTF-8")) as caught:
        read_spool_file(odd)
    assert caught.value.calling_from == "93112345678"  # the alert can still name the line
    long = tmp_path / ("event-" + "A" * 59)
    long.write_bytes(ASTERISK_FILE)
    with pytest.raises(SpoolFileError, match="longer than 64 characters"):
        read_spool_file(long)


def test_quarantine_gives_odd_names_a_safe_one(tmp_path: Path) -> None:
    odd = tmp_path / os.fsdecode(b"event-\xb3\xc2\n")
    odd.write_bytes(b"garbage")
    target = quarantine(odd, "file name event-\\xb3\\xc2\\n is not valid UTF-8")
    assert target == tmp_path / "quarantine" / "event-_xb3_xc2_n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["event-_xb3_xc2_n",
                                                               "event-_xb3_xc2_n.reason"]
    assert target.with_name("event-_xb3_xc2_n.reason").read_text(encoding="utf-8") == (
        "file name event-\\xb3\\xc2\\n is not valid UTF-8\n")


def test_a_reason_note_that_cannot_be_written_leaves_no_empty_note(tmp_path: Path) -> None:
    path = write_spool_file(tmp_path, b"garbage")
    with no_file_growth(), pytest.raises(QuarantineNoteError) as caught:
        quarantine(path, "unexpected metadata line")
    assert caught.value.target == tmp_path / "quarantine" / path.name
    assert caught.value.target.read_bytes() == b"garbage"  # the file itself is safe
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [path.name]
    assert not path.exists()


@pytest.mark.parametrize(("data", "incomplete"), [
    (ASTERISK_FILE[:-5], True),
    (ASTERISK_FILE.split(b"[events]")[0], True),
    (ASTERISK_FILE.split(b"1234181")[0], True),
    (ASTERISK_FILE.split(b"CALLERNAME")[0], True),
    (b"", True),
    (ASTERISK_FILE.replace(b"015B", b"015A"), False),
    (ASTERISK_FILE.replace(b"CHECKSUM=yes", b"CHECKSUM=no"), False),
])
def test_a_file_ending_early_is_told_apart(data: bytes, incomplete: bool) -> None:
    with pytest.raises(SpoolFileError) as caught:
        parse_spool(data)
    assert caught.value.incomplete is incomplete


def test_alarm_box_writes_files_like_alarm_receiver(tmp_path: Path) -> None:
    box = AlarmBox("1234", line="93112345678", caller_name="王奶奶")
    path = box.report(tmp_path, [BoxEvent("101", zone="015")], when=0)
    assert re.fullmatch(r"event-[A-Za-z0-9]{6}", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"\n\n[metadata]\n\nPROTOCOL=ADEMCO_CONTACT_ID\nCHECKSUM=yes\n"
                           b"CALLINGFROM=93112345678\nCALLERNAME=\xe7\x8e\x8b")
    assert data.endswith(b"\n\n[events]\n\n1234181101010151\n")
    assert re.search(rb"TIMESTAMP=\w{3} \w{3} \d\d, \d{4} @ \d\d:\d\d:\d\d \w*\n", data)
    assert parse_spool(data).caller_name == "王奶奶"


@pytest.mark.parametrize(("corrupt", "reason"), [
    (Corruption.BAD_CHECKSUM, "bad checksum"),
    (Corruption.TRUNCATED, "truncated"),
    (Corruption.NO_EVENTS, "no [events] section"),
    (Corruption.NOT_UTF8, "not UTF-8"),
])
def test_alarm_box_corruptions_are_detected(corrupt: Corruption, reason: str) -> None:
    data = render([message("1234", BoxEvent("101")), message("1234", BoxEvent("602"))],
                  "93112345678", corrupt=corrupt)
    with pytest.raises(SpoolFileError, match=re.escape(reason)):
        parse_spool(data)


async def test_simulator_alarm_op_writes_into_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    args = ["--alarm-spool", str(spool)]
    async with start_sim([DIALPLANS / "basic.conf"], extra_args=args) as sim:
        done = await sim.request("alarm", account="12B4", line="93112345678",
                                 events=[{"code": "101", "zone": "003"},
                                         {"code": "101", "qualifier": 3, "zone": "003"}])
        content = read_spool_file(spool / done["file"]).content
        assert [(m.account, m.code, m.qualifier) for m in content.messages] == [
            ("12B4", "101", Qualifier.NEW), ("12B4", "101", Qualifier.RESTORE)]
        assert content.calling_from == "93112345678"
        spoiled = await sim.request("alarm", account="1234", events=[{"code": "101"}],
                                    corrupt="truncated")
        with pytest.raises(SpoolFileError, match="truncated"):
            read_spool_file(spool / spoiled["file"])
        for bad, needle in (
            ({"account": "12", "events": [{"code": "101"}]}, "account must have 4"),
            ({"account": "1234", "events": []}, "non-empty list"),
            ({"account": "1234", "events": [{"code": "1A1"}]}, "0-9 and B-F"),
            ({"account": "1234", "events": [{"code": "101", "qualifier": 2}]}, "qualifier"),
            ({"account": "1234", "events": [{"code": "101"}], "corrupt": "x"}, "corrupt"),
            ({"account": "1234", "line": "1\r\n", "events": [{"code": "101"}]}, "single-line"),
        ):
            with pytest.raises(SimError, match=needle):
                await sim.request("alarm", **bad)
        assert sorted(p.name for p in spool.iterdir()) == sorted([done["file"],
                                                                  spoiled["file"]])
    async with start_sim([DIALPLANS / "basic.conf"]) as sim:
        with pytest.raises(SimError, match="--alarm-spool"):
            await sim.request("alarm", account="1234", events=[{"code": "101"}])
