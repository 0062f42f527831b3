"""The password call, step by step: greeting, code check, the password, "press 1 to repeat".

Each step answers a signed provider request with the neutral actions of ``bot/calls.py``
(``channels/twilio`` renders them). A person is asked for the code the sender was given; only
the right code, on the call this send placed, hears the password, and too many wrong
codes end the send. A machine hears nothing. A call whose placing was left
``unconfirmed`` is adopted by the first signed step naming it (see ``reconcile``).
A non-interactive transport (the development console) gets :func:`call_script` instead.
"""

from __future__ import annotations

import hmac

from bot.calls import CallAction, Gather, GatherStep, Hangup, Pause, Say
from bot.messages import delivery as dmsg
from bot.messages import transfers as msg
from bot.near_misses import NearMiss, NearMissKind
from bot.passwords import spell_for_voice
from bot.replies import MistakeButton, Reply, Text
from bot.statuses import SendKind, SendStatus
from handlers import near_misses
from handlers.password_sends.outcomes import adopt, adoptable, by_id, is_machine, phone_of
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.repositories import PasswordSendRecord as Send


def call_script(*, organisation: str, reference: str, code: str, password: str) -> list[str]:
    """What a non-interactive transport says (development console). The interactive Twilio
    call follows the same order through :func:`call_answered` and :func:`call_code`."""
    return [
        dmsg.CALL_GREETING.format(organisation=organisation),
        dmsg.CALL_ASK_CODE,
        f"[recipient keys in {code}: correct]",
        dmsg.CALL_PASSWORD_INTRO.format(reference=" ".join(reference)),
        *spell_for_voice(password),
        dmsg.CALL_REPEAT_PROMPT,
    ]


def _ask_code(svc: Services, *, first: bool) -> list[CallAction]:
    greeting: list[Say | Pause] = [Say(dmsg.CALL_GREETING.format(
        organisation=svc.policy.organisation)), Pause(1)] if first else []
    return [Gather(GatherStep.CODE, 6, (*greeting, Say(dmsg.CALL_ASK_CODE))),
            Say(dmsg.CALL_NO_CODE), Gather(GatherStep.CODE, 6, (Say(dmsg.CALL_ASK_CODE),)),
            Say(dmsg.CALL_GOODBYE), Hangup()]


async def call_answered(svc: Services, *, delivery_id: int, call_sid: str,
                        answered_by: str | None) -> list[CallAction]:
    """The call connected. A machine gets nothing; a person is asked for the code first.
    A call whose placing was left ``unconfirmed`` is adopted here (the signed request names
    the send in its URL, which only our create request for it gave Twilio)."""
    now = svc.clock()
    calling: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await by_id(session, delivery_id)
        if d is not None and d.kind == SendKind.VOICE and await adoptable(session, d, call_sid):
            transfer = await repo.get_transfer(session, reference=d.reference)
            d = await adopt(session, svc, d, call_sid, transfer=transfer, actor="twilio",
                            by="call webhook", now=now)
            if transfer is not None and d is not None:
                calling = (transfer.sender_id, Text(dmsg.RECEIPT_CALLING.format(
                    reference=d.reference, phone=phone_of(transfer, d))), d.reference)
        if d is None or d.kind != SendKind.VOICE or d.provider_sid != call_sid \
                or d.status != SendStatus.SENT:
            return [Hangup()]
        machine = is_machine(answered_by)
        if machine:
            await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENT,), now=None,
                                 last_error=dmsg.RECEIPT_MACHINE)
            await audit.append(session, at=now, actor="twilio", action="call_machine",
                               reference=d.reference, details={"answered_by": answered_by})
        else:
            await audit.append(session, at=now, actor="twilio", action="call_answered",
                               reference=d.reference, details={"answered_by": answered_by})
    if calling is not None:
        await svc.notifier.notify(calling[0], [calling[1]], reference=calling[2])
    return [Hangup()] if machine else _ask_code(svc, first=True)


