"""The rows a prompt job writes, as SQL for the drain baselines written by hand (asyncpg's
$n placeholders; the Celery baseline turns them into psycopg's)."""

STEPS = ((30, "Checking tokens..."), (50, "Generating enhanced prompt with AI..."),
         (70, "Waiting for AI response..."), (90, "Finalizing..."))  # fmt: skip
CLAIM = """
UPDATE jobs SET status = 'processing', attempts = attempts + 1, progress = 10,
    message = 'Initializing AI generation...', started_at = coalesce(started_at, now()),
    lease_expires_at = now() + interval '30 seconds', updated_at = now()
WHERE id = $1 AND status = 'queued'
RETURNING id, user_id, input, attempts
"""
STEP = """
UPDATE jobs SET progress = greatest(progress, $2), message = $3, updated_at = now()
WHERE id = $1 AND attempts = $4
"""
EVENT = """
INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id, at
"""
COMPLETE = """
UPDATE jobs SET status = 'completed', progress = 100, message = 'Prompt generated successfully',
    result = $2::jsonb, completed_at = now(), lease_expires_at = NULL, updated_at = now()
WHERE id = $1 AND attempts = $3
"""
CHARGE = "UPDATE users SET tokens = tokens - $2 WHERE id = $1 AND tokens >= $2"
