"""Contact ID parsing: fields, checksum, notations, and clear errors for every defect."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.contact_id import (
    ContactIdError,
    Notation,
    Qualifier,
    checksum_digit,
    encode,
    parse,
)
from sim.alarm_box import BoxEvent, message

HEX_DIGITS = "1234567890BCDEF"
DTMF_DIGITS = "1234567890*#ABC"
VALUE = {ch: i + 1 for i, ch in enumerate(HEX_DIGITS)}


def test_the_documented_example() -> None:
    msg = parse("1234181101010151")
    assert (msg.account, msg.message_type, msg.qualifier, msg.code, msg.partition, msg.zone,
            msg.checksum) == ("1234", "18", Qualifier.NEW, "101", "01", "015", "1")
    assert msg.text == "1234181101010151"
    assert not msg.is_restore


def test_restore_and_still_present_qualifiers_and_type_98() -> None:
    restore = parse(encode("4321", "101", qualifier=Qualifier.RESTORE, message_type="98"))
    assert restore.is_restore and restore.message_type == "98"
    assert parse(encode("4321", "641", qualifier=Qualifier.STILL_PRESENT)).qualifier is (
        Qualifier.STILL_PRESENT)


def test_zero_counts_ten_and_remainder_zero_gives_the_fifteen_digit() -> None:
    # 0000 18 1 000 00 000: twelve zeros (120) + 1+8+1 = 130 -> 5 completes 135
    assert checksum_digit("000018100000000") == "5"
    # 1234 18 1 101 01 016: sum 60 already -> the digit must be 15 (F, DTMF C)
    assert checksum_digit("123418110101016") == "F"
    assert checksum_digit("123418110101016", Notation.DTMF) == "C"
    assert parse("123418110101016C").zone == "016"
    assert parse("123418110101016F", Notation.HEX).checksum == "F"


@pytest.mark.parametrize(("text", "needle"), [
    ("123418110101015", "16 digits, got 15"),
    ("12341811010101511", "16 digits, got 17"),
    ("", "16 digits, got 0"),
    ("1234181101010152", "bad checksum"),
    ("12341811010101X1", "invalid character 'X' at position 15"),
    ("123418110101 151", "invalid character ' '"),
    ("1234181101010151".replace("1", "١", 1), "invalid character"),  # Arabic-Indic one
    ("1234171101010152", "bad message type '17'"),
    ("123418210101015C", "bad qualifier '2'"),
])
def test_defects_are_named(text: str, needle: str) -> None:
    with pytest.raises(ContactIdError, match=needle):
        parse(text)


def test_hex_notation_refuses_dtmf_symbols_and_a() -> None:
    with pytest.raises(ContactIdError, match="hex notation uses 0-9 and B-F"):
        parse("12*4181101010013", Notation.HEX)
    with pytest.raises(ContactIdError, match="invalid character 'A'"):
        parse("1A34181101010150", Notation.HEX)
    with pytest.raises(ContactIdError, match="dtmf notation"):
        parse("12D4181101010013", Notation.DTMF)


def test_non_text_is_refused() -> None:
    with pytest.raises(ContactIdError, match="must be text"):
        parse(b"1234181101010151")  # type: ignore[arg-type]


def test_dtmf_symbols_are_hex_digits_eleven_to_fifteen() -> None:
    dtmf = encode("BCDE", "101", notation=Notation.DTMF)
    assert dtmf.startswith("*#AB")
    assert parse(dtmf).account == "BCDE"
    assert parse(dtmf).text == encode("BCDE", "101")


def test_simulator_messages_are_what_the_parser_reads() -> None:
    assert message("1234", BoxEvent("101", zone="015")) == "1234181101010151"
    for account, code in (("BF12", "602"), ("0000", "384"), ("9999", "1C0")):
        assert parse(message(account, BoxEvent(code, qualifier=3))).account == account


body_fields = st.tuples(
    st.text(HEX_DIGITS, min_size=4, max_size=4),
    st.sampled_from(list(Qualifier)),
    st.text(HEX_DIGITS, min_size=3, max_size=3),
    st.text(HEX_DIGITS, min_size=2, max_size=2),
    st.text(HEX_DIGITS, min_size=3, max_size=3),
    st.sampled_from(["18", "98"]),
)


@settings(max_examples=300, deadline=None, database=None)
@given(body_fields)
def test_encode_then_parse_round_trips(fields) -> None:
    account, qualifier, code, partition, zone, mtype = fields
    for notation in Notation:
        text = encode(account, code, qualifier=qualifier, partition=partition, zone=zone,
                      message_type=mtype, notation=notation)
        msg = parse(text, notation)
        assert (msg.account, msg.qualifier, msg.code, msg.partition, msg.zone,
                msg.message_type) == (account, qualifier, code, partition, zone, mtype)
        assert sum(VALUE[ch] for ch in msg.text) % 15 == 0


@settings(max_examples=300, deadline=None, database=None)
@given(body_fields, st.integers(0, 15), st.sampled_from(HEX_DIGITS))
def test_every_single_digit_change_is_caught(fields, position, replacement) -> None:
    account, qualifier, code, partition, zone, mtype = fields
    good = encode(account, code, qualifier=qualifier, partition=partition, zone=zone,
                  message_type=mtype)
    if good[position] == replacement:
        return
    bad = good[:position] + replacement + good[position + 1:]
    with pytest.raises(ContactIdError):
        parse(bad, Notation.HEX)


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_contact_id_error(text) -> None:
    for notation in Notation:
        try:
            msg = parse(text, notation)
        except ContactIdError as exc:
            assert str(exc)
        else:
            assert len(msg.text) == 16


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(DTMF_DIGITS, min_size=16, max_size=16))
def test_dtmf_strings_are_valid_exactly_when_the_rules_hold(text) -> None:
    values = [DTMF_DIGITS.index(ch) + 1 for ch in text]
    valid = (sum(values) % 15 == 0 and text[4:6] in ("18", "98") and text[6] in "136")
    try:
        parse(text)
    except ContactIdError:
        assert not valid
    else:
        assert valid
