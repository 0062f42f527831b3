"""Neutral replies: what the core says, rendered by each channel in its own way.

A reply that asks something carries ``question``, the step id that an :class:`Answer` must
name; channels put it in a button value or card data so that answers find their question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.answers import Decision, approval_question, command_question
from bot.cleantext import ELLIPSIS, clip, one_line
from bot.messages import agreements as agreements_msg
from bot.messages import incidents as incidents_msg
from bot.messages import transfers as transfers_msg
from bot.messages.words import plural


class OptionRole(StrEnum):
    """What picking an option does, so a channel can show it (a colour, a place) without
    reading its value."""

    DEFAULT = "default"
    PRIMARY = "primary"  # goes ahead: confirm, approve
    DANGER = "danger"    # refuses: reject
    BACK = "back"        # returns to the previous question
    CANCEL = "cancel"    # abandons the share


class InputKind(StrEnum):
    """How a question is answered, so a channel picks its control without reading the
    question's id."""

    CHOICE = "choice"        # one of the options
    TEXT = "text"            # free text
    DATE_TIME = "date_time"  # a date and a time of day
    FORM = "form"            # several named fields


@dataclass(frozen=True)
class Text:
    text: str
    question: str | None = None


@dataclass(frozen=True)
class DecisionNote(Text):
    """What a decision on an approval request tells someone: the sender hears who decided
    and why; the approver hears it was recorded. A :class:`Text` (every channel shows
    ``text``) that also says which decision, on what, by whom."""

    reference: str = ""
    decision: Decision = Decision.APPROVE
    approver: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Ask:
    """A typed question (purpose, call time): ``input_kind`` is text or date-time."""

    question: str
    prompt: str
    error: str | None = None
    placeholder: str = ""
    multiline: bool = False
    value: str = ""
    input_kind: InputKind = InputKind.TEXT


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    description: str = ""
    role: OptionRole = OptionRole.DEFAULT


@dataclass(frozen=True)
class Choice:
    question: str
    prompt: str
    options: tuple[Option, ...]
    error: str | None = None
    default: str | None = None
    # Several options may be picked: the answer names them separated by commas (a channel
    # shows checkboxes or a multi-select and a button to send them); ``chosen`` are the
    # values already picked (after Back), as ``default`` is for a single choice.
    multiple: bool = False
    chosen: tuple[str, ...] = ()

    @property
    def input_kind(self) -> InputKind:
        return InputKind.CHOICE


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # text | textarea | email | tel | select | checkbox
    value: str = ""
    error: str | None = None
    required: bool = True
    help: str = ""
    options: tuple[Option, ...] = field(default=())


@dataclass(frozen=True)
class Form:
    question: str
    title: str
    fields: tuple[FormField, ...]
    error: str | None = None
    intro: str = ""

    @property
    def input_kind(self) -> InputKind:
        return InputKind.FORM

    @property
    def has_errors(self) -> bool:
        return self.error is not None or any(f.error for f in self.fields)


@dataclass(frozen=True)
class Fact:
    """One thing an approver decides on: a label of ours and a value, one visible line
    already clipped; a channel shows the value as text, never as markup."""

    label: str
    value: str


