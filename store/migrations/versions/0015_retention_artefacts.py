"""Retention per artefact: indexes for the sweeps that look for what was untouched (issue 14).

The draft expiry and conversation retention find conversations by ``updated_at``, recipient
retention finds address-book entries by ``last_used_at``; every scheduler pass asks, so both
are indexed. No new column: ``last_used_at`` already records each use of an entry.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_updated_at"), ["updated_at"],
                              unique=False)
    with op.batch_alter_table("recipient_book", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recipient_book_last_used_at"), ["last_used_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recipient_book", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipient_book_last_used_at"))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_updated_at"))
