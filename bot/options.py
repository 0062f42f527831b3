"""The options each question of the conversation offers, and matching an answer to them.

Choices (files review, classification, known recipients, lawful basis, delivery, password
method, confirm), the recipient form's fields, the consent form's select and checkbox, and
the wording of the policy's call window. Built from the state and the turn's context; the
questions (:mod:`bot.questions`) show them and the engine (:mod:`bot.engine`) reads answers
against them with :func:`pick`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot import recipients
from bot.messages import conversation as msg
from bot.messages.words import plural
from bot.replies import Option, OptionRole
from bot.sizes import human_size
from bot.state import State, TurnContext, chosen_level
from bot.statuses import DeliveryMethod, PasswordMethod


def pick(options: Sequence[Option], value: str | dict[str, str]) -> str | None:
    """Match an answer to an option by value, label or 1-based number."""
    if isinstance(value, dict):
        value = value.get("value", "")
    text = value.strip().lower()
    for i, opt in enumerate(options, start=1):
        if text in (opt.value.lower(), opt.label.lower(), str(i)):
            return opt.value
    return None


def pick_several(options: Sequence[Option], value: str | dict[str, str]
                 ) -> tuple[tuple[str, ...], str | None]:
    """Match an answer naming several options, separated by commas (each by value, label or
    1-based number), in the options' order; and the first part that matches none (None when
    all do). Nothing named gives ``((), None)``."""
    if isinstance(value, dict):
        value = value.get("value", "")
    picked: set[str] = set()
    for part in value.split(","):
        if not part.strip():
            continue
        match = pick(options, part)
        if match is None:
            return (), part.strip()
        picked.add(match)
    return tuple(o.value for o in options if o.value in picked), None


def files_options(state: State) -> tuple[Option, ...]:
    """The files review (reached by ``back`` from classification): go on, or remove one."""
    removals = (Option(f"remove:{f['position']}", msg.FILES_REMOVE.format(name=f["name"]))
                for f in state.files)
    return (Option("continue", msg.FILES_CONTINUE), *removals)


def classification_options(ctx: TurnContext) -> tuple[Option, ...]:
    return tuple(Option(lv.name, lv.name, lv.description) for lv in ctx.policy.levels)


def information_category_options(ctx: TurnContext) -> tuple[Option, ...]:
    """The policy's information categories; special category and criminal offence data
    marked as such."""
    return tuple(Option(c.key, c.label, msg.SPECIAL_CATEGORY_DESC if c.special else "")
                 for c in ctx.policy.information_categories)


def _recipient_label(r: Mapping[str, str]) -> str:
    job = f"{r['job_title']} ({r['department']})" if r.get("department") else r["job_title"]
    return f"{r['name']}, {job}, {r['organisation']} <{r['email']}>"


def recipient_pick_options(ctx: TurnContext) -> tuple[Option, ...]:
    """The sender's known recipients (``r1``, ``r2``, …) and a new one."""
    known = (Option(f"r{i}", _recipient_label(r))
             for i, r in enumerate(ctx.known_recipients, start=1))
    return (*known, Option("new", msg.NEW_RECIPIENT))


RECIPIENT_FIELDS = (
    ("name", msg.FIELD_NAME, "text"),
    ("job_title", msg.FIELD_JOB_TITLE, "text"),
    ("department", msg.FIELD_DEPARTMENT, "text"),
    ("organisation", msg.FIELD_ORGANISATION, "text"),
    ("email", msg.FIELD_EMAIL, "email"),
    ("phone", msg.FIELD_PHONE, "tel"),
)
# Asked, and the sender may leave them empty (not every organisation has departments).
OPTIONAL_RECIPIENT_FIELDS = ("department",)


LAWFUL_NOT_SURE = "not-sure"


def lawful_options(ctx: TurnContext) -> tuple[Option, ...]:
    """The policy's lawful bases, each explained in plain English where the wording knows
    it, then "Not sure" (:data:`LAWFUL_NOT_SURE`), which records nothing."""
    return (*(Option(b, b, msg.LAWFUL_BASIS_EXPLAINED.get(b, ""))
              for b in ctx.policy.lawful_bases),
            Option(LAWFUL_NOT_SURE, msg.LAWFUL_NOT_SURE, msg.LAWFUL_NOT_SURE_DESC))


ONWARD_OPTIONS = (Option("no", msg.ONWARD_NO), Option("yes", msg.ONWARD_YES))
ACK_OPTIONS = (Option("yes", msg.DELETE_ACK_YES),)


