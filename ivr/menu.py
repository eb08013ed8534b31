"""The menu: one short level, 0 (or saying 转人工) reaches a human from anywhere.

1 to 3 order a service, 4 hears the service card's balances and then the menu again.

Every question is asked once in full; silence or a wrong key hears one short re-prompt
(``no_input``, ``invalid_input``: "please press again"), which listens for
``RETRY_TIMEOUT_MS``, and a second miss goes to a human.
"""

from __future__ import annotations

from enum import StrEnum

from dispatch.orders import ServiceType


class Choice(StrEnum):
    MEAL = "meal"
    HOUSEKEEPING = "housekeeping"
    HEALTH = "health"
    BALANCE = "balance"
    OPERATOR = "operator"
    EMERGENCY = "emergency"


MAIN_MENU_KEYS: dict[str, Choice] = {
    "1": Choice.MEAL,
    "2": Choice.HOUSEKEEPING,
    "3": Choice.HEALTH,
    "4": Choice.BALANCE,
    "0": Choice.OPERATOR,
    "9": Choice.EMERGENCY,
}
CONFIRM_KEY = "1"
RECHOOSE_KEY = "2"
OPERATOR_KEY = "0"
EMERGENCY_KEY = "9"
REPEAT_KEY = "*"  # after the order number's read-back: hear it again
RETRY_TIMEOUT_MS = 5000  # the wait for a key after the short re-prompt
ORDER_REPEAT_TIMEOUT_MS = 3000  # the wait for * after the order number
MAX_ORDER_REPEATS = 3

# Spoken answers become the key that means the same, so speech and keypad share one logic.
# The balance is keyed only (the spoken menu offers the services and the ways to a human).
MAIN_INTENT_KEYS: dict[str, str] = {choice.value: key for key, choice in MAIN_MENU_KEYS.items()
                                    if choice is not Choice.BALANCE}
CONFIRM_INTENT_KEYS: dict[str, str] = {
    "confirm_yes": CONFIRM_KEY,
    "confirm_no": RECHOOSE_KEY,
    "operator": OPERATOR_KEY,
    "emergency": EMERGENCY_KEY,
}

SERVICE_OF_CHOICE: dict[Choice, ServiceType] = {
    Choice.MEAL: ServiceType.MEAL,
    Choice.HOUSEKEEPING: ServiceType.HOUSEKEEPING,
    Choice.HEALTH: ServiceType.HEALTH,
}


def menu_escape_digits() -> str:
    """Digits that may interrupt the greeting and menu prompts."""
    return "".join(sorted(MAIN_MENU_KEYS))


def interpret_main(digits: str) -> Choice | None:
    """Map the keys an elder pressed at the main menu to a choice; None if not in the menu."""
    return MAIN_MENU_KEYS.get(digits.strip()[:1]) if digits.strip() else None


def main_choice(digits: str) -> ServiceType | Choice | None:
    """What a main-menu key asks for: the service it orders, ``Choice.BALANCE``, or None for
    0, 9 (handled at every question) and keys not in the menu."""
    choice = interpret_main(digits)
    if choice is Choice.BALANCE:
        return choice
    return SERVICE_OF_CHOICE.get(choice) if choice is not None else None
