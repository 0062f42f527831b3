"""The guided secure-share conversation as a pure function.

``step(state, event, ctx)`` takes the saved conversation state and one neutral event and
returns the replies, the new state, the audit entries to append and the effects to run. It
does no I/O: newly received files are judged before the turn, off the event loop
(:func:`handlers.intake.check_files`), and their verdicts come in the context. The caller
saves the state (with a version check), the audit entries and the effects (as outbox
rows) in one transaction, and only then runs the effects. That makes every turn atomic
and lets a restart continue exactly where the conversation was.

The questions, in order: files, classification, recipient, purpose, lawful basis, consent
limits, delivery, password delivery (and call time), summary and confirm. ``back`` and
``cancel`` work at every question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from bot import cleantext, filecheck, naming, recipients
from bot.entries import Consent, FileEntry, Recipient
from bot.events import Answer, Event, FilesReceived, IncomingFile
from bot.filecheck import FileVerdict
from bot.messages import conversation as msg
from bot.packaging import neutral_name
from bot.policy import Level, Policy
from bot.replies import Ask, Choice, Form, FormField, InputKind, Option, OptionRole, Reply, Text
from bot.statuses import DeliveryMethod, PasswordMethod, Step

STEPS = tuple(s for s in Step if s is not Step.IDLE)
PURPOSE_MAX = 2000


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- state, context, results --------------------------------------------------------------


@dataclass
class State:
    """Everything answered so far in one conversation; stored as JSON between turns."""

    step: Step = Step.IDLE
    reference: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    last_file_at: str | None = None
    classification: str | None = None
    recipient: Recipient | None = None
    recipient_draft: dict[str, str] | None = None
    purpose: str | None = None
    lawful_basis: str | None = None
    consent: Consent | None = None
    delivery: DeliveryMethod | None = None
    password_method: PasswordMethod | None = None
    call_at: str | None = None
    history: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> State:
        if not data:
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        state = cls(**{k: v for k, v in data.items() if k in known})
        # JSON holds the words; the state holds the members they name.
        state.step = Step(state.step)
        state.history = [Step(s) for s in state.history]
        state.delivery = DeliveryMethod(state.delivery) if state.delivery else None
        state.password_method = (PasswordMethod(state.password_method)
                                 if state.password_method else None)
        return state

    @property
    def total_bytes(self) -> int:
        return sum(int(f["size"]) for f in self.files)


@dataclass(frozen=True)
class TurnContext:
    """What a turn may know besides the state: policy, clock, who is talking, and the
    verdicts on newly received files by upload path (a file without one is refused)."""

    policy: Policy
    now: datetime
    user_id: str
    default_region: str
    new_reference: Callable[[], str]
    known_recipients: Sequence[Mapping[str, str]] = ()
    file_verdicts: Mapping[str, FileVerdict] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    action: str
    reference: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class DeleteFiles:
    """Delete plaintext uploads that will never be packaged."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class SubmitTransfer:
    """The sender confirmed: record the transfer, then ask for approval or package it."""

    reference: str


@dataclass(frozen=True)
class CancelTransfer:
    reference: str


Effect = DeleteFiles | SubmitTransfer | CancelTransfer


