"""slack_inbox: acknowledged Slack messages under leases, in place of the per-process journal

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_inbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("slack_inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_inbox_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_slack_inbox_lease_until"), ["lease_until"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_inbox_lease_until"))
        batch_op.drop_index(batch_op.f("ix_slack_inbox_owner"))
    op.drop_table("slack_inbox")
