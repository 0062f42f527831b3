"""durable deliveries: provider ids, leases, call code checks, SMS opt-outs

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("provider_sid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("code_failures", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("verified_call_sid", sa.String(length=64), nullable=True))
        batch.create_index("ix_deliveries_provider_sid", ["provider_sid"], unique=False)
    op.create_table(
        "sms_optouts",
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone"),
    )


def downgrade() -> None:
    op.drop_table("sms_optouts")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_provider_sid")
        batch.drop_column("verified_call_sid")
        batch.drop_column("code_failures")
        batch.drop_column("lease_until")
        batch.drop_column("provider_sid")
