"""Checking the answers to the conversation's questions, without changing any state.

Each check takes what the sender gave and returns the clean value or why it cannot be used:
the recipient form (:func:`validate_recipient`), the purpose (:func:`check_purpose`), the
consent limits (:func:`check_consent`), a new phone number (:func:`check_phone`) and the
call time (:func:`parse_call_time`, also used by ``call REF …``). The engine
(:mod:`bot.engine`) applies them and moves the conversation on or re-asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from bot import cleantext, recipients
from bot.entries import Consent, Recipient
from bot.messages import conversation as msg
from bot.near_misses import NearMiss, NearMissKind
from bot.options import (
    ONWARD_OPTIONS,
    OPTIONAL_RECIPIENT_FIELDS,
    RECIPIENT_FIELDS,
    call_example,
    days_text,
    pick,
)
from bot.policy_rules import Level
from bot.state import TurnContext

PURPOSE_MAX = 2000
# How a typed call time is read (besides ISO 8601 with an offset).
_CALL_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M")
# The recipient form's free-text details.
NAME_FIELDS = ("name", "job_title", "department", "organisation")


def validate_recipient(values: Mapping[str, str], level: Level, ctx: TurnContext
                       ) -> tuple[Recipient | None, dict[str, str]]:
    """Check the recipient form; return the clean recipient or errors by field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, label, _kind in RECIPIENT_FIELDS:
        if name not in NAME_FIELDS:
            continue
        if name in OPTIONAL_RECIPIENT_FIELDS and not str(values.get(name) or "").strip():
            clean[name] = ""  # asked, and left empty by the sender
            continue
        try:
            clean[name] = recipients.check_name(values.get(name, ""), field=name, label=label)
        except recipients.RecipientError as exc:
            errors[name] = exc.message
    try:
        email = recipients.check_email(
            values.get("email", ""), protected=level.recipient_checks,
            webmail_domains=ctx.policy.webmail_domains,
            generic_mailboxes=ctx.policy.generic_mailboxes)
        clean.update(email=email.address, email_domain=email.ascii_domain)
    except recipients.RecipientError as exc:
        errors["email"] = exc.message
    try:
        phone = recipients.parse_phone(values.get("phone", ""), default_region=ctx.default_region)
        clean.update(phone=phone.e164, extension=phone.extension, phone_display=phone.display,
                     is_mobile=phone.is_mobile)
    except recipients.RecipientError as exc:
        errors["phone"] = exc.message
    return (None, errors) if errors else (cast(Recipient, clean), {})


def refused_recipient(values: Mapping[str, str], level: Level, ctx: TurnContext,
                      reference: str | None) -> list[NearMiss]:
    """The near misses in a refused recipient form: each email or phone refused for what it
    is (webmail, generic mailbox, list, invalid), with the typed value only as the subject
    to fingerprint. A missing detail is none (nothing was tried)."""
    found: list[NearMiss] = []
    checks: list[tuple[str, Callable[[str], object]]] = [
        ("email", lambda text: recipients.check_email(
            text, protected=level.recipient_checks,
            webmail_domains=ctx.policy.webmail_domains,
            generic_mailboxes=ctx.policy.generic_mailboxes)),
        ("phone", lambda text: recipients.parse_phone(
            text, default_region=ctx.default_region)),
    ]
    for name, check in checks:
        typed = values.get(name, "")
        try:
            check(typed)
        except recipients.RecipientError as exc:
            if exc.refusal is not None:
                found.append(NearMiss(NearMissKind.RECIPIENT_REFUSED, exc.refusal.value,
                                      reference, {"field": name},
                                      subject=typed[:400]))
    return found


def check_phone(text: str, ctx: TurnContext, reference: str | None
                ) -> tuple[dict[str, Any] | None, str | None, list[NearMiss]]:
    """A new phone number for the recipient: its fields (as :func:`validate_recipient`
    keeps them) or why it cannot be used, and the near miss a refused number is."""
    try:
        phone = recipients.parse_phone(text, default_region=ctx.default_region)
    except recipients.RecipientError as exc:
        misses = [] if exc.refusal is None else [NearMiss(
            NearMissKind.RECIPIENT_REFUSED, exc.refusal.value, reference, {"field": "phone"},
            subject=text[:400])]
        return None, exc.message, misses
    return {"phone": phone.e164, "extension": phone.extension,
            "phone_display": phone.display, "is_mobile": phone.is_mobile}, None, []


