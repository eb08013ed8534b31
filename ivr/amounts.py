"""Numbers and sums of money as Mandarin speaks them, as the prompt names that say them.

``number_words(1205)`` is 一千二百零五 (``digit_1 thousand digit_2 hundred digit_0 digit_5``),
``money_words(12_350)`` is 一百二十三元五角. Before 百, 千 and 万, and as a whole count of a
measure word (两元, 两角), 2 is said 两. A run of zeros inside a number is one 零; zeros at its
end are not said. Pure functions: the prompt names are those of the catalogue.
"""

from __future__ import annotations

TEN, HUNDRED, THOUSAND, TEN_THOUSAND = "ten", "hundred", "thousand", "ten_thousand"
TWO_OF = "liang"  # 两
YUAN, JIAO, FEN = "yuan", "jiao", "fen"
ZERO = "digit_0"
LARGEST = 99_999_999  # 九千九百九十九万...: above it, a number is read digit by digit
UNIT_PROMPTS = (TEN, HUNDRED, THOUSAND, TEN_THOUSAND, TWO_OF)
MONEY_PROMPTS = (YUAN, JIAO, FEN)
_PLACES = ((1000, THOUSAND), (100, HUNDRED), (10, TEN), (1, None))


def _digit(digit: int, unit: str | None) -> str:
    return TWO_OF if digit == 2 and unit in (HUNDRED, THOUSAND) else f"digit_{digit}"


def _below_ten_thousand(value: int, leading: bool) -> list[str]:
    """1..9999; ``leading``: the number starts here (一十五 is said 十五 only there)."""
    names: list[str] = []
    zero_pending = False
    for power, unit in _PLACES:
        digit = value // power % 10
        if digit == 0:
            zero_pending = bool(names)
            continue
        if zero_pending:
            names.append(ZERO)
            zero_pending = False
        if unit == TEN and digit == 1 and leading and not names:
            names.append(TEN)
            continue
        names.append(_digit(digit, unit))
        if unit is not None:
            names.append(unit)
    return names


def number_words(value: int, *, counted: bool = False) -> list[str]:
    """The prompt names that say ``value`` (0..LARGEST); ``counted``: a count before a
    measure word, where a lone 2 is 两. ValueError outside that range."""
    if not 0 <= value <= LARGEST:
        raise ValueError(f"{value} is outside 0..{LARGEST}")
    if value == 0:
        return [ZERO]
    if value == 2 and counted:
        return [TWO_OF]
    high, low = divmod(value, 10_000)
    if not high:
        return _below_ten_thousand(low, leading=True)
    names = [TWO_OF] if high == 2 else _below_ten_thousand(high, leading=True)
    names.append(TEN_THOUSAND)
    if low:
        if low < 1000:
            names.append(ZERO)
        names.extend(_below_ten_thousand(low, leading=False))
    return names


def money_words(fen: int) -> list[str]:
    """The prompt names that say a sum of ``fen`` (at least 0) in 元, 角 and 分: 12,305 fen is
    一百二十三元零五分, 0 is 零元. ValueError for a negative sum or one above LARGEST yuan."""
    if fen < 0:
        raise ValueError(f"a sum to read cannot be negative: {fen} fen")
    yuan, rest = divmod(fen, 100)
    jiao, cents = divmod(rest, 10)
    names: list[str] = []
    if yuan or not rest:
        names += [*number_words(yuan, counted=True), YUAN]
    if jiao:
        names += [*number_words(jiao, counted=True), JIAO]
    if cents:
        if names and not jiao:
            names.append(ZERO)
        names += [*number_words(cents, counted=True), FEN]
    return names
