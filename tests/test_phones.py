"""Caller number normalisation (region CN) and masking."""

from __future__ import annotations

import random
import string

import pytest

from dispatch.phones import is_mobile, mask, national, normalize, parsed

AREA = "931"

NORMALIZED = [
    # mobiles, every prefix form and separator
    ("13800138000", "+8613800138000"),
    ("+8613800138000", "+8613800138000"),
    ("008613800138000", "+8613800138000"),
    ("8613800138000", "+8613800138000"),
    ("86 138 0013 8000", "+8613800138000"),
    ("+86 138-0013-8000", "+8613800138000"),
    ("+86-138-0013-8000", "+8613800138000"),
    ("0086 138 0013 8000", "+8613800138000"),
    ("138 0013 8000", "+8613800138000"),
    ("138-0013-8000", "+8613800138000"),
    ("138.0013.8000", "+8613800138000"),
    ("(+86) 13800138000", "+8613800138000"),
    ("  13800138000  ", "+8613800138000"),
    ("013800138000", "+8613800138000"),  # trunk 0 some PBXes add
    ("１３８００１３８０００", "+8613800138000"),  # full-width digits
    ("⁸⁶¹³⁸⁰⁰¹³⁸⁰⁰⁰", "+8613800138000"),  # compatibility digits fold (NFKC)
    ("19912345678", "+8619912345678"),
    ("17012345678", "+8617012345678"),
    ("15193112345", "+8615193112345"),
    ("18693112345", "+8618693112345"),
    # landlines with area code
    ("0931-8123456", "+869318123456"),
    ("09318123456", "+869318123456"),
    ("0931 8123456", "+869318123456"),
    ("(0931)8123456", "+869318123456"),
    ("（0931）8123456", "+869318123456"),
    ("+86 931 8123456", "+869318123456"),
    ("+869318123456", "+869318123456"),
    ("+86 (0)931 8123456", "+869318123456"),
    ("0086-0931-8123456", "+869318123456"),
    ("86-0931-8123456", "+869318123456"),
    ("8609318123456", "+869318123456"),
    ("9318123456", "+869318123456"),
    ("0931-4567890", "+869314567890"),
    ("010-12345678", "+861012345678"),  # Beijing, 8-digit local numbers
    ("021 6123 4567", "+862161234567"),  # Shanghai
    ("020-87654321", "+862087654321"),
    # local landlines without area code: the configured local area code
    ("8123456", "+869318123456"),
    ("812-3456", "+869318123456"),
    ("4567890", "+869314567890"),
    ("2123456", "+869312123456"),
    # international callers keep their country
    ("+14155552671", "+14155552671"),
    ("001 415 555 2671", "+14155552671"),
    ("+852 2123 4567", "+85221234567"),
    # service / short numbers are kept, flagged by their short form
    ("12349", "+8612349"),
    ("110", "+86110"),
    ("95588", "+8695588"),
    ("10086", "+8610086"),
]

WITHHELD_OR_GARBAGE = [
    None,
    "",
    "   ",
    "anonymous",
    "Anonymous",
    "unknown",
    "<unknown>",
    "Restricted",
    "RESTRICTED",
    "private",
    "withheld",
    "Unavailable",
    "abc",
    "13800138000abc",
    "1380013800x",
    "sip:13800138000@10.0.0.1",
    "tel:+8613800138000",
    "1380013800",  # 10 digits: a mobile missing one digit
    "138001380000",  # 12 digits
    "0931812345",  # landline one digit short
    "093181234567",  # one digit long
    "1234",
    "99999",
    "0",
    "00",
    "+",
    "++8613800138000",
    "+86",
    "86",
    "-",
    "---",
    "()",
    "1" * 30,
    "9" * 200,
    "13800138000#123",
    "13800138000,1",
    "\x00\x01\x02",
    "13800\x00138000",
    "138\r\n00138000",
    "张三",
    "１２ab",
    "٣٣٣٣٣٣٣",  # Arabic-Indic digits are not accepted as a number
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZED)
def test_normalize_real_world_forms(raw: str, expected: str) -> None:
    assert normalize(raw, AREA) == expected


@pytest.mark.parametrize("raw", WITHHELD_OR_GARBAGE)
def test_withheld_and_garbage_give_none(raw: str | None) -> None:
    assert normalize(raw, AREA) is None


def test_local_area_code_comes_from_configuration() -> None:
    assert normalize("87654321", "10") == "+861087654321"
    assert normalize("8123456", "0931") == "+869318123456"
    assert normalize("8123456", "10") is None  # 7 digits are not a Beijing number
    assert normalize("8123456", "") is None
    assert normalize("0931-8123456", "10") == "+869318123456"


