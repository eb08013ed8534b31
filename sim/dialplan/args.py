"""Application argument splitting as Asterisk's AST_STANDARD_APP_ARGS does it."""

from __future__ import annotations


def split_args(data: str, delim: str = ",", remove_chars: bool = True) -> list[str]:
    """Split on ``delim`` outside quotes, parentheses and brackets.

    With ``remove_chars`` the double quotes and the backslashes of escapes are removed, as in
    ``__ast_app_separate_args(..., remove_chars=1)``. An empty string gives one empty argument.
    """
    args: list[str] = []
    cur: list[str] = []
    paren = bracket = 0
    quoted = escaped = False
    for ch in data:
        if escaped:
            cur.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            if not remove_chars:
                cur.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
            if not remove_chars:
                cur.append(ch)
            continue
        if not quoted:
            if ch == "(":
                paren += 1
            elif ch == ")" and paren:
                paren -= 1
            elif ch == "[":
                bracket += 1
            elif ch == "]" and bracket:
                bracket -= 1
            elif ch == delim and not paren and not bracket:
                args.append("".join(cur))
                cur = []
                continue
        cur.append(ch)
    args.append("".join(cur))
    return args


def split_once(text: str, sep: str) -> tuple[str, str | None]:
    """``strsep`` on the first ``sep``: (head, tail or None)."""
    head, found, tail = text.partition(sep)
    return head, (tail if found else None)


def split_top_level(text: str, sep: str = ":") -> tuple[str, str | None]:
    """Split at the first ``sep`` outside parentheses: (head, tail or None)."""
    depth = 0
    for idx, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            return text[:idx], text[idx + 1 :]
    return text, None
