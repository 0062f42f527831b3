"""The audit trail under a key: each record says how its hash was made (issue 14).

``scheme`` is ``sha256`` for every record written before this revision (the unkeyed chain,
still verifiable as it was) and ``hmac-sha256`` for records written since, under the key
``key_id`` names (store/audit.py, bot/audit_keys.py). The switch-over point is fixed by the
first signed checkpoint written outside the database, so a record after it cannot be
downgraded to the unkeyed scheme.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("scheme", sa.String(length=20), nullable=False,
                                   server_default="sha256"))
        batch.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("key_id")
        batch.drop_column("scheme")
