"""What kind of information went, and the recipient's department (issue 14).

``transfers.information_categories``: the policy's information category keys the sender
chose (a JSON list); None on transfers confirmed before the question was asked, which the
record shows as not asked rather than guessing. ``recipient_book.department``: the
recipient's department, optional; None on entries saved before it was asked.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("information_categories", sa.JSON(), nullable=True))
    with op.batch_alter_table("recipient_book") as batch:
        batch.add_column(sa.Column("department", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipient_book") as batch:
        batch.drop_column("department")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("information_categories")