def delivery_options(state: State, ctx: TurnContext) -> tuple[tuple[Option, ...], str | None]:
    """The level's delivery methods (the archive only when it fits in an email), and a note
    saying why the archive is missing, if it is."""
    level = chosen_level(state, ctx)
    too_big = state.total_bytes > level.email_limit_bytes
    options: list[Option] = []
    for method in level.delivery_methods:
        if method == DeliveryMethod.ARCHIVE and too_big:
            continue
        mark = msg.DEFAULT_MARK if method == level.default_delivery else ""
        if method == DeliveryMethod.ARCHIVE:
            options.append(Option(DeliveryMethod.ARCHIVE, msg.DELIVERY_ARCHIVE + mark,
                                  msg.DELIVERY_ARCHIVE_DESC))
        else:
            options.append(Option(DeliveryMethod.PORTAL, msg.DELIVERY_PORTAL + mark,
                                  msg.DELIVERY_PORTAL_DESC.format(
                                      hours=level.link_expiry_hours,
                                      downloads=plural(level.download_limit, "download"))))
    note = None
    if too_big:
        fmt = msg.DELIVERY_TOO_BIG_FOR_EMAIL if options else msg.DELIVERY_NONE_POSSIBLE
        note = fmt.format(size=human_size(state.total_bytes),
                          limit=human_size(level.email_limit_bytes), level=level.name)
    return tuple(options), note


SMS_METHODS = (PasswordMethod.SMS, PasswordMethod.SMS_ON_RECEIPT)
# The option, at the password question and the summary, that goes straight to the phone.
CHANGE_PHONE = "change-phone"


def takes_sms(recipient: Mapping[str, Any]) -> bool:
    """Whether the recipient's phone can receive the password by SMS: a mobile, with no
    extension."""
    return bool(recipient.get("is_mobile") and not recipient.get("extension"))


def level_password_options(state: State, ctx: TurnContext) -> tuple[Option, ...]:
    """Every password method the level allows, described with the recipient's phone."""
    level = chosen_level(state, ctx)
    phone = (state.recipient or {}).get("phone_display", "")
    labels = {
        PasswordMethod.SMS: (msg.PASSWORD_SMS, msg.PASSWORD_SMS_DESC),
        PasswordMethod.SMS_ON_RECEIPT: (msg.PASSWORD_SMS_ON_RECEIPT,
                                        msg.PASSWORD_SMS_ON_RECEIPT_DESC),
        PasswordMethod.VOICE: (msg.PASSWORD_VOICE, msg.PASSWORD_VOICE_DESC),
    }
    return tuple(Option(m, labels[m][0], labels[m][1].format(phone=phone))
                 for m in level.password_methods)


def password_options(state: State, ctx: TurnContext) -> tuple[tuple[Option, ...], str | None]:
    """The password methods the level allows and the recipient's phone can take (no SMS to
    a landline or an extension), then changing the phone; and a line saying why SMS is
    missing, if it is."""
    recipient = state.recipient or {}
    everything = level_password_options(state, ctx)
    usable = everything if takes_sms(recipient) else tuple(
        o for o in everything if o.value not in SMS_METHODS)
    note = None
    if len(usable) < len(everything):
        phone = recipient.get("phone_display", "")
        if recipient.get("extension"):
            why = msg.NO_SMS_EXTENSION
        elif recipients.is_landline(str(recipient.get("phone", ""))):
            why = msg.NO_SMS_LANDLINE
        else:
            why = msg.NO_SMS_NOT_MOBILE
        note = why.format(phone=phone)
        if not usable:
            note += "\n" + msg.NO_PASSWORD_METHOD_LEFT
    return (*usable, Option(CHANGE_PHONE, msg.CHANGE_PHONE)), note


CONFIRM_OPTIONS = (
    Option("confirm", msg.CONFIRM, role=OptionRole.PRIMARY),
    Option(CHANGE_PHONE, msg.CHANGE_PHONE),
    Option("back", msg.CONFIRM_BACK, role=OptionRole.BACK),
    Option("cancel", msg.CONFIRM_CANCEL, role=OptionRole.CANCEL),
)

# The question asking the sender to confirm a cancel (not a step: the step's question stays
# open underneath). Its id names the transfer (:func:`cancel_question`), so a yes pressed on
# an older confirmation, for another transfer, can never cancel the one asked about now.
CANCEL_QUESTION = "cancel_transfer"
CANCEL_YES = "yes"


def cancel_question(reference: str) -> str:
    """The id of the question confirming the cancel of ``reference``."""
    return f"{CANCEL_QUESTION}:{reference}"


def is_cancel_question(question: str | None) -> bool:
    """Whether ``question`` confirms a cancel (of any transfer, or one asked before the id
    named the transfer)."""
    return question is not None and (question == CANCEL_QUESTION
                                     or question.startswith(CANCEL_QUESTION + ":"))


def cancel_options(reference: str) -> tuple[Option, ...]:
    return (Option(CANCEL_YES, msg.CANCEL_YES.format(reference=reference),
                   role=OptionRole.DANGER),
            Option("no", msg.CANCEL_NO))


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def days_text(days: Sequence[int]) -> str:
    """The call window's weekdays: a range (``Mon–Fri``) or a list."""
    if list(days) == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_DAY_NAMES[days[0]]}–{_DAY_NAMES[days[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in days)


def call_example(ctx: TurnContext) -> str:
    """An example call time: the window's start on the next day it is open."""
    window = ctx.policy.call_window
    local = ctx.now.astimezone(ctx.policy.timezone) + timedelta(days=1)
    while local.weekday() not in window.days:
        local += timedelta(days=1)
    return f"{local:%Y-%m-%d} {window.start:%H:%M}"
