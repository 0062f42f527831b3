"""Retention per artefact: timestamps the sweeps need (issue 14).

Placeholder in the chain: filled in by the change that needs it; a no-op until then.
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
