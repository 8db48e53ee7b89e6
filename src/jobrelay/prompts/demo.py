"""Demo `prompt.generate` jobs for `jobrelay db seed`."""

from __future__ import annotations

import random
from typing import Any

from jobrelay.kinds.demo import Demo

__all__ = ["DEMO"]

_TOPICS = ["photosynthesis", "compound interest", "the water cycle", "binary search"]


def _input(label: str, rng: random.Random) -> dict[str, Any]:
    return {"manual_prompt": f"Explain {rng.choice(_TOPICS)} to a ten year old (#{label})"}


def _result(job: dict[str, Any], seconds: float) -> dict[str, Any]:
    topic = job["input"]["manual_prompt"]
    return {
        "prompt": f"You are a patient teacher. {topic}. Use one everyday example.",
        "fallback": False,
        "tokens_used": 700,
        "model": "offline",
    }


DEMO = Demo(
    inputs=_input,
    steps=[
        (30, "Checking tokens..."),
        (50, "Generating enhanced prompt with AI..."),
        (70, "Waiting for AI response..."),
        (90, "Finalizing..."),
    ],
    run_seconds=(2, 9),
    result=_result,
    failure=("insufficient_tokens", "This generation costs 700 tokens and the balance is 0."),
    done_message="Prompt generated successfully",
)
