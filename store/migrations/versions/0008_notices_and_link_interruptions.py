"""one store of undelivered messages; a portal link counts its interrupted downloads

``teams_held_messages`` kept rendered approval cards (recipient, purpose, use limits) in
plain text, unpruned; messages a channel cannot deliver now go to ``held_notices`` (sealed,
pruned, dropped on decision), so the table goes, and with it what it held: plain text
that must not stay. ``portal_links.interrupted_downloads`` counts downloads the client
broke off, so a link can be locked after a few (see ``handlers.portal``).

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("teams_held_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_held_messages_user_id"))
    op.drop_table("teams_held_messages")
    with op.batch_alter_table("portal_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("interrupted_downloads", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("portal_links", schema=None) as batch_op:
        batch_op.drop_column("interrupted_downloads")
    op.create_table(
        "teams_held_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=True),
        sa.Column("activities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("teams_held_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_teams_held_messages_user_id"), ["user_id"],
                              unique=False)
