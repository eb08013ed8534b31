"""Reading posted forms: every field bounded, checked, and refused with a clear reason."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TypeVar

from starlette.datastructures import FormData
from starlette.requests import Request

MAX_FIELDS = 50
E = TypeVar("E")


class FormError(ValueError):
    """A field is missing, too long or malformed; the message names it."""


async def read_form(request: Request) -> FormData:
    """The posted url-encoded form (the CSRF middleware has checked its token and size)."""
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception as exc:  # python-multipart and Starlette raise several kinds
        raise FormError(f"the form could not be read: {exc}") from None


def text(form: FormData, name: str, limit: int, *, required: bool = True,
         multiline: bool = False) -> str | None:
    """A text field, stripped (line ends as "\n" where ``multiline``); None if absent or
    empty and not required."""
    values = form.getlist(name)
    if len(values) > 1:
        raise FormError(f"{name}: given more than once")
    value = values[0] if values else ""
    if not isinstance(value, str):
        raise FormError(f"{name}: not a text field")
    value = value.replace("\r\n", "\n").strip()
    if not value:
        if required:
            raise FormError(f"{name}: required")
        return None
    if len(value) > limit:
        raise FormError(f"{name}: at most {limit} characters")
    if any(_control(ch) and not (multiline and ch == "\n") for ch in value):
        raise FormError(f"{name}: contains control characters"
                        + ("" if multiline else " or line breaks"))
    return value


def _control(ch: str) -> bool:
    """Control, format, private-use or unassigned characters, and line separators (spaces of
    every kind, the ideographic one included, are fine)."""
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")


def integer(form: FormData, name: str, *, low: int = 1, high: int = 2**31 - 1) -> int:
    raw = text(form, name, 12)
    assert raw is not None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise FormError(f"{name}: a whole number from {low} to {high}")
    return int(raw)


def choice(form: FormData, name: str, allowed: Iterable[E]) -> E:
    raw = text(form, name, 64)
    for option in allowed:
        if str(option) == raw:
            return option
    raise FormError(f"{name}: not one of the offered choices")
