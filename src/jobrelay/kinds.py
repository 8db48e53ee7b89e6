"""What the API knows of each job kind: its input schema and its default deadline."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from jobrelay.config import Settings
from jobrelay.ingestion.schemas import IngestInput
from jobrelay.prompts.schemas import PromptInput
from jobrelay.quizzes.schemas import QuizInput


@dataclass(frozen=True)
class KindInfo:
    input_model: type[BaseModel]

    def default_deadline(self, kind: str, settings: Settings) -> int:
        if kind == "quiz.generate":
            return settings.quiz_deadline_seconds
        return settings.job_deadline_seconds


KINDS: dict[str, KindInfo] = {
    "prompt.generate": KindInfo(PromptInput),
    "quiz.generate": KindInfo(QuizInput),
    "records.ingest": KindInfo(IngestInput),
}
