"""teams channel: conversation references, archive offers, held messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teams_conversation_refs',
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('teams_file_offers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('archive_path', sa.Text(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('link_url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('teams_file_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teams_file_offers_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_teams_file_offers_reference'), ['reference'], unique=False)

    op.create_table('teams_held_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=True),
    sa.Column('activities', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('teams_held_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teams_held_messages_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('teams_held_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teams_held_messages_user_id'))
    op.drop_table('teams_held_messages')
    with op.batch_alter_table('teams_file_offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teams_file_offers_reference'))
        batch_op.drop_index(batch_op.f('ix_teams_file_offers_user_id'))
    op.drop_table('teams_file_offers')
    op.drop_table('teams_conversation_refs')
