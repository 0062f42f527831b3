"""The recipient's replies to our SMS: STOP and START (carrier rules), and CALL.

STOP opts the number out of every later SMS (a claimed SMS to it then fails without being
sent; calls still go); START opts it back in. CALL asks for the password by phone instead:
the sender of the latest SMS to that number is told, and books the call (``scheduling``).
Anything else is ignored. Senders that are not E.164 numbers or short codes are ignored.
"""

from __future__ import annotations

import logging
import re

from bot.messages import delivery as dmsg
from bot.replies import Reply, Text
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

STOP_WORDS = ("stop", "stopall", "unsubscribe", "cancel", "end", "quit")
START_WORDS = ("start", "unstop", "yes")
_SENDER = re.compile(r"\+?[A-Za-z0-9]{1,32}")  # E.164 or a short code (sms_optouts.phone)


async def sms_reply(svc: Services, *, from_phone: str, body: str) -> None:
    """A recipient replied to our SMS: STOP/START (carrier rules) or CALL."""
    if not _SENDER.fullmatch(from_phone):
        log.warning("ignored an SMS reply from an unusable sender id")
        return
    word = body.strip().split()[0].lower() if body.strip() else ""
    now = svc.clock()
    notify: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        if word in STOP_WORDS:
            await repo.opt_out_sms(session, phone=from_phone, now=now)
            await audit.append(session, at=now, actor="recipient", action="sms_opt_out",
                               details={"phone": from_phone})
            return
        if word in START_WORDS:
            await repo.opt_in_sms(session, phone=from_phone)
            await audit.append(session, at=now, actor="recipient", action="sms_opt_in",
                               details={"phone": from_phone})
            return
        if word != "call":
            return
        reference = await repo.latest_sms_reference(session, phone=from_phone)
        if reference is None:
            return
        transfer = await repo.get_transfer(session, reference=reference)
        if transfer is None:
            return
        await audit.append(session, at=now, actor="recipient", action="call_requested",
                           reference=reference, details={"phone": from_phone})
        notify = (transfer.sender_id, Text(dmsg.RECIPIENT_ASKS_CALL.format(
            reference=reference)), reference)
    if notify is not None:
        await svc.notifier.notify(notify[0], [notify[1]], reference=notify[2])
