"""Two example job kinds, installed as a package with a `jobrelay.kinds` entry point.

- `video.caption` (queue `default`): a caption for a video, with progress steps; a URL that is
  not https fails the job with `bad_url`.
- `video.transcribe` (queue `gpu`): a transcript, served by `jobrelay worker --queue gpu`.

The "work" is deterministic text made from the URL, after `seconds` of pretend effort, so the
example runs anywhere; a real kind would download the video and run a model here.
"""

from __future__ import annotations

import asyncio
import hashlib

from pydantic import BaseModel, ConfigDict, Field

from jobrelay import JobContext, JobFailed, kind

__all__ = ["CaptionInput", "TranscribeInput", "Transcript", "caption", "transcribe"]

WORDS = ["a", "calm", "river", "bends", "past", "old", "mills", "at", "dawn", "while", "birds"]


class CaptionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="The video, an https URL.")
    language: str = Field(default="en", min_length=2, max_length=8)
    seconds: float = Field(default=0.0, ge=0, le=60, description="Pretend work, in seconds.")


class TranscribeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    seconds: float = Field(default=0.0, ge=0, le=60)


class Transcript(BaseModel):
    text: str
    segments: int
    worker_queue: str = "gpu"


def _words(url: str, count: int) -> str:
    digest = hashlib.sha256(url.encode()).digest()
    return " ".join(WORDS[byte % len(WORDS)] for byte in digest[:count])


async def _work(seconds: float) -> None:
    if seconds:
        await asyncio.sleep(seconds)


@kind("video.caption", input=CaptionInput, deadline_seconds=600)
async def caption(ctx: JobContext, data: CaptionInput) -> dict[str, object]:
    """A one-line caption for a video."""
    await ctx.progress(20, "Downloading")
    if not data.url.startswith("https://"):
        raise JobFailed("bad_url", "Only https URLs are supported.")
    await _work(data.seconds / 2)
    await ctx.progress(60, "Listening", data={"language": data.language})
    await _work(data.seconds / 2)
    await ctx.progress(90, "Writing the caption")
    return {"caption": _words(data.url, 6).capitalize() + ".", "language": data.language}


@kind("video.transcribe", input=TranscribeInput, queue="gpu", deadline_seconds=1800)
async def transcribe(ctx: JobContext, data: TranscribeInput) -> Transcript:
    """A transcript of a video, on the gpu queue."""
    await ctx.progress(10, "Loading the model")
    await _work(data.seconds)
    await ctx.progress(80, "Transcribing")
    return Transcript(text=_words(data.url, 12), segments=3)
