"""SQLAlchemy models: the durable state of conversations, transfers and the audit trail.

The schema is created and changed only by the Alembic migrations in ``store/migrations``;
these classes describe it for the repositories. Timestamps are stored as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# The outbox's words live in the domain; named here too for older imports.
from bot.statuses import EffectKind as EffectKind
from bot.statuses import EffectStatus as EffectStatus


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    """One person's conversation with the bot on one channel; saved every turn."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    # Indexed: the draft expiry and conversation retention look for the untouched.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Transfer(Base):
    """A share of one or more files with one recipient, from intake to expiry."""

    __tablename__ = "transfers"

    reference: Mapped[str] = mapped_column(String(20), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(30), index=True)  # bot.statuses.TransferStatus
    classification: Mapped[str | None] = mapped_column(String(40))
    # The policy's information category keys the sender chose; None before they were asked.
    information_categories: Mapped[list[str] | None] = mapped_column(JSON)
    recipient: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    purpose: Mapped[str | None] = mapped_column(Text)
    lawful_basis: Mapped[str | None] = mapped_column(String(200))
    consent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    delivery_method: Mapped[str | None] = mapped_column(String(20))  # DeliveryMethod
    password_method: Mapped[str | None] = mapped_column(String(20))  # PasswordMethod
    call_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The archive password, sealed with the server key (AES-GCM); None once delivered,
    # cancelled or expired.
    password_sealed: Mapped[str | None] = mapped_column(Text)
    # The archive's object-store key (``archives/<reference>.zip``) while it is kept.
    archive_path: Mapped[str | None] = mapped_column(Text)
    archive_size: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    authorised_by: Mapped[str | None] = mapped_column(String(200))
    # Digits the recipient keys in before a password call says anything; sent in the email.
    call_code: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TransferFile(Base):
    """A file received for a transfer. ``stored_path`` is the object-store key of its sealed
    upload (``uploads/...``, never a host path), cleared once the upload is deleted."""

    __tablename__ = "transfer_files"
    __table_args__ = (UniqueConstraint("reference", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(ForeignKey("transfers.reference"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(100))


class Approval(Base):
    """A request for a listed approver to authorise a transfer."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(ForeignKey("transfers.reference"), unique=True)
    approvers: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # ApprovalStatus
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class PasswordSend(Base):
    """An out-of-band password send (SMS or voice call) with its due time and outcome."""

    __tablename__ = "password_sends"
    __table_args__ = (
        UniqueConstraint("reference", "kind"),
        Index("ix_password_sends_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(ForeignKey("transfers.reference"))
    kind: Mapped[str] = mapped_column(String(20))  # bot.statuses.SendKind
    status: Mapped[str] = mapped_column(String(20))  # bot.statuses.SendStatus
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone: Mapped[str] = mapped_column(String(40))
    extension: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The provider's id for the current attempt (Twilio Message or Call SID); callbacks
    # are matched on it, so a callback for an old attempt cannot change the new one.
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    # A worker holds a claimed ("sending") row until this time; a row still "sending"
    # after it was interrupted mid-send and is never sent again blindly.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_failures: Mapped[int] = mapped_column(Integer, default=0)
    verified_call_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SmsOptOut(Base):
    """A number that replied STOP: no further SMS is sent to it (carrier rules)."""

    __tablename__ = "sms_optouts"

    phone: Mapped[str] = mapped_column(String(40), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecipientEntry(Base):
    """A recipient a sender has used, offered again (with every detail) next time."""

    __tablename__ = "recipient_book"
    __table_args__ = (UniqueConstraint("sender_id", "email", "phone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    job_title: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))  # optional; None before 0014
    organisation: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(60))
    # Indexed: retention deletes the entries unused for the policy's recipient_days.
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditRecord(Base):
    """One append-only audit record; ``hash`` chains it to the record before it (a keyed
    MAC since migration 0012; see store/audit.py)."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reference: Mapped[str | None] = mapped_column(String(20), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # How ``hash`` was made (bot.audit_keys.Scheme): "sha256" for records from before
    # migration 0012, "hmac-sha256" under the key named by ``key_id`` since.
    scheme: Mapped[str] = mapped_column(String(20), server_default="sha256")
    key_id: Mapped[str | None] = mapped_column(String(16))


class ProcessedEvent(Base):
    """A platform event (or click) already acted on, by a channel-chosen key such as
    ``slack:event:Ev123``: a retried delivery, or the same event reaching a second replica,
    finds its key here and is ignored. Old keys are pruned by the channel. The portal keeps
    its downloads in progress here too (``portal-hold:...``, ``seen_at`` = when the hold
    lapses; see handlers/portal.py)."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ChannelMessage(Base):
    """Where a channel posted a message that later notifications about a transfer follow:
    the sender's first message of a transfer (receipts go in its thread), or an approver's
    request (updated in place once decided). Ids only, never message content."""

    __tablename__ = "channel_messages"

    reference: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # transfer | approval
    conversation: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PortalLink(Base):
    """A recipient's download link for a transfer's archive. Only the SHA-256 of the
    token is kept, so the database alone cannot rebuild a working link. ``downloads`` counts
    finished downloads and those in progress; it grows by a conditional update that refuses
    to pass ``download_limit``, and an interrupted download gives its place back.
    ``interrupted_downloads`` counts the downloads a client broke off: a few of them lock
    the link (``handlers.portal.MAX_INTERRUPTED_DOWNLOADS``)."""

    __tablename__ = "portal_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(ForeignKey("transfers.reference"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    download_limit: Mapped[int] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    interrupted_downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class HeldNotice(Base):
    """A message for a person the bot could not reach (their channel is not configured
    here), kept until they next talk to the bot on any channel. ``kind`` is ``request``
    when it asks them something (an approval request: dropped once no longer pending) and
    ``notice`` otherwise. ``sealed`` is the message, sealed with the server key (it may
    name a recipient or hold a download link); it never holds a password."""

    __tablename__ = "held_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    reference: Mapped[str | None] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # request | notice
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OutboxEntry(Base):
    """The transactional outbox: one effect of a turn or a decision (package, send a
    request, notify), written in the same transaction as the state change that calls for
    it, run right after the commit and swept by the scheduler if its process died first.
    ``key`` makes each effect unique (``<reference>:<kind>`` for a transfer's once-only
    work). ``payload`` names what to act on and whom to tell; never a password."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_sweep", "status", "claimed_until"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # EffectKind
    reference: Mapped[str | None] = mapped_column(String(20), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # EffectStatus
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboxStatus(StrEnum):
    """``accepted``: acknowledged to Slack, its work in hand by ``owner``. ``taken_over``:
    its owner's lease lapsed (the process died) and a live replica took it over."""

    ACCEPTED = "accepted"
    TAKEN_OVER = "taken_over"


class SlackInboxEntry(Base):
    """A Slack direct message acknowledged and not yet acted on (channels/slack/inbox.py),
    held by the replica ``owner`` until ``lease_until``, which the owner keeps renewing
    while the work goes on; a lapsed lease is taken over by any live replica. ``body`` is
    the event sealed with the vault (it holds what the person typed, their files' names
    and URLs); the row is deleted once the work has ended."""

    __tablename__ = "slack_inbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20))  # InboxStatus
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- the Teams channel's bookkeeping (read and written only by channels/teams) ----------


class TeamsConversationRef(Base):
    """Where to reach a Teams user: the Bot Framework conversation reference, as JSON."""

    __tablename__ = "teams_conversation_refs"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamsFileOffer(Base):
    """An archive offered to its sender with a file consent card."""

    __tablename__ = "teams_file_offers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    reference: Mapped[str] = mapped_column(String(20), index=True)
    # The archive's object-store key (bot.objects.archive_key); the column kept its old name,
    # and rows written before hold a host path: the archive is found by ``reference``.
    archive_key: Mapped[str] = mapped_column("archive_path", Text)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    link_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # channels.teams.models.OfferStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Incident(Base):
    """A reported mistake on a transfer (``mistake REF``): one per transfer. ``opened_at``
    is when it was reported (found); ``ico_decision_due`` is 72 hours later, the deadline
    for deciding whether to report it to the ICO. ``facts`` records what had reached the
    recipient when it was reported. Information governance's decision (reported to the
    ICO or not, why, by whom, when) closes it. No foreign key: the incident outlives its
    transfer's rows, and retention deletes it by ``opened_at``."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reported_by: Mapped[str] = mapped_column(String(200))
    ico_decision_due: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))  # bot.statuses.IncidentStatus
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The decision that closes it (``safehaven incidents decide``); all None while open.
    # Late when ``decided_at`` is after ``ico_decision_due``.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ico_decision: Mapped[str | None] = mapped_column(  # bot.statuses.IcoDecision
        String(20), nullable=True)
    ico_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
