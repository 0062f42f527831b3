"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 18:32:00.088438
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_records',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('hash')
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_records_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_records_reference'), ['reference'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.String(length=300), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_user_id'), ['user_id'], unique=False)

    op.create_table('recipient_book',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('job_title', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('phone', sa.String(length=60), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sender_id', 'email', 'phone')
    )
    with op.batch_alter_table('recipient_book', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipient_book_sender_id'), ['sender_id'], unique=False)

    op.create_table('transfers',
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('classification', sa.String(length=40), nullable=True),
    sa.Column('recipient', sa.JSON(), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('lawful_basis', sa.String(length=200), nullable=True),
    sa.Column('consent', sa.JSON(), nullable=True),
    sa.Column('delivery_method', sa.String(length=20), nullable=True),
    sa.Column('password_method', sa.String(length=20), nullable=True),
    sa.Column('call_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('password_sealed', sa.Text(), nullable=True),
    sa.Column('archive_path', sa.Text(), nullable=True),
    sa.Column('archive_size', sa.BigInteger(), nullable=True),
    sa.Column('file_count', sa.Integer(), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('authorised_by', sa.String(length=200), nullable=True),
    sa.Column('call_code', sa.String(length=12), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('reference')
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_sender_id'), ['sender_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_status'), ['status'], unique=False)

    op.create_table('approvals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('approvers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['reference'], ['transfers.reference'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_status'), ['status'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('extension', sa.String(length=20), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reference'], ['transfers.reference'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference', 'kind')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_due', ['status', 'due_at'], unique=False)

    op.create_table('transfer_files',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=False),
    sa.Column('stored_path', sa.Text(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['reference'], ['transfers.reference'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference', 'position')
    )
    with op.batch_alter_table('transfer_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_files_reference'), ['reference'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('transfer_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_files_reference'))

    op.drop_table('transfer_files')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_due')

    op.drop_table('deliveries')
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_status'))
        batch_op.drop_index(batch_op.f('ix_approvals_expires_at'))

    op.drop_table('approvals')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_status'))
        batch_op.drop_index(batch_op.f('ix_transfers_sender_id'))

    op.drop_table('transfers')
    with op.batch_alter_table('recipient_book', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipient_book_sender_id'))

    op.drop_table('recipient_book')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_user_id'))

    op.drop_table('conversations')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_records_reference'))
        batch_op.drop_index(batch_op.f('ix_audit_records_at'))

    op.drop_table('audit_records')

