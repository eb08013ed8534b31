"""Chinese phone numbers: normalisation to E.164 and masking for logs.

Rules of :func:`normalize` (region CN, libphonenumber metadata):

* mobiles with or without ``+86``, ``0086``, ``86`` or a trunk ``0``, with any spaces,
  dashes, dots, parentheses or full-width digits: ``+8613800138000``;
* landlines with their area code (``0931-8123456``, ``09318123456``, ``+86 931 8123456``):
  ``+869318123456``;
* a local landline without area code (7 or 8 digits, not starting with 0 or 1) gets the
  configured local area code: ``8123456`` -> ``+869318123456``;
* one-key handset lines are ordinary mobile or landline numbers;
* recognised Chinese short/service numbers (12349, 110, 95588, 10086...) are kept as
  ``+86`` plus the short number, e.g. ``+8612349``, so call records show them; they never
  match the registry, so such a caller is treated as unknown;
* anything else (withheld markers such as ``anonymous``/``Restricted``, empty, letters,
  numbers that are not valid Chinese or international numbers) gives ``None``.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    shortnumberinfo,
)

REGION = "CN"
MAX_RAW_LENGTH = 64
WITHHELD_MARKERS = frozenset(
    {
        "",
        "anonymous",
        "unknown",
        "<unknown>",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "blocked",
        "none",
        "null",
    }
)
_SEPARATORS = str.maketrans("", "", " \t-.()/")
_DIALABLE = re.compile(r"\+?[0-9]{3,20}")
_AREA_CODE = re.compile(r"0?([1-9][0-9]{1,3})")
_LOCAL_NUMBER = re.compile(r"[2-9][0-9]{6,7}")
# A mainland mobile as a caller ID shows it: the parser would take it as it is (no national
# prefix or carrier code of CN's to strip: those begin 0, 11, 12 or 179), so it is checked
# without parsing (parsing is most of a lookup's cost: about 45 µs of every call).
_MOBILE = re.compile(r"1(?:[3-689][0-9]|7[0-8])[0-9]{8}")
# A landline (or a mobile) after the trunk prefix 0: the parser strips that 0 from any
# number that is valid without it, so a number valid without it is read the same unparsed.
_TRUNK_NATIONAL = re.compile(r"0[1-9][0-9]{8,10}")
# A number in international form (+86 or 0086, as E.164 caller IDs and the registry write
# it) whose national part could not begin with a national prefix or carrier code of CN's:
# the parser would strip nothing from it.
_INTERNATIONAL = re.compile(r"(?:\+|00)86((?!0|1[12]|179)[1-9][0-9]{8,11})")


def _area(local_area_code: str) -> str | None:
    match = _AREA_CODE.fullmatch(local_area_code.strip()) if local_area_code else None
    return match.group(1) if match else None


def normalize(raw: str | None, local_area_code: str) -> str | None:
    """E.164 form of a caller number, or ``None`` when there is no usable number."""
    if not isinstance(raw, str) or len(raw) > MAX_RAW_LENGTH:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower() in WITHHELD_MARKERS:
        return None
    compact = text.translate(_SEPARATORS)
    if not _DIALABLE.fullmatch(compact):
        return None
    if _MOBILE.fullmatch(compact) and _valid_national(compact):
        return f"+86{compact}"
    international = _INTERNATIONAL.fullmatch(compact)
    if international and _valid_national(international.group(1)):
        return f"+86{international.group(1)}"
    area = _area(local_area_code)
    if area and _LOCAL_NUMBER.fullmatch(compact):
        compact = f"0{area}{compact}"
    if _TRUNK_NATIONAL.fullmatch(compact) and _valid_national(compact[1:]):
        return f"+86{compact[1:]}"
    return parsed(compact)


def _valid_national(national: str) -> bool:
    """A mainland national number (no prefix) the numbering plan holds valid."""
    return bool(phonenumbers.is_valid_number(
        PhoneNumber(country_code=86, national_number=int(national))))


def parsed(compact: str) -> str | None:
    """E.164 form of a dialable string (digits, perhaps a leading +), by the parser."""
    try:
        number = phonenumbers.parse(compact, REGION)
    except NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if number.country_code == 86 and shortnumberinfo.is_valid_short_number_for_region(
        number, REGION
    ):
        return f"+86{number.national_number}"
    return None


def national(number_e164: str) -> str:
    """The digits a Chinese caller ID shows: ``13800138000`` or ``09318123456``."""
    number = phonenumbers.parse(number_e164, REGION)
    if number.country_code != 86:
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    digits = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return re.sub(r"[^0-9]", "", digits)


def is_mobile(number_e164: str) -> bool:
    """True for a mobile number (else a landline or other fixed line)."""
    try:
        number = phonenumbers.parse(number_e164, REGION)
    except NumberParseException:
        return False
    return phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def mask(number: str | None) -> str:
    """Log-safe form: keeps the first 3 and last 2 digits (after +86), e.g. +86138******00.

    Numbers of 5 digits or fewer are fully masked; input without digits gives ``-``.
    """
    if not number:
        return "-"
    text = str(number)[:MAX_RAW_LENGTH]
    prefix = ""
    if text.startswith("+86"):
        prefix, text = "+86", text[3:]
    elif text.startswith("+"):
        prefix = "+"
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    if not digits:
        return "-"
    if len(digits) <= 5:
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[:3]}{'*' * (len(digits) - 5)}{digits[-2:]}"
