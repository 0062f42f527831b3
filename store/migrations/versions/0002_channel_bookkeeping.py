"""channel bookkeeping: processed events (idempotency) and channel messages (threads)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('processed_events',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_events_seen_at'), ['seen_at'], unique=False)

    op.create_table('channel_messages',
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('conversation', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reference', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('channel_messages')
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_events_seen_at'))
    op.drop_table('processed_events')
