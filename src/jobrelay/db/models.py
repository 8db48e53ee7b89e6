"""Tables. Queries use these through SQLAlchemy Core (`Model.__table__`) on hot paths."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from jobrelay.db.base import Base

TIMESTAMP = DateTime(timezone=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role"),
        CheckConstraint("tokens >= 0", name="tokens_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), server_default="user")
    tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    subscription_expires_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)
    webhook_secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'processing', 'completed', 'failed', 'canceled')", name="status"
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        Index("ix_jobs_user_id_created_at", "user_id", text("created_at DESC"), text("id DESC")),
        Index("ix_jobs_status_created_at", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_jobs_kind_status_created_at", "kind", "status", text("created_at DESC")),
        Index("ix_jobs_created_at", text("created_at DESC"), text("id DESC")),
        Index(
            "ix_jobs_user_id_idempotency_key",
            "user_id",
            "idempotency_key",
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "ix_jobs_external_id", "external_id", postgresql_where=text("external_id IS NOT NULL")
        ),
        Index(
            "ix_jobs_active",
            "status",
            "user_id",
            postgresql_where=text("status IN ('queued', 'processing')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    progress: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    message: Mapped[str] = mapped_column(Text, server_default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    input: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="3")
    external_id: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    webhook: Mapped[str | None] = mapped_column(Text)
    webhook_events_filter: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), server_default="{completed}"
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    deadline_seconds: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)
    parked: Mapped[bool] = mapped_column(Boolean, server_default="false")
    submitted_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)
    completed_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(SmallInteger)
    message: Mapped[str] = mapped_column(Text, server_default="")
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Question(Base):
    """Kept after the job is purged: questions belong to the user's quiz history."""

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        Index("ix_questions_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="SET NULL")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sentence: Mapped[str] = mapped_column(Text)
    option_a: Mapped[str] = mapped_column(Text)
    option_b: Mapped[str] = mapped_column(Text)
    option_c: Mapped[str] = mapped_column(Text)
    option_d: Mapped[str] = mapped_column(Text)
    correct_answer: Mapped[str] = mapped_column(String(1))
    explanation: Mapped[str] = mapped_column(Text, server_default="")
    type: Mapped[str] = mapped_column(String(64), server_default="")
    difficulty: Mapped[str] = mapped_column(String(64), server_default="")
    score: Mapped[float] = mapped_column(Float, server_default="0")
    context: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Callback(Base):
    """Every callback a generator sent, accepted or not, for audit and replay detection."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_job_id_received_at", "job_id", "received_at"),
        Index(
            "uq_callbacks_webhook_id_applied",
            "webhook_id",
            unique=True,
            postgresql_where=text("webhook_id IS NOT NULL AND applied"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="SET NULL")
    )
    route: Mapped[str] = mapped_column(String(200))
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32), server_default="")
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    applied: Mapped[bool] = mapped_column(Boolean, server_default="false")
    received_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Student(Base):
    """Kept after the ingesting job is purged."""

    __tablename__ = "students"

    student_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    grade: Mapped[int] = mapped_column(SmallInteger)
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    school_id: Mapped[str] = mapped_column(String(64))
    last_job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class WebhookDelivery(Base):
    """One row per outgoing webhook attempt; retries share `webhook_id`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "attempt"),
        Index("ix_webhook_deliveries_job_id_id", "job_id", "id"),
        Index(
            "ix_webhook_deliveries_open",
            "next_attempt_at",
            postgresql_where=text("outcome IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE")
    )
    webhook_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempted_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP)


class DailyStat(Base):
    __tablename__ = "daily_stats"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    p50_seconds: Mapped[float | None] = mapped_column(Float)
    p95_seconds: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class ServiceCheck(Base):
    """Latest result of a periodic health check of a peer (the generator)."""

    __tablename__ = "service_checks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, server_default="")
    checked_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, server_default=func.now())


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


jobs_table = _table(Job)
job_events_table = _table(JobEvent)
users_table = _table(User)
api_keys_table = _table(ApiKey)
questions_table = _table(Question)
callbacks_table = _table(Callback)
students_table = _table(Student)
webhook_deliveries_table = _table(WebhookDelivery)
daily_stats_table = _table(DailyStat)
service_checks_table = _table(ServiceCheck)
