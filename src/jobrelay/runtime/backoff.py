"""Exponential backoff with full jitter: spreads retries so a recovering peer is not stampeded."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Delay before retry number `attempt` (1-based): uniform in [base, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return random.uniform(min(base, ceiling), ceiling) if ceiling > 0 else 0.0
