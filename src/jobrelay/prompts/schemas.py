"""Input and result of `prompt.generate`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PromptInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manual_prompt: str = Field(
        min_length=1, max_length=20_000, json_schema_extra={"pattern": r"\S"}
    )

    @field_validator("manual_prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("manual_prompt must not be blank")
        return value


class PromptResult(BaseModel):
    prompt: str
    fallback: bool
    tokens_used: int
    model: str