def check_purpose(value: str | dict[str, str], minimum: int) -> tuple[str, str | None]:
    """The purpose on one line, and why it cannot be used (None when it can): shorter than
    the policy's ``minimum`` or longer than :data:`PURPOSE_MAX`."""
    if isinstance(value, str) and len(value) > PURPOSE_MAX * 4:  # not worth cleaning
        return "", msg.PURPOSE_TOO_LONG.format(max=PURPOSE_MAX)
    text = cleantext.one_line(value) if isinstance(value, str) else ""
    if len(text) < minimum:
        return text, msg.PURPOSE_TOO_SHORT.format(min=minimum, got=len(text))
    if len(text) > PURPOSE_MAX:
        return text, msg.PURPOSE_TOO_LONG.format(max=PURPOSE_MAX)
    return text, None


def check_consent(values: Mapping[str, Any]) -> tuple[Consent | None, dict[str, str]]:
    """Check the consent form (use limits, onward sharing, the deletion acknowledgement);
    return the consent or errors by field."""
    errors: dict[str, str] = {}
    limits = str(values.get("use_limits", ""))
    limits = limits if len(limits) > PURPOSE_MAX * 4 else cleantext.one_line(limits)
    if len(limits) < 5:
        errors["use_limits"] = msg.USE_LIMITS_REQUIRED
    elif len(limits) > PURPOSE_MAX:
        errors["use_limits"] = msg.USE_LIMITS_TOO_LONG.format(max=PURPOSE_MAX)
    onward = pick(ONWARD_OPTIONS, str(values.get("onward_sharing", "")))
    if onward is None:
        errors["onward_sharing"] = msg.CHOOSE_ONE
    ack = str(values.get("delete_after_use", "")).strip().lower()
    if ack not in ("yes", "y", "true", "on", "1", msg.DELETE_ACK_YES.lower()):
        errors["delete_after_use"] = msg.DELETE_ACK_REQUIRED
    if errors:
        return None, errors
    return {"use_limits": limits, "onward_sharing": onward == "yes",
            "delete_after_use": True}, {}


def call_time_as_typed(text: str) -> str:
    """A typed call time to give back with its error: as ``YYYY-MM-DD HH:MM`` (the date and
    the time a card's two inputs take) when it reads as one, else as it was typed."""
    cleaned = text.strip().replace("T", " ").replace("/", "-")
    for fmt in _CALL_TIME_FORMATS:
        try:
            return f"{datetime.strptime(cleaned, fmt):%Y-%m-%d %H:%M}"
        except ValueError:
            continue
    return text.strip()


def parse_call_time(text: str, ctx: TurnContext) -> datetime | str:
    """The agreed call time in UTC, or the reason it cannot be used."""
    policy, window = ctx.policy, ctx.policy.call_window
    cleaned = text.strip().replace("T", " ").replace("/", "-")
    parsed: datetime | None = None
    for fmt in _CALL_TIME_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            return msg.CALL_TIME_UNREADABLE.format(text=text[:40], example=call_example(ctx))
    try:
        local = (parsed.replace(tzinfo=policy.timezone) if parsed.tzinfo is None
                 else parsed.astimezone(policy.timezone))
        when = local.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 has no local time in year 1
        return msg.CALL_TIME_UNREADABLE.format(text=text[:40], example=call_example(ctx))
    hours = {"days": days_text(window.days), "start": f"{window.start:%H:%M}",
             "end": f"{window.end:%H:%M}", "tz": policy.timezone.key}
    if when < ctx.now + timedelta(minutes=window.min_lead_minutes):
        return msg.CALL_TIME_PAST.format(minutes=window.min_lead_minutes)
    if when > ctx.now + timedelta(days=window.max_days_ahead):
        return msg.CALL_TIME_TOO_FAR.format(days=window.max_days_ahead)
    if local.weekday() not in window.days or not (window.start <= local.time() < window.end):
        return msg.CALL_TIME_OUTSIDE_HOURS.format(**hours)
    return when
