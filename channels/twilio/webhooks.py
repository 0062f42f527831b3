"""Twilio webhooks on the aiohttp server: status callbacks, call steps, SMS replies.

Every request must carry a valid ``X-Twilio-Signature`` computed over the public URL (with
its query string: SMS status callbacks name their send as ``?d=<id>``) and the form;
anything else gets 403 and changes nothing. Behind a proxy that serves the app under a path
prefix (``https://host/safehaven/`` forwarded to ``http://127.0.0.1:3978/``), Twilio signs
``https://host/safehaven/twilio/...`` and the app sees ``/twilio/...``: the expected URL is
``SAFEHAVEN_PUBLIC_URL`` (prefix included) plus the path the app sees. Every URL Twilio is
given, TwiML included, is absolute and made by :meth:`TwilioSettings.url`. The handlers only
translate: form fields in, neutral call actions (``bot/calls.py``) out, rendered as TwiML;
the decisions are in handlers/password_sends/ (``callbacks``, ``calls``, ``sms_replies``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from bot.calls import CallAction, Gather, GatherStep, Hangup, Pause, Say
from bot.near_misses import WebhookChannel
from channels.twilio.settings import TwilioSettings
from handlers.password_sends import callbacks, calls, sms_replies
from handlers.services import Services

log = logging.getLogger(__name__)
TWILIO_SETTINGS = web.AppKey("twilio_settings", TwilioSettings)
SERVICES = web.AppKey("twilio_services", Services)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type="application/xml",
                        headers={"Cache-Control": "no-store"})


def render_call(actions: Sequence[CallAction], *, svc: Services, settings: TwilioSettings,
                delivery_id: int) -> str:
    rules = svc.policy.delivery
    voice = VoiceResponse()

    def add(target: VoiceResponse, action: Say | Pause) -> None:
        if isinstance(action, Say):
            target.say(action.text, voice=rules.voice_name, language=rules.voice_language)
        else:
            target.pause(length=action.seconds)

    for action in actions:
        if isinstance(action, Gather):
            gather = voice.gather(num_digits=action.digits, timeout=action.timeout_seconds,
                                  action=settings.url(
                                      f"/twilio/voice/{delivery_id}/{action.step}"),
                                  method="POST", finish_on_key="#")
            for part in action.prompt:
                add(gather, part)
        elif isinstance(action, Hangup):
            voice.hangup()
        else:
            add(voice, action)
    return str(voice)


@web.middleware
async def verify_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/twilio/"):
        return await handler(request)
    settings = request.app[TWILIO_SETTINGS]
    try:
        form = await request.post() if request.method == "POST" else {}
    except (ValueError, HttpProcessingError):  # undecodable or broken: not from Twilio
        return web.Response(status=400, text="malformed form body")
    signature = request.headers.get("X-Twilio-Signature", "")
    url = settings.public_url + request.path_qs  # the prefix was stripped by the proxy
    params = {k: str(v) for k, v in form.items()}
    if not signature or not RequestValidator(settings.auth_token).validate(url, params,
                                                                           signature):
        log.warning("refused a Twilio webhook with a missing or wrong signature: %s",
                    request.path)
        svc = request.app[SERVICES]
        svc.forged_requests.count(WebhookChannel.TWILIO, svc.clock())
        return web.Response(status=403, text="invalid signature")
    return await handler(request)


def _delivery_id(request: web.Request) -> int:
    try:
        return int(request.match_info["delivery_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _query_id(request: web.Request) -> int | None:
    """The send id our SMS status callback URLs carry (``?d=<id>``); it is covered by
    the signature, which Twilio computes over the full URL with its query string."""
    value = request.query.get("d", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None


async def sms_status(request: web.Request) -> web.Response:
    form = await request.post()
    await callbacks.sms_status(request.app[SERVICES],
                               provider_sid=str(form.get("MessageSid", "")),
                               status=str(form.get("MessageStatus", "")).lower(),
                               error=str(form.get("ErrorCode") or "") or None,
                               delivery_id=_query_id(request),
                               to=str(form.get("To") or "") or None)
    return web.Response(status=204)


async def sms_inbound(request: web.Request) -> web.Response:
    form = await request.post()
    await sms_replies.sms_reply(request.app[SERVICES], from_phone=str(form.get("From", "")),
                                body=str(form.get("Body", ""))[:500])
    return _twiml(str(MessagingResponse()))


async def voice_step(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    delivery_id = _delivery_id(request)
    form = await request.post()
    call_sid = str(form.get("CallSid", ""))
    step = request.match_info["step"]
    actions: list[CallAction]
    if step == "answer":
        actions = await calls.call_answered(svc, delivery_id=delivery_id, call_sid=call_sid,
                                            answered_by=str(form.get("AnsweredBy") or "")
                                            or None)
    elif step == GatherStep.CODE:
        actions = await calls.call_code(svc, delivery_id=delivery_id, call_sid=call_sid,
                                        digits=str(form.get("Digits", "")))
    elif step == GatherStep.REPEAT:
        actions = await calls.call_repeat(svc, delivery_id=delivery_id, call_sid=call_sid,
                                          digits=str(form.get("Digits", "")))
    elif step == "amd":  # the asynchronous answering-machine verdict
        await calls.call_machine_verdict(svc, delivery_id=delivery_id, call_sid=call_sid,
                                         answered_by=str(form.get("AnsweredBy") or ""))
        return web.Response(status=204)
    elif step == "status":
        await callbacks.call_status(svc, delivery_id=delivery_id, call_sid=call_sid,
                                    status=str(form.get("CallStatus", "")).lower(),
                                    answered_by=str(form.get("AnsweredBy") or "") or None)
        return web.Response(status=204)
    else:
        raise web.HTTPNotFound()
    return _twiml(render_call(actions, svc=svc, settings=request.app[TWILIO_SETTINGS],
                              delivery_id=delivery_id))


def mount_twilio(app: web.Application, svc: Services, settings: TwilioSettings) -> None:
    """Add the signed ``/twilio/...`` webhooks to the application."""
    app[SERVICES] = svc
    app[TWILIO_SETTINGS] = settings
    app.middlewares.append(verify_signature)
    app.router.add_post("/twilio/sms/status", sms_status)
    app.router.add_post("/twilio/sms/inbound", sms_inbound)
    app.router.add_post("/twilio/voice/{delivery_id}/{step}", voice_step)
