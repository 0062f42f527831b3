"""What the policy keeps and for how long, as ``safehaven retention`` shows it: per artefact
its period, what goes, how many are due now and when the next falls due.

Counted from the same times and cut-offs the deleting jobs use (``handlers/retention.py``,
``handlers/portal_archives.py``, the draft expiry in ``handlers/housekeeping.py``), so
"due now" is what the next scheduler pass deletes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.messages import retention as msg
from bot.policy_rules import Policy
from bot.retention import Artefact, ArtefactRetention
from handlers.services import Services
from store import repositories as repo


def _chat_archive_due(archive: repo.KeptArchive, policy: Policy, now: datetime) -> datetime:
    """When a kept chat archive goes: at once when its transfer is over, else the earlier
    of its maximum age and so many days after its password was delivered."""
    if not archive.ready:
        return now
    keep = policy.archive_retention
    due = archive.created_at + timedelta(days=keep.max_days)
    if archive.delivered_at is not None:
        due = min(due, archive.delivered_at + timedelta(days=keep.days_after_password))
    return due


def _by_age(artefact: Artefact, period: str, goes: str, ages: repo.Ages,
            keep: timedelta) -> ArtefactRetention:
    return ArtefactRetention(artefact, period, goes, ages.older,
                             ages.oldest_newer + keep if ages.oldest_newer else None)


async def retention_view(svc: Services) -> list[ArtefactRetention]:
    """Every artefact's line, as of ``svc.clock()``."""
    now = svc.clock()
    policy = svc.policy
    periods = policy.retention
    drafts_keep = timedelta(hours=policy.draft_expiry_hours)
    conversations_keep = timedelta(days=periods.conversation_days)
    recipients_keep = timedelta(days=periods.recipient_days)
    incidents_keep = timedelta(days=periods.incident_days)
    audit_keep = timedelta(days=periods.audit_days)
    async with svc.db.read() as session:
        kept = await repo.kept_chat_archives(session)
        dead_portal = await repo.unreachable_archives(session, now=now)
        link_ends = await repo.portal_archive_link_ends(session)
        drafts = await repo.draft_ages(session, cutoff=now - drafts_keep)
        conversations = await repo.idle_conversation_ages(session,
                                                          cutoff=now - conversations_keep)
        recipients = await repo.recipient_ages(session, cutoff=now - recipients_keep)
        incidents = await repo.incident_ages(session, cutoff=now - incidents_keep)
        records = await repo.audit_ages(session, cutoff=now - audit_keep)
    chat_due = [_chat_archive_due(archive, policy, now) for archive in kept]
    return [
        ArtefactRetention(
            Artefact.CHAT_ARCHIVE,
            msg.CHAT_ARCHIVE_PERIOD.format(after=policy.archive_retention.days_after_password,
                                           most=policy.archive_retention.max_days),
            msg.CHAT_ARCHIVE_GOES, sum(due <= now for due in chat_due),
            min((due for due in chat_due if due > now), default=None)),
        ArtefactRetention(
            Artefact.PORTAL_ARCHIVE, msg.PORTAL_ARCHIVE_PERIOD, msg.PORTAL_ARCHIVE_GOES,
            len(dead_portal), min((end for end in link_ends if end > now), default=None)),
        _by_age(Artefact.DRAFT, msg.DRAFT_PERIOD.format(hours=policy.draft_expiry_hours),
                msg.DRAFT_GOES, drafts, drafts_keep),
        _by_age(Artefact.CONVERSATION,
                msg.CONVERSATION_PERIOD.format(days=periods.conversation_days),
                msg.CONVERSATION_GOES, conversations, conversations_keep),
        _by_age(Artefact.RECIPIENT, msg.RECIPIENT_PERIOD.format(days=periods.recipient_days),
                msg.RECIPIENT_GOES, recipients, recipients_keep),
        _by_age(Artefact.INCIDENT, msg.INCIDENT_PERIOD.format(days=periods.incident_days),
                msg.INCIDENT_GOES, incidents, incidents_keep),
        _by_age(Artefact.AUDIT_RECORD, msg.AUDIT_PERIOD.format(days=periods.audit_days),
                msg.AUDIT_GOES, records, audit_keep),
    ]
