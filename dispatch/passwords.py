"""Console passwords: argon2id hashes (argon2-cffi), never the password itself."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a
# wrong password and does not reveal which names exist.
_DUMMY_HASH = _HASHER.hash("no such account: the comparison runs all the same")


class PasswordError(ValueError):
    """A password too short or too long to be accepted."""


def check_strength(password: str) -> None:
    """Raise PasswordError unless ``password`` has MIN_LENGTH..MAX_LENGTH characters."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with ``password_hash`` None, False after a real check."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