@dataclass
class StepResult:
    replies: list[Reply]
    state: State
    audit: list[AuditEntry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    error: str | None = None  # set when the answer was refused and the question re-asked
    stale: bool = False  # the answer named a question no longer asked (changed nothing)


# --- entry point ----------------------------------------------------------------------------


def step(state: State, event: Event, ctx: TurnContext) -> StepResult:
    """Apply one event to the conversation."""
    if isinstance(event, FilesReceived):
        return _on_files(state, event.files, ctx)
    if isinstance(event, Answer):
        return _on_answer(state, event, ctx)
    return StepResult([Text(msg.HELP)], state)


def current_question(state: State, ctx: TurnContext) -> list[Reply]:
    """Re-ask whatever the conversation is waiting for (after a restart, or on `status`)."""
    if state.step == Step.IDLE:
        return [Text(msg.IDLE)]
    return _ask(state, ctx)


# --- files ---------------------------------------------------------------------------------


def _describe_files(state: State, header: str) -> str:
    lines = [header.format(reference=state.reference, count=len(state.files),
                           size=human_size(state.total_bytes))]
    lines += [msg.FILE_LINE.format(name=f["name"], size=human_size(int(f["size"])),
                                   kind=f["kind"]) for f in state.files]
    return "\n".join(lines)


def _can_join(state: State, ctx: TurnContext) -> bool:
    if state.step in (Step.FILES, Step.CLASSIFICATION):
        return True
    if state.step == Step.CONFIRM or not state.last_file_at:
        return False
    last = datetime.fromisoformat(state.last_file_at)
    return ctx.now - last <= timedelta(seconds=ctx.policy.join_window_seconds)


def _on_files(state: State, files: Sequence[IncomingFile], ctx: TurnContext) -> StepResult:
    policy = ctx.policy
    if state.step != Step.IDLE and not _can_join(state, ctx):
        return StepResult(
            [Text(msg.UNEXPECTED_FILES.format(reference=state.reference))],
            state,
            effects=[DeleteFiles(tuple(str(f.path) for f in files))],
        )
    joining = state.step != Step.IDLE
    new = replace(state, files=list(state.files)) if joining else State()
    level = policy.level(new.classification) if new.classification else None
    limit_total = level.max_total_bytes if level else max(
        lv.max_total_bytes for lv in policy.levels
    )
    lines: list[str] = []
    refused: list[str] = []
    accepted: list[FileEntry] = []
    for incoming in files:
        reason: str | None = None
        kind = "file"
        if incoming.size > policy.max_file_bytes:
            reason = msg.FILE_TOO_LARGE.format(
                name=incoming.name, size=human_size(incoming.size),
                limit=human_size(policy.max_file_bytes))
        elif len(new.files) >= policy.max_files:
            reason = msg.TOO_MANY_FILES.format(name=incoming.name, limit=policy.max_files)
        elif new.total_bytes + incoming.size > limit_total:
            reason = msg.TOTAL_TOO_LARGE.format(
                name=incoming.name, size=human_size(new.total_bytes + incoming.size),
                limit=human_size(limit_total))
        else:
            verdict = ctx.file_verdicts.get(str(incoming.path)) \
                or filecheck.unchecked(incoming.name, timed_out=False)
            kind = verdict.kind
            if not verdict.accepted:
                reason = verdict.reason or incoming.name
        if reason:
            refused.append(str(incoming.path))
            lines.append(msg.FILE_REFUSED.format(reason=reason))
            continue
        position = len(new.files) + 1
        flags = naming.identifying_reasons(incoming.name) if policy.flag_identifying_names else []
        entry: FileEntry = {
            "name": incoming.name, "path": str(incoming.path), "size": incoming.size,
            "kind": kind, "flags": flags, "position": position,
        }
        new.files.append(entry)
        accepted.append(entry)
        if flags:
            lines.append(msg.NAME_FLAG.format(
                name=incoming.name, reasons="; ".join(flags),
                neutral=neutral_name(position, incoming.name)))
    effects: list[Effect] = [DeleteFiles(tuple(refused))] if refused else []
    if not accepted:
        text = "\n".join([*lines, msg.NO_FILES_ACCEPTED if not joining else ""]).strip()
        replies: list[Reply] = [Text(text)]
        if joining:
            replies += _ask(state, ctx)
        return StepResult(replies, state, effects=effects,
                          audit=[AuditEntry("files_refused", state.reference,
                                            {"count": len(refused)})],
                          error=text)
    if not joining:
        new.reference = ctx.new_reference()
        new.step = Step.CLASSIFICATION
        new.history = [Step.FILES]
    new.last_file_at = ctx.now.isoformat()
    header = msg.FILES_ADDED if joining else msg.FILES_RECEIVED
    summary = _describe_files(new, header)
    hint = msg.JOIN_HINT.format(minutes=max(1, policy.join_window_seconds // 60))
    audit = [
        AuditEntry("received", new.reference, {
            "files": [{"position": f["position"], "size": f["size"], "kind": f["kind"],
                       "identifying_name": bool(f["flags"])} for f in accepted],
            "refused": len(refused),
        })
    ]
    text = "\n".join([summary, *lines, hint])
    return StepResult([Text(text), *_ask(new, ctx)], new, audit=audit, effects=effects)


# --- answers -------------------------------------------------------------------------------


def _on_answer(state: State, answer: Answer, ctx: TurnContext) -> StepResult:
    value = answer.value
    word = value.strip().lower() if isinstance(value, str) else ""
    if word == "cancel":
        return _cancel(state)
    if state.step == Step.IDLE:
        return StepResult([Text(msg.IDLE)], state)
    if answer.question is not None and answer.question != state.step:
        return StepResult([Text(msg.STALE_ANSWER)], state, error=msg.STALE_ANSWER,
                          stale=True)
    if word == "back":
        return _back(state, ctx)
    handler = _ANSWER_HANDLERS[state.step]
    return handler(state, value, ctx)


def _cancel(state: State) -> StepResult:
    if state.step == Step.IDLE or not state.reference:
        return StepResult([Text(msg.NOTHING_TO_CANCEL)], State())
    ref = state.reference
    return StepResult(
        [Text(msg.CANCELLED.format(reference=ref))],
        State(),
        audit=[AuditEntry("cancelled", ref, {"by": "sender", "at_step": state.step})],
        effects=[DeleteFiles(tuple(f["path"] for f in state.files)), CancelTransfer(ref)],
    )


def _back(state: State, ctx: TurnContext) -> StepResult:
    if not state.history:
        return StepResult([Text(msg.NOTHING_TO_GO_BACK_TO), *_ask(state, ctx)], state)
    new = replace(state, history=state.history[:-1], step=state.history[-1])
    return StepResult(_ask(new, ctx), new)


def _advance(state: State, ctx: TurnContext, next_step: Step, audit: AuditEntry | None
             ) -> StepResult:
    new = replace(state, history=[*state.history, state.step], step=next_step)
    return StepResult(_ask(new, ctx), new, audit=[audit] if audit else [])


def _answered(state: State, question: str, details: dict[str, Any]) -> AuditEntry:
    return AuditEntry("answered", state.reference, {"question": question, **details})


def _reask(state: State, ctx: TurnContext, error: str) -> StepResult:
    return StepResult(_ask(state, ctx, error), state, error=error)


def _pick(options: Sequence[Option], value: str | dict[str, str]) -> str | None:
    """Match an answer to an option by value, label or 1-based number."""
    if isinstance(value, dict):
        value = value.get("value", "")
    text = value.strip().lower()
    for i, opt in enumerate(options, start=1):
        if text in (opt.value.lower(), opt.label.lower(), str(i)):
            return opt.value
    return None


def _level(state: State, ctx: TurnContext) -> Level:
    assert state.classification is not None
    return ctx.policy.level(state.classification)


# files review (reached by `back` from classification)
def _files_options(state: State) -> tuple[Option, ...]:
    removals = (Option(f"remove:{f['position']}", msg.FILES_REMOVE.format(name=f["name"]))
                for f in state.files)
    return (Option("continue", msg.FILES_CONTINUE), *removals)


def _answer_files(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    picked = _pick(_files_options(state), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    if picked == "continue":
        if not state.files:
            return _reask(state, ctx, msg.FILES_EMPTY)
        return _advance(state, ctx, Step.CLASSIFICATION, None)
    position = int(picked.split(":", 1)[1])
    gone = next(f for f in state.files if f["position"] == position)
    new = replace(state, files=[f for f in state.files if f["position"] != position])
    result = StepResult([Text(msg.FILE_REMOVED.format(name=gone["name"])), *_ask(new, ctx)], new,
                        audit=[AuditEntry("file_removed", state.reference,
                                          {"position": position})],
                        effects=[DeleteFiles((gone["path"],))])
    return result


def _classification_options(ctx: TurnContext) -> tuple[Option, ...]:
    return tuple(Option(lv.name, lv.name, lv.description) for lv in ctx.policy.levels)


def _answer_classification(state: State, value: str | dict[str, str], ctx: TurnContext
                           ) -> StepResult:
    picked = _pick(_classification_options(ctx), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    level = ctx.policy.level(picked)
    if state.total_bytes > level.max_total_bytes:
        return _reask(state, ctx, msg.LEVEL_TOO_LARGE.format(
            level=level.name, limit=human_size(level.max_total_bytes),
            size=human_size(state.total_bytes)))
    new = replace(state, classification=picked)
    if level.delivery_methods == (new.delivery,) or new.delivery not in level.delivery_methods:
        new.delivery = None
    next_step = Step.RECIPIENT_PICK if ctx.known_recipients else Step.RECIPIENT
    return _advance(new, ctx, next_step, _answered(state, Step.CLASSIFICATION,
                                                    {"classification": picked}))


def _recipient_label(r: Mapping[str, str]) -> str:
    return f"{r['name']}, {r['job_title']}, {r['organisation']} <{r['email']}>"


def _recipient_pick_options(ctx: TurnContext) -> tuple[Option, ...]:
    known = (Option(f"r{i}", _recipient_label(r))
             for i, r in enumerate(ctx.known_recipients, start=1))
    return (*known, Option("new", msg.NEW_RECIPIENT))


def _answer_recipient_pick(state: State, value: str | dict[str, str], ctx: TurnContext
                           ) -> StepResult:
    picked = _pick(_recipient_pick_options(ctx), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    draft = None if picked == "new" else dict(ctx.known_recipients[int(picked[1:]) - 1])
    new = replace(state, recipient_draft=draft)
    return _advance(new, ctx, Step.RECIPIENT, None)


RECIPIENT_FIELDS = (
    ("name", msg.FIELD_NAME, "text"),
    ("job_title", msg.FIELD_JOB_TITLE, "text"),
    ("organisation", msg.FIELD_ORGANISATION, "text"),
    ("email", msg.FIELD_EMAIL, "email"),
    ("phone", msg.FIELD_PHONE, "tel"),
)


def validate_recipient(values: Mapping[str, str], level: Level, ctx: TurnContext
                       ) -> tuple[Recipient | None, dict[str, str]]:
    """Check the recipient form; return the clean recipient or errors by field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, label, _kind in RECIPIENT_FIELDS[:3]:
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


def _answer_recipient(state: State, value: str | dict[str, str], ctx: TurnContext
                      ) -> StepResult:
    if not isinstance(value, dict):
        return _reask(state, ctx, msg.FORM_HAS_ERRORS)
    values = {k: str(v) for k, v in value.items()}
    clean, errors = validate_recipient(values, _level(state, ctx), ctx)
    if clean is None:
        new = replace(state, recipient_draft=values)
        return StepResult(_ask(new, ctx, errors=errors), new, error="; ".join(
            f"{k}: {v}" for k, v in errors.items()))
    new = replace(state, recipient=clean, recipient_draft=None)
    if new.password_method in (PasswordMethod.SMS, PasswordMethod.SMS_ON_RECEIPT) and not (
        clean["is_mobile"] and not clean["extension"]
    ):
        new.password_method = None
    details = {k: clean[k] for k in ("name", "job_title", "organisation", "email")}
    details["phone"] = clean["phone_display"]
    return _advance(new, ctx, Step.PURPOSE,
                    _answered(state, Step.RECIPIENT, {"recipient": details}))


def _answer_purpose(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    if isinstance(value, str) and len(value) > PURPOSE_MAX * 4:  # not worth cleaning
        return _reask(state, ctx, msg.PURPOSE_TOO_LONG.format(max=PURPOSE_MAX))
    text = cleantext.one_line(value) if isinstance(value, str) else ""
    minimum = ctx.policy.purpose_min_length
    if len(text) < minimum:
        return _reask(state, ctx, msg.PURPOSE_TOO_SHORT.format(min=minimum, got=len(text)))
    if len(text) > PURPOSE_MAX:
        return _reask(state, ctx, msg.PURPOSE_TOO_LONG.format(max=PURPOSE_MAX))
    new = replace(state, purpose=text)
    return _advance(new, ctx, Step.LAWFUL_BASIS, _answered(state, Step.PURPOSE, {"purpose": text}))


def _lawful_options(ctx: TurnContext) -> tuple[Option, ...]:
    return tuple(Option(b, b) for b in ctx.policy.lawful_bases)


def _answer_lawful_basis(state: State, value: str | dict[str, str], ctx: TurnContext
                         ) -> StepResult:
    picked = _pick(_lawful_options(ctx), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    new = replace(state, lawful_basis=picked)
    return _advance(new, ctx, Step.CONSENT, _answered(state, Step.LAWFUL_BASIS,
                                                    {"lawful_basis": picked}))


ONWARD_OPTIONS = (Option("no", msg.ONWARD_NO), Option("yes", msg.ONWARD_YES))
ACK_OPTIONS = (Option("yes", msg.DELETE_ACK_YES),)


def _answer_consent(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    values = value if isinstance(value, dict) else {}
    errors: dict[str, str] = {}
    limits = str(values.get("use_limits", ""))
    limits = limits if len(limits) > PURPOSE_MAX * 4 else cleantext.one_line(limits)
    if len(limits) < 5:
        errors["use_limits"] = msg.USE_LIMITS_REQUIRED
    elif len(limits) > PURPOSE_MAX:
        errors["use_limits"] = msg.USE_LIMITS_TOO_LONG.format(max=PURPOSE_MAX)
    onward = _pick(ONWARD_OPTIONS, str(values.get("onward_sharing", "")))
    if onward is None:
        errors["onward_sharing"] = msg.CHOOSE_ONE
    ack = str(values.get("delete_after_use", "")).strip().lower()
    if ack not in ("yes", "y", "true", "on", "1", msg.DELETE_ACK_YES.lower()):
        errors["delete_after_use"] = msg.DELETE_ACK_REQUIRED
    if errors:
        new = replace(state, consent={"draft": {k: str(v) for k, v in values.items()}})
        return StepResult(_ask(new, ctx, errors=errors), new,
                          error="; ".join(f"{k}: {v}" for k, v in errors.items()))
    consent: Consent = {"use_limits": limits, "onward_sharing": onward == "yes",
                        "delete_after_use": True}
    new = replace(state, consent=consent)
    return _advance(new, ctx, Step.DELIVERY, _answered(state, Step.CONSENT, {"consent": consent}))


def _delivery_options(state: State, ctx: TurnContext) -> tuple[tuple[Option, ...], str | None]:
    level = _level(state, ctx)
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
                                      count=level.download_limit)))
    note = None
    if too_big:
        fmt = msg.DELIVERY_TOO_BIG_FOR_EMAIL if options else msg.DELIVERY_NONE_POSSIBLE
        note = fmt.format(size=human_size(state.total_bytes),
                          limit=human_size(level.email_limit_bytes), level=level.name)
    return tuple(options), note


def _answer_delivery(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    options, note = _delivery_options(state, ctx)
    picked = _pick(options, value)
    if picked is None:
        return _reask(state, ctx, note or msg.ANSWER_WITH_CHOICE)
    new = replace(state, delivery=DeliveryMethod(picked))
    return _advance(new, ctx, Step.PASSWORD_METHOD, _answered(state, Step.DELIVERY,
                                                            {"method": picked}))


def _password_options(state: State, ctx: TurnContext) -> tuple[Option, ...]:
    level = _level(state, ctx)
    phone = (state.recipient or {}).get("phone_display", "")
    labels = {
        PasswordMethod.SMS: (msg.PASSWORD_SMS, msg.PASSWORD_SMS_DESC),
        PasswordMethod.SMS_ON_RECEIPT: (msg.PASSWORD_SMS_ON_RECEIPT,
                                        msg.PASSWORD_SMS_ON_RECEIPT_DESC),
        PasswordMethod.VOICE: (msg.PASSWORD_VOICE, msg.PASSWORD_VOICE_DESC),
    }
    return tuple(Option(m, labels[m][0], labels[m][1].format(phone=phone))
                 for m in level.password_methods)


def _answer_password_method(state: State, value: str | dict[str, str], ctx: TurnContext
                            ) -> StepResult:
    chosen = _pick(_password_options(state, ctx), value)
    if chosen is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    picked = PasswordMethod(chosen)
    recipient = state.recipient or {}
    if picked in (PasswordMethod.SMS, PasswordMethod.SMS_ON_RECEIPT) and not (
            recipient.get("is_mobile") and not recipient.get("extension")):
        return _reask(state, ctx, msg.SMS_NEEDS_MOBILE.format(
            phone=recipient.get("phone_display", "")))
    new = replace(state, password_method=picked, call_at=None if picked != PasswordMethod.VOICE else
                  state.call_at)
    audit = _answered(state, Step.PASSWORD_METHOD, {"password_method": picked})
    return _advance(new, ctx, Step.CALL_TIME if picked == PasswordMethod.VOICE else Step.CONFIRM,
                    audit)


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _days_text(days: Sequence[int]) -> str:
    if list(days) == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_DAY_NAMES[days[0]]}–{_DAY_NAMES[days[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in days)


def _call_example(ctx: TurnContext) -> str:
    window = ctx.policy.call_window
    local = ctx.now.astimezone(ctx.policy.timezone) + timedelta(days=1)
    while local.weekday() not in window.days:
        local += timedelta(days=1)
    return f"{local:%Y-%m-%d} {window.start:%H:%M}"


def parse_call_time(text: str, ctx: TurnContext) -> datetime | str:
    """The agreed call time in UTC, or the reason it cannot be used."""
    policy, window = ctx.policy, ctx.policy.call_window
    cleaned = text.strip().replace("T", " ").replace("/", "-")
    parsed: datetime | None = None
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M"):
        try:
            parsed = datetime.strptime(cleaned, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            return msg.CALL_TIME_UNREADABLE.format(text=text[:40], example=_call_example(ctx))
    try:
        local = (parsed.replace(tzinfo=policy.timezone) if parsed.tzinfo is None
                 else parsed.astimezone(policy.timezone))
        when = local.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 has no local time in year 1
        return msg.CALL_TIME_UNREADABLE.format(text=text[:40], example=_call_example(ctx))
    hours = {"days": _days_text(window.days), "start": f"{window.start:%H:%M}",
             "end": f"{window.end:%H:%M}", "tz": policy.timezone.key}
    if when < ctx.now + timedelta(minutes=window.min_lead_minutes):
        return msg.CALL_TIME_PAST.format(minutes=window.min_lead_minutes)
    if when > ctx.now + timedelta(days=window.max_days_ahead):
        return msg.CALL_TIME_TOO_FAR.format(days=window.max_days_ahead)
    if local.weekday() not in window.days or not (window.start <= local.time() < window.end):
        return msg.CALL_TIME_OUTSIDE_HOURS.format(**hours)
    return when


def _answer_call_time(state: State, value: str | dict[str, str], ctx: TurnContext
                      ) -> StepResult:
    result = parse_call_time(value if isinstance(value, str) else "", ctx)
    if isinstance(result, str):
        return _reask(state, ctx, result)
    new = replace(state, call_at=result.isoformat())
    return _advance(new, ctx, Step.CONFIRM, _answered(state, Step.CALL_TIME,
                                                    {"call_at": result.isoformat()}))


CONFIRM_OPTIONS = (
    Option("confirm", msg.CONFIRM, role=OptionRole.PRIMARY),
    Option("back", msg.CONFIRM_BACK, role=OptionRole.BACK),
    Option("cancel", msg.CONFIRM_CANCEL, role=OptionRole.CANCEL),
)


def recipient_email_domain(state: State) -> str:
    """The recipient's email domain in ASCII, as validation resolved it (``email_domain``,
    :class:`bot.recipients.EmailAddress`); "" for answers saved before it was kept, which
    then match no agreement."""
    return str((state.recipient or {}).get("email_domain") or "")


def needs_approval(state: State, ctx: TurnContext) -> bool:
    """Whether the policy wants an approver: by level, and for ``without-agreement`` by the
    recipient's validated email domain (never the organisation name the sender typed)."""
    return ctx.policy.approval_required(_level(state, ctx),
                                        email_domain=recipient_email_domain(state))


def approval_basis(state: State, ctx: TurnContext) -> dict[str, Any]:
    """What the approval decision rests on, for the record: the level's rule, whether an
    approver is needed, and the information-sharing agreement (a domain) that matched."""
    return {"rule": _level(state, ctx).approval, "required": needs_approval(state, ctx),
            "sharing_agreement": ctx.policy.sharing_agreement_for(
                recipient_email_domain(state))}


def _answer_confirm(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    picked = _pick(CONFIRM_OPTIONS, value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    if picked == "back":
        return _back(state, ctx)
    if picked == "cancel":
        return _cancel(state)
    if needs_approval(state, ctx) and not ctx.policy.approvers_for(ctx.user_id):
        return _reask(state, ctx, msg.NO_APPROVERS)
    assert state.reference is not None
    return StepResult(
        [Text(msg.CONFIRMED.format(reference=state.reference))],
        State(),
        audit=[AuditEntry("confirmed", state.reference,
                          {**transfer_record(state), "approval": approval_basis(state, ctx)})],
        effects=[SubmitTransfer(state.reference)],
    )


def transfer_record(state: State) -> dict[str, Any]:
    """The fields seed 001 asks to record for a share (never the password)."""
    recipient = state.recipient or {}
    return {
        "classification": state.classification,
        "recipient": {
            "name": recipient.get("name"), "job_title": recipient.get("job_title"),
            "organisation": recipient.get("organisation"), "email": recipient.get("email"),
            "phone": recipient.get("phone_display"),
        },
        "purpose": state.purpose,
        "lawful_basis": state.lawful_basis,
        "consent": state.consent,
        "method": state.delivery,
        "password_method": state.password_method,
        "call_at": state.call_at,
        "files": len(state.files),
        "total_bytes": state.total_bytes,
    }


_ANSWER_HANDLERS: dict[str, Callable[[State, str | dict[str, str], TurnContext], StepResult]] = {
    Step.FILES: _answer_files,
    Step.CLASSIFICATION: _answer_classification,
    Step.RECIPIENT_PICK: _answer_recipient_pick,
    Step.RECIPIENT: _answer_recipient,
    Step.PURPOSE: _answer_purpose,
    Step.LAWFUL_BASIS: _answer_lawful_basis,
    Step.CONSENT: _answer_consent,
    Step.DELIVERY: _answer_delivery,
    Step.PASSWORD_METHOD: _answer_password_method,
    Step.CALL_TIME: _answer_call_time,
    Step.CONFIRM: _answer_confirm,
}


# --- questions -----------------------------------------------------------------------------


def delivery_texts(state: State, ctx: TurnContext) -> tuple[str, str]:
    """How the archive goes and how its password does, as the summary words them."""
    method_labels = {o.value: o.label for o in _password_options(state, ctx)}
    password = method_labels.get(state.password_method or "", state.password_method or "")
    if state.password_method == PasswordMethod.VOICE and state.call_at:
        local = datetime.fromisoformat(state.call_at).astimezone(ctx.policy.timezone)
        password += f", {local:%a %d %b %Y %H:%M} ({ctx.policy.timezone.key})"
    delivery = (msg.DELIVERY_PORTAL if state.delivery == DeliveryMethod.PORTAL
                else msg.DELIVERY_ARCHIVE)
    return delivery, password


def summary_text(state: State, ctx: TurnContext) -> str:
    """The one-screen summary shown to the sender before confirming."""
    recipient = state.recipient or {}
    consent = state.consent or {}
    delivery, password = delivery_texts(state, ctx)
    files = ", ".join(f"{f['name']} ({human_size(int(f['size']))})" for f in state.files)
    lines = [
        msg.SUMMARY_TITLE.format(reference=state.reference),
        msg.SUMMARY_LINES.format(
            files=files, classification=state.classification, name=recipient.get("name"),
            job_title=recipient.get("job_title"), organisation=recipient.get("organisation"),
            email=recipient.get("email"), phone=recipient.get("phone_display"),
            purpose=state.purpose, lawful_basis=state.lawful_basis,
            use_limits=consent.get("use_limits"),
            onward=msg.ONWARD_YES if consent.get("onward_sharing") else msg.ONWARD_NO,
            delivery=delivery, password_method=password,
        ),
    ]
    if state.classification and needs_approval(state, ctx):
        approvers = ctx.policy.approvers_for(ctx.user_id)
        lines.append(msg.SUMMARY_APPROVAL.format(approvers=", ".join(approvers) or "—"))
    elif state.classification:
        agreement = ctx.policy.sharing_agreement_for(recipient_email_domain(state))
        lines.append(msg.SUMMARY_NO_APPROVAL_AGREEMENT.format(domain=agreement) if agreement
                     else msg.SUMMARY_NO_APPROVAL)
    return "\n".join(lines)


def _ask(state: State, ctx: TurnContext, error: str | None = None,
         errors: Mapping[str, str] | None = None) -> list[Reply]:
    s = state.step
    if s == Step.FILES:
        if not state.files:
            return [Choice(Step.FILES, msg.FILES_EMPTY, _files_options(state), error=error)]
        return [Choice(Step.FILES, _describe_files(state, msg.FILES_REVIEW), _files_options(state),
                       error=error)]
    if s == Step.CLASSIFICATION:
        return [Choice(Step.CLASSIFICATION, msg.ASK_CLASSIFICATION, _classification_options(ctx),
                       error=error, default=state.classification)]
    if s == Step.RECIPIENT_PICK:
        return [Choice(Step.RECIPIENT_PICK, msg.ASK_RECIPIENT_PICK, _recipient_pick_options(ctx),
                       error=error)]
    if s == Step.RECIPIENT:
        draft = state.recipient_draft or {
            k: str(v) for k, v in (state.recipient or {}).items()
            if k in {f[0] for f in RECIPIENT_FIELDS}
        }
        if state.recipient and not state.recipient_draft:
            draft["phone"] = str(state.recipient.get("phone_display", ""))
        errs = errors or {}
        fields = tuple(
            FormField(name, label, kind, value=draft.get(name, ""), error=errs.get(name),
                      help=msg.RECIPIENT_PHONE_HELP if name == "phone" else "")
            for name, label, kind in RECIPIENT_FIELDS
        )
        reconfirm = state.recipient_draft and not errs
        intro = msg.RECIPIENT_RECONFIRM if reconfirm else msg.RECIPIENT_INTRO
        return [Form(Step.RECIPIENT, msg.RECIPIENT_TITLE, fields,
                     error=msg.FORM_HAS_ERRORS if errs else error, intro=intro)]
    if s == Step.PURPOSE:
        return [Ask(Step.PURPOSE, msg.ASK_PURPOSE.format(min=ctx.policy.purpose_min_length),
                    error=error, multiline=True, value=state.purpose or "")]
    if s == Step.LAWFUL_BASIS:
        return [Choice(Step.LAWFUL_BASIS, msg.ASK_LAWFUL_BASIS, _lawful_options(ctx), error=error,
                       default=state.lawful_basis)]
    if s == Step.CONSENT:
        consent = state.consent or {}
        draft = consent.get("draft") or {}
        errs = errors or {}
        use = draft.get("use_limits", consent.get("use_limits", ""))
        onward = draft.get("onward_sharing", "" if "onward_sharing" not in consent
                           else ("yes" if consent["onward_sharing"] else "no"))
        fields = (
            FormField("use_limits", msg.FIELD_USE_LIMITS, "textarea", value=str(use),
                      error=errs.get("use_limits"), help=msg.USE_LIMITS_HELP),
            FormField("onward_sharing", msg.FIELD_ONWARD, "select", value=str(onward),
                      error=errs.get("onward_sharing"), options=ONWARD_OPTIONS),
            FormField("delete_after_use", msg.FIELD_DELETE_ACK, "checkbox",
                      value="yes" if consent.get("delete_after_use") else "",
                      error=errs.get("delete_after_use"), options=ACK_OPTIONS),
        )
        return [Form(Step.CONSENT, msg.CONSENT_TITLE, fields, intro=msg.CONSENT_INTRO,
                     error=msg.FORM_HAS_ERRORS if errs else error)]
    if s == Step.DELIVERY:
        options, note = _delivery_options(state, ctx)
        level = _level(state, ctx)
        default = level.default_delivery if any(
            o.value == level.default_delivery for o in options) else None
        prompt = f"{msg.ASK_DELIVERY}\n{note}" if note else msg.ASK_DELIVERY
        return [Choice(Step.DELIVERY, prompt, options, error=error, default=default)]
    if s == Step.PASSWORD_METHOD:
        return [Choice(Step.PASSWORD_METHOD, msg.ASK_PASSWORD_METHOD,
                       _password_options(state, ctx), error=error)]
    if s == Step.CALL_TIME:
        window = ctx.policy.call_window
        return [Ask(Step.CALL_TIME, msg.ASK_CALL_TIME.format(
            tz=ctx.policy.timezone.key, example=_call_example(ctx), days=_days_text(window.days),
            start=f"{window.start:%H:%M}", end=f"{window.end:%H:%M}"), error=error,
            placeholder=_call_example(ctx), input_kind=InputKind.DATE_TIME)]
    if s == Step.CONFIRM:
        return [Text(summary_text(state, ctx), question=Step.CONFIRM),
                Choice(Step.CONFIRM, msg.ASK_CONFIRM, CONFIRM_OPTIONS, error=error)]
    return [Text(msg.IDLE)]


_REFERENCE_RE = re.compile(r"^SH-[0-9A-Z]{4}-[0-9A-Z]{2}$")


def is_reference(text: str) -> bool:
    return bool(_REFERENCE_RE.match(text.strip().upper()))