def _garbage(rng: random.Random) -> str:
    alphabet = string.printable + "０１２３４５６７８９＋－（）　张三丰\u200b\ufeff\udc80\x00"
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    if kind == 1:  # digit soup with separators
        return "".join(rng.choice("0123456789 +-()") for _ in range(rng.randrange(0, 30)))
    if kind == 2:  # a valid number with one character corrupted
        base = list(rng.choice(["13800138000", "+8613800138000", "0931-8123456"]))
        base[rng.randrange(len(base))] = rng.choice(alphabet)
        return "".join(base)
    return "".join(chr(rng.randrange(1, 0x10FFFF)) for _ in range(rng.randrange(0, 20)))


def test_fuzz_never_crashes_and_output_is_e164() -> None:
    rng = random.Random(12349)
    seen = 0
    for _ in range(20_000):
        raw = _garbage(rng)
        try:
            result = normalize(raw, AREA)
        except Exception as exc:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"normalize({raw!r}) raised {exc!r}")
        if result is not None:
            seen += 1
            assert result.startswith("+") and result[1:].isdigit() and result.isascii()
            assert normalize(result, AREA) == result  # idempotent
    assert seen > 0  # the corrupted-valid branch does sometimes stay valid


def test_non_string_input_gives_none() -> None:
    assert normalize(13800138000, AREA) is None  # type: ignore[arg-type]
    assert normalize(b"13800138000", AREA) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613800138000", "+86138******00"),
        ("13800138000", "138******00"),
        ("+869318123456", "+86931*****56"),
        ("+14155552671", "+141******71"),
        ("8123456", "812**56"),
        ("12349", "*****"),
        ("+8612349", "+86*****"),
        (None, "-"),
        ("", "-"),
        ("anonymous", "-"),
    ],
)
def test_mask_keeps_first_three_and_last_two_digits(number: str | None, masked: str) -> None:
    assert mask(number) == masked


def test_mask_never_leaks_middle_digits() -> None:
    masked = mask("0931-8123456")
    assert "8123" not in masked and masked.startswith("093") and masked.endswith("56")
    assert mask("x" * 10_000 + "1") == "-"  # only the first 64 characters are looked at


def test_national_forms_for_caller_id() -> None:
    assert national("+8613800138000") == "13800138000"
    assert national("+869318123456") == "09318123456"
    assert national("+14155552671") == "+14155552671"
    for raw in ("13800138000", "09318123456"):
        assert national(normalize(raw, AREA) or "") == raw


def test_mobile_or_landline() -> None:
    assert is_mobile("+8613800138000")
    assert not is_mobile("+869318123456")
    assert not is_mobile("garbage")


def test_a_number_after_the_trunk_0_checked_without_the_parser_reads_as_the_parser_reads_it(
) -> None:
    """Every area code's landlines of 7 and 8 digits, and a mobile after a trunk 0, whether
    the numbering plan holds them valid or not, normalise as the parser alone reads them;
    so does a local number completed with the area code."""
    subscribers = ("2345678", "81234567", "1234567", "61234567", "0000000", "99999999")
    for area in [f"{code}" for code in range(10, 100)] + [f"{code}" for code in range(300, 1000)]:
        for subscriber in subscribers:
            number = f"0{area}{subscriber}"
            assert normalize(number, "") == parsed(number), number
    for local, area in (("8123456", "0931"), ("62345678", "010"), ("65123456", "0371")):
        assert normalize(local, area) == parsed(f"0{area.lstrip('0')}{local}") is not None
    assert normalize("013800138000", "") == parsed("013800138000") == "+8613800138000"


def test_an_international_number_checked_without_the_parser_reads_as_the_parser_reads_it(
) -> None:
    """+86 and 0086 before every 1xx prefix of 11 digits and every area code's landlines
    (a national part that begins 0, 11, 12 or 179 included, which the parser may strip)
    normalise as the parser alone reads them."""
    parts = [f"1{prefix:02d}{suffix}" for prefix in range(100)
             for suffix in ("00138000", "12345678", "99999999")]
    parts += [f"{area}{subscriber}" for area in [*range(10, 100), *range(300, 1000)]
              for subscriber in ("2345678", "81234567", "0000000")]
    parts += ["013800138000", "17951138001380", "1193112345678"]
    for part in parts:
        for number in (f"+86{part}", f"0086{part}"):
            assert normalize(number, "0931") == parsed(number), number


def test_a_mobile_checked_without_the_parser_reads_as_the_parser_reads_it() -> None:
    """Every 11-digit number beginning with 1, whatever its next two digits (the ones a
    carrier code or an unallocated range begins with included), normalises as the parser
    alone reads it."""
    suffixes = ("00000000", "00138000", "12345678", "99999999", "55512340")
    for prefix in range(100):
        for suffix in suffixes:
            number = f"1{prefix:02d}{suffix}"
            assert normalize(number, "0931") == parsed(number), number
            assert normalize(f"{number[:3]}-{number[3:7]} {number[7:]}", "") == parsed(number)
