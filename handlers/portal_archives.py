"""Deleting the archives no portal link can reach any more (a scheduler job).

Apart from ``handlers/portal.py`` because it ends transfers (``handlers/transfers.py``),
which themselves issue and revoke portal links: kept in one module, the two would import
each other. The audit trail keeps the record; the sender hears of expiry, and a link that
expired unused also ends the transfer, so no password is sent for it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from pathlib import Path

from bot.messages import portal as msg
from bot.objects import ObjectStoreError, archive_key
from bot.replies import Text
from bot.settings import Settings
from bot.statuses import TransferStatus
from handlers import portal, transfers
from handlers.services import Services

log = logging.getLogger(__name__)


def _unlink_archive(settings: Settings, path: Path) -> bool:
    """Delete an archive a row names by its path in this host's archives folder (written
    before archives lived in the object store; gone already is fine); refuse anything else
    outside the archives. An object key is left to the store: True."""
    if not path.is_absolute():
        return True
    archives = settings.archives_dir.resolve()
    target = path.resolve()
    if archives not in target.parents:
        log.warning("not deleting %s: outside the archives folder", target.name)
        return False
    with suppress(FileNotFoundError):
        target.unlink()
    return True


async def delete_dead_archives(svc: Services) -> int:
    """Delete the archive of every portal transfer no link can download any more and none
    is downloading (:func:`portal.dead_archives`); returns how many."""
    now = svc.clock()
    deleted = 0
    async for dead in portal.dead_archives(svc, now=now):
        try:
            await svc.objects.delete(archive_key(dead.reference))
        except ObjectStoreError as exc:  # unreachable: the next pass retries
            log.error("could not delete the archive of %s: %s", dead.reference,
                      type(exc).__name__)
            continue
        if not await asyncio.to_thread(_unlink_archive, svc.settings, Path(dead.path)):
            continue
        if not await portal.forget_archive(svc, dead, now=now):
            continue  # another scheduler got there first
        deleted += 1
        if dead.reason != "expired":
            continue
        if dead.downloads == 0:
            await transfers.cancel(svc, reference=dead.reference, by="safehaven",
                                   reason="download link expired unused",
                                   status=TransferStatus.EXPIRED)
            text = msg.LINK_EXPIRED_UNUSED_SENDER.format(reference=dead.reference)
        else:
            text = msg.LINK_EXPIRED_SENDER.format(reference=dead.reference,
                                                  count=dead.downloads, limit=dead.limit)
        try:
            await svc.notifier.notify(dead.sender_id, [Text(text)], reference=dead.reference)
        except Exception as exc:
            log.error("could not tell the sender of %s about expiry: %s", dead.reference,
                      type(exc).__name__)
    return deleted
