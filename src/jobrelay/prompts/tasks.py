"""The `prompt.generate` job body: seven stored and streamed steps, tokens taken only on success."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from jobrelay.db import users as users_db
from jobrelay.kinds import JobContext, JobFailed, kind, runner_of
from jobrelay.prompts.demo import DEMO
from jobrelay.prompts.llm import AIError, Completion, fallback_prompt, make_model
from jobrelay.prompts.schemas import PromptInput, PromptResult
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.runtime.runner import insufficient_tokens
from jobrelay.users.service import subscription_active

logger = logging.getLogger(__name__)

STEP_INITIALIZING = (10, "Initializing AI generation...")
STEP_CHECKING_TOKENS = (30, "Checking tokens...")
STEP_GENERATING = (50, "Generating enhanced prompt with AI...")
STEP_WAITING = (70, "Waiting for AI response...")
STEP_FINALIZING = (90, "Finalizing...")
DONE_MESSAGE = "Prompt generated successfully"


async def _step(ctx: JobContext, step: tuple[int, str]) -> None:
    delay = ctx.settings.prompt_step_delay
    if delay:
        await asyncio.sleep(delay)
    await ctx.progress(*step)


async def _check_account(ctx: JobContext, cost: int) -> None:
    """The owner's account as the claim read it (or read now, for a context made by hand); the
    completion takes the tokens atomically, so this check only fails early."""
    owner: Any = ctx.owner
    if owner is None:
        async with ctx.connect() as conn:
            owner = await users_db.get_user(conn, ctx.user_id)
    now = dt.datetime.now(dt.UTC)
    if owner is None:
        raise JobFailed("user_not_found", "The job's owner no longer exists.")
    if not subscription_active(owner.subscription_expires_at, now):
        raise JobFailed(
            "subscription_expired",
            f"The subscription expired on {owner.subscription_expires_at:%Y-%m-%d}.",
        )
    if int(owner.tokens) < cost:
        raise insufficient_tokens(int(owner.tokens), cost)


async def _generate(ctx: JobContext, manual_prompt: str) -> tuple[Completion | None, str]:
    """Ask the model, retrying AI errors; None after the retries ran out. The text streams
    out as live output while it is written; a retry starts it over."""
    settings = ctx.settings
    model = make_model(ctx.http, settings)
    request = asyncio.create_task(model.enhance(manual_prompt, ctx.output))
    await _step(ctx, STEP_WAITING)
    last_error = ""
    for retry in range(settings.llm_retries + 1):
        if retry:
            await asyncio.sleep(backoff_delay(retry, base=0.5, cap=5.0))
            if ctx.output_text:
                await ctx.restart_output()
            request = asyncio.create_task(model.enhance(manual_prompt, ctx.output))
        try:
            return await request, model.name
        except AIError as exc:
            last_error = str(exc)
            logger.warning("job %s: AI error (try %d): %s", ctx.job_id, retry + 1, exc)
    logger.warning("job %s: AI failed %d times, using the fallback", ctx.job_id, retry + 1)
    return None, f"{model.name} ({last_error})" if last_error else model.name


@kind(
    "prompt.generate",
    input=PromptInput,
    start_progress=STEP_INITIALIZING[0],
    start_message=STEP_INITIALIZING[1],
    done_message=DONE_MESSAGE,
    schema_name="PromptJobCreate",
    demo=DEMO,
)
async def generate_prompt(ctx: JobContext, data: PromptInput) -> PromptResult:
    """AI prompt generation in the worker: the owner's tokens are taken only on success."""
    cost = ctx.settings.prompt_token_cost
    await _step(ctx, STEP_CHECKING_TOKENS)
    await _check_account(ctx, cost)
    await _step(ctx, STEP_GENERATING)
    completion, model_name = await _generate(ctx, data.manual_prompt)
    await _step(ctx, STEP_FINALIZING)
    if completion is None:
        prompt = fallback_prompt(data.manual_prompt)
        if ctx.output_text:
            await ctx.restart_output()
        await ctx.output(prompt)
        return PromptResult(
            prompt=prompt,
            fallback=True,
            tokens_used=0,
            model=model_name,
        )
    ctx.charge_tokens(cost)
    return PromptResult(
        prompt=completion.text, fallback=False, tokens_used=cost, model=completion.model
    )


RUNNER = runner_of(generate_prompt)
