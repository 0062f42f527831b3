"""Reported mistakes: incidents with their ICO decision deadline (issue 14).

One row per transfer on which a mistake was reported (``mistake REF``): when it was found
(``opened_at``), who reported it, the 72-hour deadline for deciding whether to report it to
the ICO, its status, as JSON what had reached the recipient, and the decision that closes
it (when, by whom, reported to the ICO or not, the ICO's case reference, why). No foreign
key to ``transfers``: the incident is kept on its own retention period.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_by", sa.String(length=200), nullable=False),
        sa.Column("ico_decision_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("ico_decision", sa.String(length=20), nullable=True),
        sa.Column("ico_reference", sa.String(length=100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_opened_at"), ["opened_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_opened_at"))
    op.drop_table("incidents")
