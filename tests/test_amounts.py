"""Numbers and money as Mandarin says them (pure logic: the names of the prompts to play)."""

from __future__ import annotations

import pytest

from ivr.amounts import LARGEST, money_words, number_words

SAY = {"digit_0": "零", "digit_1": "一", "digit_2": "二", "digit_3": "三", "digit_4": "四",
       "digit_5": "五", "digit_6": "六", "digit_7": "七", "digit_8": "八", "digit_9": "九",
       "ten": "十", "hundred": "百", "thousand": "千", "ten_thousand": "万", "liang": "两",
       "yuan": "元", "jiao": "角", "fen": "分"}


def said(names: list[str]) -> str:
    return "".join(SAY[name] for name in names)


@pytest.mark.parametrize(("value", "words"), [
    (0, "零"), (1, "一"), (2, "二"), (10, "十"), (15, "十五"), (20, "二十"), (25, "二十五"),
    (100, "一百"), (101, "一百零一"), (110, "一百一十"), (200, "两百"), (222, "两百二十二"),
    (1005, "一千零五"), (1050, "一千零五十"), (1500, "一千五百"), (2000, "两千"),
    (9999, "九千九百九十九"), (10000, "一万"), (10010, "一万零一十"), (10500, "一万零五百"),
    (12000, "一万两千"), (20000, "两万"), (120000, "十二万"), (1_000_001, "一百万零一"),
    (LARGEST, "九千九百九十九万九千九百九十九"),
])
def test_numbers_are_said_as_mandarin_counts_them(value: int, words: str) -> None:
    assert said(number_words(value)) == words


def test_a_lone_two_before_a_measure_word_is_liang() -> None:
    assert said(number_words(2, counted=True)) == "两"
    assert said(number_words(12, counted=True)) == "十二"


@pytest.mark.parametrize(("fen", "words"), [
    (0, "零元"), (5, "五分"), (20, "两角"), (25, "两角五分"), (100, "一元"), (200, "两元"),
    (1230, "十二元三角"), (12_305, "一百二十三元零五分"), (12_350, "一百二十三元五角"),
    (30_000, "三百元"), (1_000_000, "一万元"), (123_456_78, "十二万三千四百五十六元七角八分"),
])
def test_money_is_said_in_yuan_jiao_and_fen(fen: int, words: str) -> None:
    assert said(money_words(fen)) == words


@pytest.mark.parametrize("value", [-1, LARGEST + 1])
def test_numbers_out_of_range_are_refused(value: int) -> None:
    with pytest.raises(ValueError):
        number_words(value)


def test_a_negative_sum_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        money_words(-1)
