"""What to do after an outbound call's outcome: call the same party again later, or move on.

Pure logic: the rules come from configuration, the randomness from the caller, so the same
decision is reproducible in tests and across engines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from dispatch.models import OfferOutcome

# Originate reasons (Asterisk's OriginateResponse ``Reason``) for calls that were not answered:
# 1 is the far end hanging up while it rang (rejected); "hangup" is reserved for a vendor who
# hangs up in the middle of the offer, which only the offer flow can see.
REASON_OUTCOMES = {0: OfferOutcome.FAILED, 1: OfferOutcome.REJECTED, 3: OfferOutcome.NO_ANSWER,
                   5: OfferOutcome.BUSY, 8: OfferOutcome.CONGESTION}


class Rule(Protocol):
    tries: int
    backoff_s: float
    factor: float


@dataclass(frozen=True)
class Decision:
    """``retry_same``: call the same party again ``delay_s`` from now; otherwise move on."""

    retry_same: bool
    delay_s: float = 0.0


def outcome_of_reason(reason: int) -> OfferOutcome:
    """The outcome of an unanswered Originate's reason code."""
    return REASON_OUTCOMES.get(reason, OfferOutcome.FAILED)


def backoff(rule: Rule, tries_done: int, jitter: float, rng: random.Random) -> float:
    """Seconds before try number ``tries_done + 1``: exponential, spread by +-``jitter``."""
    base = rule.backoff_s * rule.factor ** max(0, tries_done - 1)
    return max(0.0, base * (1.0 + rng.uniform(-jitter, jitter)))


def decide(outcome: str, tries_done: int, rules: dict[str, Rule], jitter: float,
           rng: random.Random) -> Decision:
    """After ``tries_done`` calls of one party ended with ``outcome``: again, or the next one.

    An outcome without a rule (a new Asterisk reason, say) moves on at once: never a loop.
    """
    rule = rules.get(outcome)
    if rule is None or tries_done >= rule.tries:
        return Decision(retry_same=False)
    return Decision(retry_same=True, delay_s=backoff(rule, tries_done, jitter, rng))
