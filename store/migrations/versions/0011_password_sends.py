"""password_sends: the ``deliveries`` table becomes ``password_sends``

"Delivery" now means only how the archive reaches the recipient (``DeliveryMethod``); a
password send (SMS or voice call) is a ``password_sends`` row. The table, its indexes
(``ix_deliveries_due``, ``ix_deliveries_provider_sid``) and, on PostgreSQL, its primary key,
unique and foreign key constraints and id sequence are renamed; no row or column changes.

Words that are already data are kept, so old records, policies and saved states read the
same: the send status ``delivered`` (``bot.statuses.SendStatus``), the audit action
``password_delivered``, the policy table ``[password.delivery]`` (retry and call rules) and the
saved state's ``delivery`` (the archive's ``DeliveryMethod``).

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_INDEXES = {"due": ["status", "due_at"], "provider_sid": ["provider_sid"]}
# PostgreSQL's default names for the constraints and sequence created with the table.
_PG_NAMES = ("pkey", "reference_kind_key", "reference_fkey")


def _rename(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        for suffix in _INDEXES:
            op.execute(f"ALTER INDEX ix_{old}_{suffix} RENAME TO ix_{new}_{suffix}")
        for suffix in _PG_NAMES:
            op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {old}_{suffix} TO {new}_{suffix}")
        op.execute(f"ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq")
        return
    # SQLite renames the table but keeps the index names: make them again.
    for suffix, columns in _INDEXES.items():
        op.drop_index(f"ix_{old}_{suffix}", table_name=new)
        op.create_index(f"ix_{new}_{suffix}", new, columns, unique=False)


def upgrade() -> None:
    _rename("deliveries", "password_sends")


def downgrade() -> None:
    _rename("password_sends", "deliveries")
