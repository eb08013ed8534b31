"""Music on hold in Queue(): the class chosen as res_musiconhold chooses it (CHANNEL(musicclass),
the queue's musicclass, default), its announcement heard while the members already ring, and
musiconhold.conf files read or refused with a clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sim.moh import DataDir, MusicOnHold
from sim.parties import PartyError
from tests.sim.clocked import ClockedSim
from tests.sim.conftest import DIALPLANS, write_wav
from tests.simharness import SimError, start_sim

ROOT = Path(__file__).resolve().parents[2]
PLAN = [DIALPLANS / "hold.conf"]
QUEUES = """[general]
[support-tpl](!)
musicclass = calm
[support](support-tpl)
strategy = ringall
[plain]
strategy = ringall
"""
CLASSES = """[general]
preferchannelclass = {prefer}
[default]
mode = files
directory = moh
[calm]
mode = files
directory = moh
announcement = welcome
[urgent]
mode = files
directory = moh
announcement = long ; 20 s
"""


def caller(number: str, queue: str, musicclass: str = "", options: str = "") -> dict:
    return {"number": number, "to": "s", "context": "hold",
            "variables": {"QNAME": queue, "CLASS": musicclass, "QOPTS": options}}


def hold_sim(sounds: Path, tmp_path: Path, prefer: str) -> ClockedSim:
    """The PBX on task.Clock with the queues and classes above, loaded as the simulator
    loads --queues-conf, --data-dir and --musiconhold-conf; one operator."""
    (tmp_path / "queues.conf").write_text(QUEUES)
    (tmp_path / "musiconhold.conf").write_text(CLASSES.format(prefer=prefer))
    data = tmp_path / "astdata"
    write_wav(data / "moh" / "song.wav", 1.0)  # directory = moh: <astdatadir>/moh
    sim = ClockedSim(PLAN, sounds)
    sim.pbx.queues.load_conf(tmp_path / "queues.conf")
    sim.pbx.moh.data_dir = DataDir(data)
    sim.pbx.moh.load_conf(tmp_path / "musiconhold.conf")
    sim.request("operators", operators=[{"name": "op1", "answer_delay_s": 1, "talk_s": 1}])
    return sim


def test_the_class_and_its_announcement_while_members_ring(sounds, tmp_path: Path) -> None:
    sim = hold_sim(sounds, tmp_path, "yes")
    [urgent] = sim.calls({"caller": caller("13800000001", "support", "urgent")})
    [unknown] = sim.calls({"caller": caller("13800000002", "support", "nosuch")})
    [plain] = sim.calls({"caller": caller("13800000003", "plain")})
    [ringing] = sim.calls({"caller": caller("13800000004", "support", "urgent", "r")})
    queue = urgent["queue"]
    assert urgent["variables"]["CLASS_READ"] == "urgent"  # CHANNEL(musicclass) reads back
    assert queue["musicclass"] == "urgent"  # the channel's class before the queue's
    assert [name for _t, name, _d in urgent["heard"]] == ["long"]
    assert urgent["heard"][0][0] >= queue["joined_at"]
    # the operator answered 1 s after the join, long before the 20 s announcement ended
    assert queue["answered_at"] - queue["joined_at"] == pytest.approx(1.0, abs=0.02)
    assert queue["answered_at"] < urgent["heard"][0][0] + 20.0
    # a class musiconhold.conf lacks: the queue's (from its template), then default
    assert unknown["queue"]["musicclass"] == "calm"
    assert [name for _t, name, _d in unknown["heard"]] == ["welcome"]
    assert plain["queue"]["musicclass"] == "default" and plain["heard"] == []
    # option r: ringing instead of music on hold, so no announcement
    assert ringing["queue"]["musicclass"] is None and ringing["heard"] == []


def test_preferchannelclass_no_lets_the_queue_class_win(sounds, tmp_path: Path) -> None:
    sim = hold_sim(sounds, tmp_path, "no")
    [first] = sim.calls({"caller": caller("13800000005", "support", "urgent")})
    [second] = sim.calls({"caller": caller("13800000006", "plain", "urgent")})
    assert first["queue"]["musicclass"] == "calm"
    assert second["queue"]["musicclass"] == "urgent"  # plain has no class of its own


def test_the_shipped_classes_load_from_any_data_directory(tmp_path: Path) -> None:
    """The prompts installed as <astdatadir>/sounds/hotline, wherever astdatadir is."""
    data = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "recordings" / "prompts" / "moh", data / "sounds/hotline/moh")
    moh = MusicOnHold(data_dir=DataDir(data))
    assert moh.load_conf(ROOT / "asterisk_conf" / "musiconhold.conf") >= 5
    assert moh.prefer_channel_class
    assert moh.classes["default"].announcement == ""
    assert moh.classes["hotline-emergency-zh"].announcement == "hotline/zh/emergency"
    assert moh.classes["hotline-operator-yue"].announcement == "hotline/yue/to_operator"
    assert moh.pick("hotline-emergency-ko", "default").name == "default"


def test_a_class_whose_directory_is_missing_is_not_loaded(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    write_wav(tmp_path / "data" / "moh" / "song.wav", 1.0)
    (tmp_path / "data" / "empty").mkdir()
    path = tmp_path / "musiconhold.conf"
    path.write_text("[calm]\nmode = files\ndirectory = moh\n"
                    "[lost]\nmode = files\ndirectory = nosuch/moh\n"
                    "[absolute]\nmode = files\ndirectory = /nonexistent/hotline/moh\n"
                    "[empty]\nmode = files\ndirectory = empty\n")
    moh = MusicOnHold(data_dir=DataDir(tmp_path / "data"))
    assert moh.load_conf(path) == 1
    assert set(moh.classes) == {"calm"}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert f"Error opening directory - {tmp_path / 'data' / 'nosuch/moh'}" in errors[0]
    assert "Error opening directory - /nonexistent/hotline/moh" in errors[1]
    assert moh.pick("lost", "") is None  # no class, and no default: no music


def test_no_class_loaded_disables_music_on_hold(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    moh = MusicOnHold(data_dir=DataDir(tmp_path))
    assert moh.load_conf(ROOT / "asterisk_conf" / "musiconhold.conf") == 0
    assert moh.classes == {} and moh.pick("hotline-emergency-zh", "default") is None
    assert "disabling music on hold" in caplog.text


@pytest.mark.parametrize(("text", "error"), [
    ("[calm]\nannouncement = welcome\n", r"class \[calm\] needs mode = one of .* got 'none'"),
    ("[calm]\nmode = loud\n", r"class \[calm\] needs mode = .* got 'loud'"),
    ("[calm]\nmode = files\n", r"class \[calm\] \(mode files\) needs a directory"),
    ("mode = files\n", r"musiconhold.conf:1: expected \[section\] or option = value"),
    ("[calm](quiet)\nmode = files\n", r"musiconhold.conf:1: template 'quiet' is not defined"),
])
def test_a_bad_musiconhold_conf_is_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "musiconhold.conf"
    path.write_text(text)
    with pytest.raises(PartyError, match=error):
        MusicOnHold().load_conf(path)


async def test_the_simulator_does_not_start_on_a_bad_musiconhold_conf(sounds, tmp_path: Path
                                                                      ) -> None:
    path = tmp_path / "musiconhold.conf"
    path.write_text("[calm]\nmode = files\n")
    with pytest.raises(SimError, match=r"class \[calm\] \(mode files\) needs a directory"):
        async with start_sim(PLAN, sounds, extra_args=["--musiconhold-conf", str(path)]):
            pass
