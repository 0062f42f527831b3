"""held notices: messages kept for a person the bot could not reach

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_notices_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_notices_reference"), ["reference"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_held_notices_created_at"), ["created_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_notices_created_at"))
        batch_op.drop_index(batch_op.f("ix_held_notices_reference"))
        batch_op.drop_index(batch_op.f("ix_held_notices_user_id"))
    op.drop_table("held_notices")
