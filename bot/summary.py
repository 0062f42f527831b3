"""What the sender confirms: the summary before confirming, the transfer's record, and
whether (and on what basis) the share needs an approver.

:func:`summary_text` is the one screen shown at the confirm question; :func:`transfer_record`
is what is recorded for a confirmed share (never the password); :func:`needs_approval` and
:func:`approval_basis` apply the policy's approval rule to the answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.messages import conversation as msg
from bot.options import password_options
from bot.sizes import human_size
from bot.state import State, TurnContext, chosen_level
from bot.statuses import DeliveryMethod, PasswordMethod


def recipient_email_domain(state: State) -> str:
    """The recipient's email domain in ASCII, as validation resolved it (``email_domain``,
    :class:`bot.recipients.EmailAddress`); "" for answers saved before it was kept, which
    then match no agreement."""
    return str((state.recipient or {}).get("email_domain") or "")


def needs_approval(state: State, ctx: TurnContext) -> bool:
    """Whether the policy wants an approver: by level, and for ``without-agreement`` by the
    recipient's validated email domain (never the organisation name the sender typed)."""
    return ctx.policy.approval_required(chosen_level(state, ctx),
                                        email_domain=recipient_email_domain(state))


def approval_basis(state: State, ctx: TurnContext) -> dict[str, Any]:
    """What the approval decision rests on, for the record: the level's rule, whether an
    approver is needed, and the information-sharing agreement (a domain) that matched."""
    return {"rule": chosen_level(state, ctx).approval, "required": needs_approval(state, ctx),
            "sharing_agreement": ctx.policy.sharing_agreement_for(
                recipient_email_domain(state))}


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


def delivery_texts(state: State, ctx: TurnContext) -> tuple[str, str]:
    """How the archive goes and how its password does, as the summary words them."""
    method_labels = {o.value: o.label for o in password_options(state, ctx)}
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