async def call_machine_verdict(svc: Services, *, delivery_id: int, call_sid: str,
                               answered_by: str) -> bool:
    """The asynchronous answering-machine verdict on a direct call that is already speaking.
    It ends nothing: the code check keeps the password from a machine, and a person judged
    a machine by mistake must still hear the call. A machine verdict only tells the sender,
    should no code come back, why. False if it matches no call of ours."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        d = await by_id(session, delivery_id)
        if d is None or d.kind != SendKind.VOICE or d.provider_sid != call_sid:
            return False
        machine = is_machine(answered_by)
        await audit.append(session, at=now, actor="twilio",
                           action="call_machine" if machine else "call_machine_check",
                           reference=d.reference, details={"answered_by": answered_by[:40],
                                                           "detection": "async"})
        if machine:
            await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENT,), now=now,
                                 last_error=dmsg.RECEIPT_MACHINE)
    return True


async def _spell(svc: Services, d: Send, sealed: str) -> list[CallAction]:
    password = svc.vault.open(sealed, reference=d.reference)
    actions: list[CallAction] = [Say(dmsg.CALL_PASSWORD_INTRO.format(
        reference=" ".join(d.reference)))]
    for phrase in spell_for_voice(password):
        actions += [Say(phrase), Pause(1)]
    del password
    actions += [Gather(GatherStep.REPEAT, 1, (Say(dmsg.CALL_REPEAT_PROMPT),)),
                Say(dmsg.CALL_GOODBYE), Hangup()]
    return actions


async def call_code(svc: Services, *, delivery_id: int, call_sid: str, digits: str
                    ) -> list[CallAction]:
    """The recipient keyed in a code. Only the right code, on this call, hears the password."""
    now = svc.clock()
    alert: tuple[str, Reply, str] | None = None
    read_out = False  # the password was read out: its receipt carries the mistake button
    async with svc.db.transaction() as session:
        d = await by_id(session, delivery_id)
        if d is None or d.kind != SendKind.VOICE or d.provider_sid != call_sid \
                or d.status != SendStatus.SENT:
            return [Hangup()]
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        expected = (transfer.call_code or "").encode()
        if expected and hmac.compare_digest(digits.strip().encode(), expected):
            if transfer.password_sealed is None:
                return [Say(dmsg.CALL_GOODBYE), Hangup()]
            if await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENT,),
                                    now=now, verified_call_sid=call_sid,
                                    status=SendStatus.DELIVERED) is None:
                return [Hangup()]
            await audit.append(session, at=now, actor="twilio", action="password_delivered",
                               reference=d.reference, details={
                                   "method": "voice", "code_check": "passed",
                                   "phone": (transfer.recipient or {}).get("phone_display")})
            actions = await _spell(svc, d, transfer.password_sealed)
            read_out = True
            alert = (transfer.sender_id, Text(msg.PASSWORD_SENT.format(
                reference=d.reference, how=dmsg.HOW_VOICE,
                phone=(transfer.recipient or {}).get("phone_display", d.phone))), d.reference)
        else:
            counted = await repo.count_wrong_code(session, send_id=d.id)
            if counted is None:
                return [Hangup()]
            d = counted
            # A near miss, with the attempt number and never the digits keyed in.
            await near_misses.record(session, svc, at=now, actor="twilio", near_miss=NearMiss(
                NearMissKind.WRONG_CALL_CODE, "wrong code keyed in on the password call",
                d.reference, {"attempt": d.code_failures,
                              "attempts_allowed": svc.policy.delivery.code_attempts}))
            if d.code_failures < svc.policy.delivery.code_attempts:
                return [Say(dmsg.CALL_WRONG_CODE), *_ask_code(svc, first=False)]
            await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENT,), now=now,
                                 status=SendStatus.FAILED, last_error="wrong code")
            await audit.append(session, at=now, actor="twilio", action="password_failed",
                               reference=d.reference, details={
                                   "method": "voice", "detail": "wrong code too many times"})
            phone = (transfer.recipient or {}).get("phone_display", d.phone)
            alert = (transfer.sender_id, Text(dmsg.RECEIPT_WRONG_CODE.format(
                reference=d.reference, phone=phone, count=d.code_failures)), d.reference)
            actions = [Say(dmsg.CALL_TOO_MANY), Hangup()]
    if alert is not None:
        # The password read out: the receipt carries the button that reports a mistake.
        button = [MistakeButton(alert[2])] if read_out else []
        await svc.notifier.notify(alert[0], [alert[1], *button], reference=alert[2])
    return actions


async def call_repeat(svc: Services, *, delivery_id: int, call_sid: str, digits: str
                      ) -> list[CallAction]:
    """The recipient asked to hear the password again (only on the call that passed the
    code check)."""
    async with svc.db.read() as session:
        d = await by_id(session, delivery_id)
        if d is None or d.verified_call_sid != call_sid or digits.strip() != "1":
            return [Say(dmsg.CALL_GOODBYE), Hangup()]
        transfer = await repo.get_transfer(session, reference=d.reference)
    if transfer is None or transfer.password_sealed is None:
        return [Say(dmsg.CALL_GOODBYE), Hangup()]
    return await _spell(svc, d, transfer.password_sealed)
