"""portal links: the recipient's expiring download links (token hashes only)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_links',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('download_limit', sa.Integer(), nullable=False),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reference'], ['transfers.reference'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('portal_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_links_reference'), ['reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_links_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('portal_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_links_expires_at'))
        batch_op.drop_index(batch_op.f('ix_portal_links_reference'))

    op.drop_table('portal_links')
