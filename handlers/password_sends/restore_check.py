"""A database found older than its audit anchor: check the pending sends before any goes.

A database restored from a dump older than the failure holds, as still ``due`` or
``waiting``, every password send that went out after the dump; sent as they stand, the
same password would reach the same person twice. The audit anchor, kept apart from the
database, shows it: its latest signed checkpoint names a head record the database does not
hold, or holds differently (:func:`store.audit.behind_anchor`).

When ``serve`` or ``worker`` starts on such a database, before anything is sent, every send
``due`` by now or ``waiting`` for receipt is held ``unconfirmed`` and settled through
:func:`handlers.password_sends.reconcile.reconcile_unconfirmed`: the provider is asked what
it sent to that number since the send was created. Found: recorded as sent (a call answered
since is never made again; the sender is asked to check with the recipient). No trace: it
goes back to due, or to waiting for receipt. The provider cannot be asked: reported to the
sender, never sent. One ``restore_checked`` audit record (no password, no number) says the
database was found behind which checkpoint and how many sends were checked; a later start
against the same anchor does not check again.
"""

from __future__ import annotations

import itertools
import logging

from bot.messages import delivery as dmsg
from handlers.password_sends.reconcile import reconcile_unconfirmed
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)


async def check_after_restore(svc: Services) -> int | None:
    """Hold and check the pending sends if the database is behind its anchor and this was
    not done yet for the anchor's latest checkpoint. Returns how many sends were held (None:
    the database is not behind, or its check was done already)."""
    trail = audit.trail_of(svc.db)
    if trail is None:
        return None
    behind = await audit.behind_anchor(svc.db, trail)
    if behind is None:
        return None
    checkpoint = behind.checkpoint
    if behind.noted:
        log.warning("the database is behind the audit anchor %s (%s; its newest record is "
                    "%s); its pending password sends were checked already",
                    trail.anchor.description, checkpoint.describe(), behind.trail_head)
        return None
    now = svc.clock()
    async with svc.db.transaction() as session:
        held = await repo.hold_for_provider_check(
            session, now=now, due_mark=dmsg.DETAIL_RESTORE_CHECK_DUE,
            waiting_mark=dmsg.DETAIL_RESTORE_CHECK_WAITING)
        await audit.append(session, at=now, actor="safehaven", action=audit.RESTORE_CHECKED,
                           details={"checkpoint_head": checkpoint.head_seq,
                                    "checkpoint_at": checkpoint.at.isoformat(),
                                    "trail_head": behind.trail_head, "sends": len(held)})
    log.warning("the database is BEHIND its audit anchor %s: %s, but the newest record here "
                "is %s (restored from an older backup?). %d pending password sends are held "
                "and checked with the provider before anything is sent, so none goes twice. "
                "See docs/operations.md, \"Restoring an older dump\".",
                trail.anchor.description, checkpoint.describe(), behind.trail_head, len(held))
    receipts = await reconcile_unconfirmed(svc)
    for sender, run in itertools.groupby(receipts, key=lambda r: r[0]):
        await svc.notifier.notify(sender, [receipt for _, receipt in run])
    return len(held)
