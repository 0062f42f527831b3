"""The domain's vocabulary: statuses, steps and methods as ``StrEnum``s.

Each member equals its string value, so the words stored in the database and in saved
conversation state are unchanged and still read back; code compares and assigns members
instead of bare strings.
"""

from __future__ import annotations

from enum import StrEnum


class TransferStatus(StrEnum):
    """Where a transfer is (``transfers.status``)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    PACKAGING = "packaging"
    PACKAGE_FAILED = "package_failed"
    READY = "ready"  # the archive exists: handed back, or held on the portal
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # a mistake was reported: links, sends and archive withdrawn


# A transfer in one of these may still change: cancelled by its sender, or moved on.
OPEN_TRANSFER_STATUSES = (
    TransferStatus.DRAFT, TransferStatus.SUBMITTED, TransferStatus.AWAITING_APPROVAL,
    TransferStatus.APPROVED, TransferStatus.PACKAGE_FAILED,
)


class ApprovalStatus(StrEnum):
    """An approval request's state (``approvals.status``)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class SendKind(StrEnum):
    """How one out-of-band message goes (``password_sends.kind``)."""

    SMS = "sms"
    VOICE = "voice"
    HEADS_UP = "heads-up"  # an SMS telling the recipient a call is coming


class SendStatus(StrEnum):
    """One password send's state (``password_sends.status``)."""

    WAITING = "waiting"  # sms-on-receipt: until the recipient confirms receipt
    DUE = "due"
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"  # the provider did not confirm; reconciled before a retry
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"  # retries exhausted
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


# A send in one of these is over; nothing changes it again.
FINAL_SEND_STATUSES = (SendStatus.DELIVERED, SendStatus.FAILED, SendStatus.DEAD,
                       SendStatus.CANCELLED, SendStatus.INTERRUPTED)


class Step(StrEnum):
    """The question a conversation is on (``State.step``)."""

    IDLE = "idle"
    FILES = "files"
    CLASSIFICATION = "classification"
    INFORMATION_CATEGORIES = "information_categories"
    RECIPIENT_PICK = "recipient_pick"
    RECIPIENT = "recipient"
    PURPOSE = "purpose"
    LAWFUL_BASIS = "lawful_basis"
    CONSENT = "consent"
    DELIVERY = "delivery"
    PASSWORD_METHOD = "password_method"
    CALL_TIME = "call_time"
    CONFIRM = "confirm"
    # The recipient's phone alone, reached from the password question or the summary (and
    # back there once answered).
    PHONE = "phone"


class DeliveryMethod(StrEnum):
    """How the archive reaches the recipient."""

    ARCHIVE = "archive"  # handed back to the sender to send on
    PORTAL = "portal"  # held for a one-time download link


class PasswordMethod(StrEnum):
    """How the password reaches the recipient."""

    SMS = "sms"
    SMS_ON_RECEIPT = "sms-on-receipt"
    VOICE = "voice"


class EffectKind(StrEnum):
    """What an outbox entry does once the transaction that wrote it has committed."""

    SUBMIT = "submit"  # a confirmed transfer: ask for approval, or package it
    REQUEST_APPROVAL = "request_approval"  # send the approval request to the approvers
    PACKAGE = "package"  # an approved transfer: tell the sender, package it
    REJECT = "reject"  # a rejected transfer: close it, tell the sender
    DELETE_FILES = "delete_files"  # plaintext uploads nothing will package
    EXPIRE_DRAFT = "expire_draft"  # a conversation left unfinished: close its draft, tell


class IncidentStatus(StrEnum):
    """A reported mistake's state (``incidents.status``): ``open`` until information
    governance has decided whether to report it to the ICO and closed it."""

    OPEN = "open"
    CLOSED = "closed"


class IcoDecision(StrEnum):
    """Information governance's decision on an incident (``incidents.ico_decision``,
    ``safehaven incidents decide REF --ico ...``): reported to the ICO, or not."""

    REPORTED = "reported"
    NOT_REPORTED = "not-reported"


class EffectStatus(StrEnum):
    """``pending``: written, not yet taken. ``running``: taken until ``claimed_until`` (a
    claim that lapses was a process that died, or a failed attempt waiting to be retried).
    ``done``, or ``failed`` after too many attempts."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
