"""webhook outbox index: find pending and in-flight deliveries without scanning history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_open",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("outcome IN ('pending', 'sending')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_webhook_deliveries_open",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("outcome IN ('pending', 'sending')"),
    )
