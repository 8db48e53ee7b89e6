"""A kind of the tests' own (loaded with JOBRELAY_KINDS) that writes live output through the
public `JobContext.output`, and whose first attempt falls over after writing some."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from jobrelay import JobContext, kind


class StoryInput(BaseModel):
    words: int = 8
    pause: float = 0.05


@kind("test.story", input=StoryInput)
async def story(ctx: JobContext, data: StoryInput) -> dict[str, int]:
    for number in range(data.words):
        await ctx.output(f"attempt{ctx.attempt}-word{number} ")
        await asyncio.sleep(data.pause)
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt falls over")
    return {"words": data.words}
