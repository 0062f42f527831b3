"""What the sender confirms: the summary before confirming, the transfer's record, and
whether (and on what basis) the share needs an approver.

:func:`summary_text` is the one screen shown at the confirm question; :func:`transfer_record`
is what is recorded for a confirmed share (never the password); :func:`needs_approval` and
:func:`approval_basis` apply the policy's approval rule to the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.agreements import AgreementCheck, AgreementGap
from bot.messages import agreements as agreements_msg
from bot.messages import conversation as msg
from bot.options import information_category_options, level_password_options
from bot.sizes import human_size
from bot.state import State, TurnContext, chosen_level
from bot.statuses import DeliveryMethod, PasswordMethod


def recipient_email_domain(state: State) -> str:
    """The recipient's email domain in ASCII, as validation resolved it (``email_domain``,
    :class:`bot.recipients.EmailAddress`); "" for answers saved before it was kept, which
    then match no agreement."""
    return str((state.recipient or {}).get("email_domain") or "")


def needs_approval(state: State, ctx: TurnContext) -> bool:
    """Whether the policy wants an approver: by level, by the kinds of information (special
    category data at a level with ``special_category_approval``), and for
    ``without-agreement`` by the recipient's validated email domain (never the organisation
    name the sender typed)."""
    return ctx.policy.approval_required(chosen_level(state, ctx),
                                        email_domain=recipient_email_domain(state),
                                        now=ctx.now, categories=state.information_categories)


def agreement_check(state: State, ctx: TurnContext) -> AgreementCheck:
    """Which live information-sharing agreement covers the share (recipient's validated
    email domain, classification, and the information categories once answered) at the
    engine's clock, or why none does."""
    return ctx.policy.agreement_check(chosen_level(state, ctx),
                                      email_domain=recipient_email_domain(state), now=ctx.now,
                                      categories=state.information_categories)


def approval_reason(state: State, ctx: TurnContext) -> str | None:
    """Why the share needs a manager's authorisation, in words for the sender, the approver
    and the record; None when the level's rule does not ask for one."""
    level = chosen_level(state, ctx)
    if level.special_category_approval \
            and ctx.policy.any_special(state.information_categories or ()):
        return msg.SPECIAL_CATEGORY_APPROVAL.format(classification=level.name)
    if level.approval == "always":
        return agreements_msg.ALWAYS.format(classification=level.name)
    if level.approval != "without-agreement":
        return None
    check = agreement_check(state, ctx)
    if check.covered:
        return None
    domain = recipient_email_domain(state) or agreements_msg.UNKNOWN_DOMAIN
    found = check.agreement
    if check.gap is AgreementGap.NO_AGREEMENT or found is None:
        return agreements_msg.NO_AGREEMENT.format(domain=domain, classification=level.name)
    if check.gap is AgreementGap.LAPSED:
        return agreements_msg.LAPSED.format(name=found.name, organisation=found.organisation,
                                            review_by=found.review_by.isoformat(),
                                            domain=domain)
    if check.gap is AgreementGap.CATEGORY:
        labels = {c.key: c.label for c in ctx.policy.information_categories}
        return agreements_msg.CATEGORY_NOT_COVERED.format(
            name=found.name, domain=domain, classification=level.name,
            categories=agreements_msg.CATEGORIES_JOIN.join(labels.get(k, k)
                                                           for k in check.categories))
    return agreements_msg.CLASSIFICATION_NOT_COVERED.format(name=found.name, domain=domain,
                                                            classification=level.name)


def approval_basis(state: State, ctx: TurnContext) -> dict[str, Any]:
    """What the approval decision rests on, for the record: the level's rule, whether an
    approver is needed and why, and the information-sharing agreement relied on (its name,
    reference, organisation and review-by date), or None with the gap (``agreement_gap``,
    :class:`bot.agreements.AgreementGap`) when none covered the share."""
    check = agreement_check(state, ctx)
    return {"rule": chosen_level(state, ctx).approval, "required": needs_approval(state, ctx),
            "special_category": ctx.policy.any_special(state.information_categories or ()),
            "reason": approval_reason(state, ctx),
            "sharing_agreement": check.agreement.record() if check.covered and check.agreement
            else None,
            "agreement_gap": check.gap.value if check.gap else None}


def transfer_record(state: State) -> dict[str, Any]:
    """The fields seed 001 asks to record for a share (never the password)."""
    recipient = state.recipient or {}
    return {
        "classification": state.classification,
        "information_categories": (list(state.information_categories)
                                   if state.information_categories is not None else None),
        "recipient": {
            "name": recipient.get("name"), "job_title": recipient.get("job_title"),
            "department": recipient.get("department") or "",
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
    method_labels = {o.value: o.label for o in level_password_options(state, ctx)}
    password = method_labels.get(state.password_method or "", state.password_method or "")
    if state.password_method == PasswordMethod.VOICE and state.call_at:
        local = datetime.fromisoformat(state.call_at).astimezone(ctx.policy.timezone)
        password += f", {local:%a %d %b %Y %H:%M} ({ctx.policy.timezone.key})"
    delivery = (msg.DELIVERY_PORTAL if state.delivery == DeliveryMethod.PORTAL
                else msg.DELIVERY_ARCHIVE)
    return delivery, password


def categories_text(state: State, ctx: TurnContext) -> str:
    """The kinds of information chosen, by their labels (special ones marked); "—" before
    the question is answered."""
    if not state.information_categories:
        return "—"
    labels = {o.value: o.label for o in information_category_options(ctx)}
    return ", ".join(labels.get(key, key) + (msg.SPECIAL_CATEGORY_SUFFIX
                                            if ctx.policy.any_special((key,)) else "")
                     for key in state.information_categories)


def job_and_department(recipient: Mapping[str, Any]) -> str:
    """The recipient's job title, with their department when one was given."""
    job, department = recipient.get("job_title") or "", recipient.get("department") or ""
    return f"{job} ({department})" if department else str(job)


def summary_text(state: State, ctx: TurnContext) -> str:
    """The one-screen summary shown to the sender before confirming."""
    recipient = state.recipient or {}
    consent = state.consent or {}
    delivery, password = delivery_texts(state, ctx)
    files = ", ".join(f"{f['name']} ({human_size(int(f['size']))})" for f in state.files)
    lines = [
        msg.SUMMARY_TITLE.format(reference=state.reference),
        msg.SUMMARY_LINES.format(
            files=files, classification=state.classification,
            categories=categories_text(state, ctx), name=recipient.get("name"),
            job_title=job_and_department(recipient),
            organisation=recipient.get("organisation"),
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
        reason = approval_reason(state, ctx)
        if reason:
            lines.append(agreements_msg.SUMMARY_APPROVAL_REASON.format(reason=reason))
    elif state.classification:
        check = agreement_check(state, ctx)
        found = check.agreement if check.covered else None
        lines.append(agreements_msg.SUMMARY_NO_APPROVAL_AGREEMENT.format(
            name=found.name, organisation=found.organisation,
            ref=agreements_msg.AGREEMENT_REF.format(reference=found.reference)
            if found.reference else "") if found else msg.SUMMARY_NO_APPROVAL)
    return "\n".join(lines)
