"""Files arriving in a conversation: whether they may join it, which are kept, and why the
others are refused.

A first batch starts a transfer (a new reference, then the classification question); later
files join it while it is on the files or classification question, or within the policy's
join window of the last ones (never at confirm). Each file is held to the policy's limits
and to its verdict from :func:`handlers.intake.check_files` (a file without one is refused);
a name that may identify a person is flagged with the neutral name it will be packaged under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot import filecheck, naming
from bot.entries import FileEntry
from bot.events import IncomingFile
from bot.filecheck import FileRefusal
from bot.messages import conversation as msg
from bot.messages.words import plural
from bot.near_misses import NearMiss, NearMissKind
from bot.packaging import neutral_name
from bot.questions import ask, describe_files
from bot.replies import Reply, Text
from bot.sizes import human_size
from bot.state import AuditEntry, DeleteFiles, Effect, State, StepResult, TurnContext
from bot.statuses import Step


def name_warning(entry: FileEntry) -> str | None:
    """The warning for a file whose name looks like it identifies a person (its ``flags``,
    from :func:`bot.naming.identifying_reasons`), as the chat and ``safehaven share`` give
    it; None for a neutral name."""
    if not entry["flags"]:
        return None
    return msg.NAME_FLAG.format(name=entry["name"], reasons="; ".join(entry["flags"]),
                                neutral=neutral_name(entry["position"], entry["name"]))


def can_join(state: State, ctx: TurnContext) -> bool:
    """Whether files arriving now join ``state``'s transfer (rather than start one, or be
    refused)."""
    if state.step in (Step.FILES, Step.CLASSIFICATION):
        return True
    if state.step == Step.CONFIRM or not state.last_file_at:
        return False
    last = datetime.fromisoformat(state.last_file_at)
    return ctx.now - last <= timedelta(seconds=ctx.policy.join_window_seconds)


def receive_files(state: State, files: Sequence[IncomingFile], ctx: TurnContext) -> StepResult:
    """Start a transfer with ``files``, or add them to the one in progress."""
    policy = ctx.policy
    if state.step != Step.IDLE and not can_join(state, ctx):
        return StepResult(
            [Text(msg.UNEXPECTED_FILES.format(reference=state.reference))],
            state,
            effects=[DeleteFiles(tuple(f.location for f in files))],
        )
    joining = state.step != Step.IDLE
    new = replace(state, files=list(state.files)) if joining else State()
    level = policy.level(new.classification) if new.classification else None
    limit_total = level.max_total_bytes if level else max(
        lv.max_total_bytes for lv in policy.levels
    )
    lines: list[str] = []
    refused: list[str] = []
    near_misses: list[NearMiss] = []
    accepted: list[FileEntry] = []
    for incoming in files:
        reason: str | None = None
        refusal: FileRefusal | None = None
        kind = "file"
        if incoming.size > policy.max_file_bytes:
            reason = msg.FILE_TOO_LARGE.format(
                name=incoming.name, size=human_size(incoming.size),
                limit=human_size(policy.max_file_bytes))
            refusal = FileRefusal.TOO_LARGE
        elif len(new.files) >= policy.max_files:
            reason = msg.TOO_MANY_FILES.format(name=incoming.name, limit=policy.max_files)
            refusal = FileRefusal.TOO_MANY_FILES
        elif new.total_bytes + incoming.size > limit_total:
            reason = msg.TOTAL_TOO_LARGE.format(
                name=incoming.name, size=human_size(new.total_bytes + incoming.size),
                limit=human_size(limit_total))
            refusal = FileRefusal.TOTAL_TOO_LARGE
        else:
            verdict = ctx.file_verdicts.get(incoming.location) \
                or filecheck.unchecked(incoming.name, timed_out=False)
            kind = verdict.kind
            if not verdict.accepted:
                reason = verdict.reason or incoming.name
                refusal = verdict.refusal or FileRefusal.NOT_CHECKED
        if reason:
            refused.append(incoming.location)
            lines.append(msg.FILE_REFUSED.format(reason=reason))
            # Kind and reason only: a file's name may itself be personal data.
            near_misses.append(NearMiss(
                NearMissKind.FILE_REFUSED, (refusal or FileRefusal.NOT_CHECKED).value,
                state.reference, {"file_kind": kind, "size": incoming.size}))
            continue
        position = len(new.files) + 1
        flags = naming.identifying_reasons(incoming.name) if policy.flag_identifying_names else []
        entry: FileEntry = {
            "name": incoming.name, "path": incoming.location, "size": incoming.size,
            "kind": kind, "flags": flags, "position": position,
        }
        new.files.append(entry)
        accepted.append(entry)
        warning = name_warning(entry)
        if warning:
            lines.append(warning)
    effects: list[Effect] = [DeleteFiles(tuple(refused))] if refused else []
    if not accepted:
        text = "\n".join([*lines, msg.NO_FILES_ACCEPTED if not joining else ""]).strip()
        replies: list[Reply] = [Text(text)]
        if joining:
            replies += ask(state, ctx)
        return StepResult(replies, state, effects=effects,
                          audit=[AuditEntry("files_refused", state.reference,
                                            {"count": len(refused)})],
                          error=text, near_misses=near_misses)
    if not joining:
        new.reference = ctx.new_reference()
        new.step = Step.CLASSIFICATION
        new.history = [Step.FILES]
    new.last_file_at = ctx.now.isoformat()
    header = msg.FILES_ADDED if joining else msg.FILES_RECEIVED
    summary = describe_files(new, header)
    hint = msg.JOIN_HINT.format(minutes=plural(max(1, policy.join_window_seconds // 60),
                                               "minute"))
    audit = [
        AuditEntry("received", new.reference, {
            "files": [{"position": f["position"], "size": f["size"], "kind": f["kind"],
                       "identifying_name": bool(f["flags"])} for f in accepted],
            "refused": len(refused),
        })
    ]
    text = "\n".join([summary, *lines, hint])
    # In a first batch the refused files belong to the transfer it starts.
    near_misses = [replace(near, reference=new.reference) for near in near_misses]
    return StepResult([Text(text), *ask(new, ctx)], new, audit=audit, effects=effects,
                      near_misses=near_misses)