@dataclass(frozen=True)
class ApprovalRequest:
    """An approver asked to authorise a transfer, with the facts they decide on.

    The sender controls most of these (the recipient's details, the purpose, the consent
    limits), so they travel as data, not as text to print: every channel renders
    :meth:`facts` then :meth:`details` with its own escaping, as text that no markup,
    mention or line break in it can change, and each value is clipped with "…" (never
    dropped) so that none can push another out of the message. ``reference`` is the
    transfer's (ours); ``sender`` is the sender's channel-qualified id, which a channel may
    replace with the name it knows them by (chosen by them, so a channel escapes
    :attr:`intro`, which carries it, like any text not its own). Answers name
    :attr:`question` (read back with :func:`bot.answers.approval_answer`); the values of
    :attr:`options` are :class:`~bot.answers.Decision` values.
    """

    reference: str
    sender: str
    classification: str
    recipient_name: str
    recipient_organisation: str
    recipient_email: str
    purpose: str
    lawful_basis: str
    file_count: int
    total_size: str  # as people read it ("1.2 MB")
    recipient_job_title: str = ""
    recipient_phone: str = ""
    use_limits: str = ""
    onward_sharing: bool = False
    delivery: str = ""
    password: str = ""
    information: str = ""  # the kinds of information, by label (special ones marked)
    recipient_department: str = ""
    approval_reason: str = ""  # why the policy asks for authorisation (bot.summary)

    @property
    def question(self) -> str:
        return approval_question(self.reference)

    @property
    def recipient_domain(self) -> str:
        return self.recipient_email.rpartition("@")[2]

    @property
    def intro(self) -> str:
        return transfers_msg.APPROVAL_REQUEST.format(sender=self.sender,
                                                     reference=self.reference)

    @property
    def prompt(self) -> str:
        return transfers_msg.APPROVAL_QUESTION.format(reference=self.reference)

    @property
    def options(self) -> tuple[Option, ...]:
        return (Option(Decision.APPROVE, transfers_msg.APPROVE, role=OptionRole.PRIMARY),
                Option(Decision.REJECT, transfers_msg.REJECT, role=OptionRole.DANGER))

    def facts(self) -> tuple[Fact, ...]:
        """What the decision turns on, first: classification, who receives it, why, on
        what basis, and how much."""
        m = transfers_msg
        return _facts(
            (m.FACT_CLASSIFICATION, self.classification, 60),
            (m.FACT_INFORMATION, self.information, 400),
            (agreements_msg.FACT_REASON, self.approval_reason, 400),
            (m.FACT_RECIPIENT, self.recipient_name, 120),
            (m.FACT_ORGANISATION, self.recipient_organisation, 120),
            (m.FACT_EMAIL_DOMAIN, self.recipient_domain, 120),
            (m.FACT_PURPOSE, self.purpose, 600),
            (m.FACT_LAWFUL_BASIS, self.lawful_basis, 160),
            (m.FACT_FILES, m.FACT_FILES_VALUE.format(files=plural(self.file_count, "file"),
                                                     size=self.total_size), 60))

    def details(self) -> tuple[Fact, ...]:
        """The rest of what the sender confirmed, after the facts."""
        m = transfers_msg
        return _facts(
            (m.FACT_JOB_TITLE, self.recipient_job_title, 120),
            (m.FACT_DEPARTMENT, self.recipient_department, 120),
            (m.FACT_EMAIL, self.recipient_email, 160),
            (m.FACT_PHONE, self.recipient_phone, 60),
            (m.FACT_USE_LIMITS, self.use_limits, 600),
            (m.FACT_ONWARD, m.EMAIL_ONWARD_YES if self.onward_sharing else m.EMAIL_ONWARD_NO,
             60),
            (m.FACT_DELIVERY, self.delivery, 120),
            (m.FACT_PASSWORD, self.password, 160))


def _facts(*rows: tuple[str, str, int]) -> tuple[Fact, ...]:
    """Facts from (label, value, most characters shown); values made one visible line
    (whatever the store held) and clipped, empty ones left out."""
    facts = (Fact(label, _shown(str(value), limit)) for label, value, limit in rows)
    return tuple(f for f in facts if f.value)


def _shown(text: str, limit: int) -> str:
    longest = limit * 8  # no need to clean more than can be shown
    cut = len(text) > longest
    return clip(one_line(text[:longest]) + (ELLIPSIS if cut else ""), limit)


@dataclass(frozen=True)
class FileReply:
    """An archive handed back to the sender: the transfer's ``reference`` and the archive's
    ``key`` in the shared object store (``bot.objects.archive_key``), so whichever process
    renders it reads the bytes from there; ``size`` in bytes when it was handed back."""

    reference: str
    key: str
    filename: str
    caption: str
    size: int


@dataclass(frozen=True)
class LinkReply:
    url: str
    label: str


@dataclass(frozen=True)
class MistakeButton:
    """The button on a receipt (the archive handed back, the download link made, the
    password sent) that reports a mistake on ``reference``. Pressing it is typing
    ``mistake REF``: its answer names :attr:`question` with the reference as the value
    (read back by :func:`bot.answers.command_answer`). Not a question: nothing waits on it."""

    reference: str

    @property
    def question(self) -> str:
        return command_question("mistake")

    @property
    def label(self) -> str:
        return incidents_msg.MISTAKE_BUTTON

    @property
    def hint(self) -> str:
        """The line shown with the button."""
        return incidents_msg.MISTAKE_HINT.format(reference=self.reference)

    @property
    def text(self) -> str:
        """The same for a channel without buttons (the terminal, a notification)."""
        return incidents_msg.MISTAKE_HINT_PLAIN.format(reference=self.reference)


Reply = (Text | DecisionNote | Ask | Choice | Form | ApprovalRequest | FileReply | LinkReply
         | MistakeButton)
Question = Ask | Choice | Form  # what a conversation waits on (see ``input_kind``)
