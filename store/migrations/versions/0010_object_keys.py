"""object_keys: uploads and archives named by object-store keys, never by host paths

``transfer_files.stored_path`` and ``transfers.archive_path`` keep their names but now hold
keys in the shared object store (``bot.objects``), so any replica can read them:

* an upload staged as ``<var>/uploads/<folder>/upload.bin`` becomes the key
  ``uploads/legacy/<folder>``. Its plaintext is still on the host that received it; that
  host seals it into the store under that key the first time it starts on this version
  (``handlers.recovery.seal_legacy_files``) and deletes the plaintext. Until then another
  replica that packages it fails cleanly (``package_failed``, kept for a retry).
* an archive ``<var>/archives/<reference>.zip`` becomes ``archives/<reference>.zip``
  (``bot.objects.archive_key``); the already encrypted file is moved into the store the same
  way, by the host that has it.
* any other path (not one Safe Haven wrote) is cleared: it is no longer read.

Conversation states keep the paths they saved (a cancelled draft's are unlinked on the host
that has them). Downgrade leaves the keys: they name no host path to go back to.

Revision ID: 0010
Revises: 0009
"""
import re
from pathlib import PurePath

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _upload_key(stored: str) -> str | None:
    if not stored.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", stored):
        return stored  # already a key
    path = PurePath(stored)
    if path.name == "upload.bin" and path.parent.parent.name == "uploads" \
            and _SEGMENT.fullmatch(path.parent.name):
        return f"uploads/legacy/{path.parent.name}"
    return None


def _archive_key(reference: str, stored: str) -> str | None:
    if not stored.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", stored):
        return stored
    return f"archives/{reference}.zip" if PurePath(stored).name == f"{reference}.zip" else None


def upgrade() -> None:
    bind = op.get_bind()
    files = sa.table("transfer_files", sa.column("id", sa.Integer),
                     sa.column("stored_path", sa.Text))
    for row in bind.execute(sa.select(files.c.id, files.c.stored_path)
                            .where(files.c.stored_path.is_not(None))).all():
        key = _upload_key(row.stored_path)
        if key != row.stored_path:
            bind.execute(files.update().where(files.c.id == row.id).values(stored_path=key))
    transfers = sa.table("transfers", sa.column("reference", sa.String),
                         sa.column("archive_path", sa.Text),
                         sa.column("archive_size", sa.BigInteger))
    for row in bind.execute(sa.select(transfers.c.reference, transfers.c.archive_path)
                            .where(transfers.c.archive_path.is_not(None))).all():
        key = _archive_key(row.reference, row.archive_path)
        if key != row.archive_path:
            values = {"archive_path": key} if key else {"archive_path": None,
                                                        "archive_size": None}
            bind.execute(transfers.update().where(transfers.c.reference == row.reference)
                         .values(**values))


def downgrade() -> None:
    pass
