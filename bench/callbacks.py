"""Callbacks: a generator's signed result callback with 100 questions, timed to its `201`.

Quiz jobs are submitted through the API and put in `processing` with a generator task id, as a
worker's hand-off leaves them; each then gets one result callback in the original AI worker's
form, built by the reference generator's question builder and signed with Standard Webhooks.
One client sends them one after another, so the figure is the latency of one callback: verify
the signature, validate 100 questions, store them in bulk, complete the job, audit the call.
"""

from __future__ import annotations

import json

import httpx

from bench import httpload
from bench.context import Context
from bench.report import Row
from bench.stack import stack
from jobrelay.generator.questions import build_questions
from jobrelay.quizzes.schemas import QuizInput
from jobrelay.signing import sign_now

QUESTIONS = 100
P50_TARGET_MS = 20.0
QUIZ_INPUT = {
    "quiz_size": QUESTIONS,
    "declared_level": "Intermediate",
    "goals": "job",
    "profession": "software engineer",
    "referred_frequency": "daily",
    "motivation_level": 7,
    "preferred_topics": ["code review", "meetings"],
    "weak_skills": ["prepositions", "articles"],
    "extra_instructions": "",
}


async def run(ctx: Context) -> list[Row]:
    count = ctx.size(300, 20)
    warm = 10
    async with stack(ctx.template) as s:
        assert s.admin is not None
        api = s.start_api()
        secret = s.settings.generator_secret
        async with httpx.AsyncClient(
            base_url=api.url, headers={"authorization": f"Bearer {s.admin.key}"}, timeout=30
        ) as client:
            job_ids = []
            for _ in range(count + warm):
                response = await client.post(
                    "/v1/jobs", json={"kind": "quiz.generate", "input": QUIZ_INPUT}
                )
                assert response.status_code == 202, response.text
                job_ids.append(response.json()["id"])
        conn = await s.connect()
        try:
            await conn.execute(
                "UPDATE jobs SET status = 'processing', attempts = 1, started_at = now(), "
                "progress = 10, external_id = 'gen-' || id, lease_expires_at = NULL "
                "WHERE kind = 'quiz.generate'"
            )
        finally:
            await conn.close()
        questions = build_questions(QuizInput.model_validate(QUIZ_INPUT))
        port = api.port or 0
        prebuilt = []
        for job_id in job_ids:
            body = json.dumps(
                {
                    "worker_task_id": f"gen-{job_id}",
                    "user_id": s.admin.id,
                    "questions": questions,
                    "meta": {"processing_time_sec": 3.2, "total_processed": QUESTIONS},
                }
            ).encode()
            prebuilt.append(
                httpload.request_bytes(
                    "POST",
                    f"/v1/callbacks/{job_id}",
                    port=port,
                    headers=sign_now(secret, body),
                    body=body,
                )
            )
        await httpload.run(port, lambda n: prebuilt[n], connections=1, total=warm)
        result = await httpload.run(
            port, lambda n: prebuilt[warm + n], connections=1, total=count, keep_bodies=True
        )
        saved = {json.loads(b).get("saved") for b in result.bodies}
        ctx.log(
            f"callbacks: p50 {result.p50:.1f} ms p99 {result.p99:.1f} ms, "
            f"statuses {dict(result.statuses)}, saved {saved}"
        )
    bad = result.unexpected([201])
    return [
        Row(
            "callbacks",
            f"result with {QUESTIONS} questions, p50",
            result.p50,
            "ms",
            target=f"< {P50_TARGET_MS:.0f} ms",
            met=result.p50 < P50_TARGET_MS and not bad and saved == {QUESTIONS},
            note=f"unexpected statuses {bad}" if bad else "",
        ),
        Row("callbacks", f"result with {QUESTIONS} questions, p99", result.p99, "ms"),
    ]
