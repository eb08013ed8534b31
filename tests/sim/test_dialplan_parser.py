"""extensions.conf parsing and extension matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.dialplan.parser import DialplanError, load, parse_text
from sim.dialplan.patterns import can_match_more, matches

ROOT = Path(__file__).resolve().parents[2]

PLAN = """
; a comment
[general]
static = yes

[globals]
ENGINE=agi://127.0.0.1:4573   ; trailing comment
EMPTY=

[from-pstn]
include => shared
exten => 12349,1,NoOp(semi\\;colon)
 same => n(menu),Answer
 same => n,Set(X=a,b=c)
 same => 10,Hangup()
exten = _1[38]XXXXXXXXX,1,NoOp(mobile ${EXTEN})
exten => _X.,1,NoOp(anything)
exten => s,hint,PJSIP/100
;-- a block
comment --;
exten => s,1,Goto(menu)

[shared]
exten => 110,1,NoOp(police)
"""


def test_contexts_priorities_labels_and_globals() -> None:
    plan = parse_text(PLAN, "t.conf")
    assert plan.globals == {"ENGINE": "agi://127.0.0.1:4573", "EMPTY": ""}
    assert "general" not in plan.contexts
    ext = plan.contexts["from-pstn"].extensions["12349"]
    assert [(p, s.app, s.data) for p, s in sorted(ext.steps.items())] == [
        (1, "NoOp", "semi;colon"), (2, "Answer", ""), (3, "Set", "X=a,b=c"), (10, "Hangup", ""),
    ]
    assert ext.labels == {"menu": 2}
    assert ext.steps[3].where == "t.conf:14"
    assert plan.contexts["from-pstn"].extensions["s"].steps[1].data == "menu"


def test_exact_beats_pattern_and_includes_come_last() -> None:
    plan = parse_text(PLAN)
    assert plan.find("from-pstn", "12349").name == "12349"
    assert plan.find("from-pstn", "13800138000").name == "_1[38]XXXXXXXXX"
    assert plan.find("from-pstn", "14800138000").name == "_X."
    assert plan.find("from-pstn", "110").name == "_X."  # own patterns before includes
    assert plan.find("shared", "110").name == "110"
    assert plan.find("from-pstn", "") is None
    assert plan.find("nowhere", "1") is None


@pytest.mark.parametrize(("pattern", "exten", "ok"), [
    ("_X.", "1", False), ("_X.", "12", True), ("_X!", "1", True), ("_NXX", "200", True),
    ("_NXX", "100", False), ("_Z", "0", False), ("_[0-9*]", "*", True), ("_1-800-NXX", "1800200",
                                                                        True),
    ("12349", "12349", True), ("12349", "1234", False),
])
def test_pattern_matching(pattern: str, exten: str, ok: bool) -> None:
    assert matches(pattern, exten) is ok


def test_match_more() -> None:
    assert can_match_more("_1XX", "1")
    assert not can_match_more("_1XX", "123")
    assert can_match_more("_X.", "12")
    assert can_match_more("123", "12")
    assert not can_match_more("123", "123")


@pytest.mark.parametrize(("text", "message"), [
    ("exten => 1,1,NoOp()", "t.conf:1: line outside of any [context]"),
    ("[c]\nexten => 1,x,NoOp()", "t.conf:2: bad priority 'x'"),
    ("[c]\nsame => n,NoOp()", "t.conf:2: 'same =>' without a previous extension"),
    ("[c]\nexten => 1,1,NoOp(", "t.conf:2: missing ')'"),
    ("[c]\nexten => 1,1", "t.conf:2: expected 'exten => name,priority,App(args)'"),
    ("[c]\nfoo => bar", "t.conf:2: unknown keyword 'foo'"),
    ("[c]\nexten => _[12,1,NoOp()", "t.conf:2: unterminated ["),
    ("[c]\nexten => 1,n,NoOp()", "t.conf:2: priority 'n' needs a previous priority"),
    ("[c]\n#exec foo", "t.conf:2: unsupported directive"),
])
def test_syntax_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(DialplanError) as err:
        parse_text(text, "t.conf")
    assert str(err.value).startswith(message)


def test_include_is_relative_to_the_including_file_with_glob(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.conf").write_text('[top]\nexten => 1,1,NoOp()\n#include "sub/*.conf"\n')
    (tmp_path / "sub" / "a.conf").write_text("[a]\nexten => s,1,NoOp(a)\n")
    (tmp_path / "sub" / "b.conf").write_text("[b]\nexten => s,1,NoOp(b)\n#include missing.conf\n")
    plan = load([tmp_path / "main.conf"])
    assert set(plan.contexts) == {"top", "a", "b"}
    bad = tmp_path / "bad.conf"
    bad.write_text("[x]\n#include sub/c.conf\n")
    (tmp_path / "sub" / "c.conf").write_text("[c]\nexten => 1,1,NoOp(\n")
    with pytest.raises(DialplanError, match=r"c\.conf:2: missing '\)'"):
        load([bad])


def test_project_dialplan_loads() -> None:
    plan = load([ROOT / "asterisk_conf" / "extensions.conf", ROOT / "dialplans"])
    assert plan.find("from-pstn", "12349") is not None
    assert plan.globals.get("HOTLINE_QUEUE")
