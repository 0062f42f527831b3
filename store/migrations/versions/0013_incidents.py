"""Reported mistakes: incidents with their ICO decision deadline (issue 14).

Placeholder in the chain: filled in by the change that needs it; a no-op until then.
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
