"""outbox: a relay's lease on an email in real time, apart from when it is due

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:00:00.000000

A relay leased the email it was about to send by moving its next_attempt_at on, in the
clock's time. With the test clock, a day's jump (the demo's "+1 day", `fairsub clock
advance`) ended every lease at once, and another relay sent email the first was still
sending. The lease is now leased_until, in real time; next_attempt_at keeps the clock's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fairsub.adapters.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "leased_until", fairsub.adapters.db.types.UtcDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("leased_until")
