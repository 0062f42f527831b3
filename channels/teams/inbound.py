"""Teams activities read into what the core understands, and nothing more.

``parse_activity`` refuses a malformed request body with a reason (the route answers 400);
``refusal`` says why a well-formed, even correctly signed, activity is still not taken: it
is not from Teams (Web Chat, Direct Line and the Emulator are other channels of the same
bot registration) or its ``serviceUrl`` is not a Bot Connector host (:mod:`bot.egress`);
``tenant_refusal`` refuses activities from a Microsoft 365 tenant not in ``TEAMS_TENANT_IDS``;
``is_personal`` keeps everything but a personal chat from acting as a Teams user;
``read_submission`` turns a submitted card into the answer and the question it names;
``remote_files`` lists the files attached in a personal chat.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity
from yarl import URL

from bot.egress import Destination, EgressPolicy
from bot.messages import teams as msg
from bot.messages.words import labelled
from bot.policy_rules import TEAMS_PREFIX, canonical_user_id
from channels.egress import EgressRefused, check_url
from channels.teams import cards

MAX_ID = 200
MAX_USER_ID = 190           # the core keeps "teams:" + this in a 200-character column
MAX_CONVERSATION_ID = 290   # the core keeps "teams:" + this in a 300-character column
MAX_TEXT = 30_000
MAX_FIELDS = 30
MAX_VALUE = 5_000
TEAMS_CHANNEL = "msteams"
PERSONAL = "personal"


class InvalidActivity(ValueError):
    """The request body is not an activity Safe Haven can act on."""


# Ids and names are keys, database values and (the conversation id) an HTTP header of the
# reply: no control characters and no unpaired surrogates (which JSON escapes can carry and
# no encoder will write). Free text (``text``) is left to the core, which makes it storable.
_NOT_IN_IDS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _text(body: Mapping[str, Any], key: str, *, limit: int, required: bool = True,
          free: bool = False) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise InvalidActivity(f"{key} must be a string of at most {limit} characters")
    if not free and _NOT_IN_IDS.search(value):
        raise InvalidActivity(f"{key} must not contain control characters")
    return value


def _not_a_dot_segment(value: str, key: str) -> None:
    """Ids go into the reply's URL (``/v3/conversations/{id}/activities/{id}``), where
    ``.`` or ``..`` would be a dot segment the URL drops: the reply would go elsewhere."""
    if value in (".", ".."):
        raise InvalidActivity(f"{key} must not be {value!r}")


def _account(body: Mapping[str, Any], key: str) -> None:
    account = body.get(key)
    if not isinstance(account, dict):
        raise InvalidActivity(f"{key} must be an object")
    _text(account, "id", limit=MAX_USER_ID)
    _text(account, "aadObjectId", limit=MAX_USER_ID, required=False)


def parse_activity(body: object) -> Activity:
    """Check the fields Safe Haven relies on, then let botbuilder read the rest."""
    if not isinstance(body, dict):
        raise InvalidActivity("the body must be a JSON object")
    _text(body, "type", limit=64)
    _text(body, "channelId", limit=64)
    _not_a_dot_segment(_text(body, "id", limit=MAX_ID, required=False), "id")
    _text(body, "replyToId", limit=MAX_ID, required=False)
    _text(body, "text", limit=MAX_TEXT, required=False, free=True)
    _text(body, "name", limit=MAX_ID, required=False)
    service_url = _text(body, "serviceUrl", limit=2000)
    try:
        url = URL(service_url)
    except ValueError:
        raise InvalidActivity("serviceUrl is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidActivity("serviceUrl must be an http(s) URL")
    conversation = body.get("conversation")
    if not isinstance(conversation, dict):
        raise InvalidActivity("conversation must be an object")
    conversation_id = _text(conversation, "id", limit=MAX_CONVERSATION_ID)
    try:  # botbuilder sends it back as a header (x-ms-conversation-id), which is Latin-1
        conversation_id.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidActivity("conversation.id must be Latin-1 text") from None
    if conversation_id[0].isspace():  # ... and no header value may start with whitespace
        raise InvalidActivity("conversation.id must not start with whitespace")
    _not_a_dot_segment(conversation_id, "conversation.id")
    _text(conversation, "conversationType", limit=64, required=False)
    _account(body, "from")
    _account(body, "recipient")
    attachments = body.get("attachments")
    if attachments is not None and not (
            isinstance(attachments, list) and all(isinstance(a, dict) for a in attachments)):
        raise InvalidActivity("attachments must be a list of objects")
    try:
        activity = Activity().deserialize(body)
    except Exception as exc:  # msrest raises several kinds for wrongly typed fields
        raise InvalidActivity(f"not a Bot Framework activity ({type(exc).__name__})") from None
    if not activity.type or activity.conversation is None or activity.from_property is None:
        raise InvalidActivity("not a Bot Framework activity")
    return activity


def refusal(activity: Activity, egress: EgressPolicy) -> str | None:
    """Why this activity is not taken at all (None: it is). Checked before anything acts on
    it, whether or not it was signed: a token proves the Bot Framework sent it, not that
    Teams did, nor that replies may go to its ``serviceUrl``."""
    if activity.channel_id != TEAMS_CHANNEL:
        return f"channelId is not {TEAMS_CHANNEL!r}"
    try:
        check_url(egress, Destination.TEAMS_CONNECTOR, activity.service_url or "")
    except EgressRefused as exc:
        return f"serviceUrl refused: {exc}"
    return None


def tenant_refusal(body: Mapping[str, Any], tenant_ids: tuple[str, ...], *,
                   authenticated: bool) -> str | None:
    """Why an activity's tenant is not served (None: it is). Anyone can add a bot to their
    own organisation's Teams by its id, and Microsoft signs their activities as it signs
    ours. Every place the body names a tenant (``channelData.tenant.id``,
    ``conversation.tenantId``, and ``conversation.tenantID``, which botbuilder reads) must
    name the same one, listed. With no list (``TEAMS_AUTH=off`` only) every tenant is
    served; with credentials and no list, none."""
    if not tenant_ids:
        return "TEAMS_TENANT_IDS is not set" if authenticated else None
    data, conversation = body.get("channelData"), body.get("conversation")
    tenant = data.get("tenant") if isinstance(data, dict) else None
    named = {tenant.get("id") if isinstance(tenant, dict) else None}
    if isinstance(conversation, dict):
        named |= {conversation.get("tenantId"), conversation.get("tenantID")}
    named.discard(None)
    if not named:
        return "it names no tenant"
    if len(named) > 1:
        return "it names more than one tenant"
    tenant_id = named.pop()
    if not isinstance(tenant_id, str) or tenant_id.strip().lower() not in tenant_ids:
        return "its tenant is not in TEAMS_TENANT_IDS"
    return None


def user_id(activity: Activity) -> str:
    """``teams:<Microsoft Entra object id>`` in lower case, the form policies name people
    in (:func:`bot.policy_rules.canonical_user_id`); the channel account id when there is none."""
    sender = activity.from_property
    return canonical_user_id(f"{TEAMS_PREFIX}{sender.aad_object_id or sender.id}")


def conversation_id(activity: Activity) -> str:
    return f"teams:{activity.conversation.id}"


def conversation_reference(activity: Activity) -> dict[str, Any]:
    """Where to reach the sender of ``activity`` later, as JSON (without the activity id,
    so the stored reference only changes when the conversation does)."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    data: dict[str, Any] = reference.serialize()
    return data


def is_personal(activity: Activity) -> bool:
    """A one-to-one chat with the bot; a missing ``conversationType`` is not one."""
    conversation = activity.conversation
    kind = (conversation.conversation_type or "").lower()
    return kind == PERSONAL and not conversation.is_group


# --- submitted cards -------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    question: str
    value: str | dict[str, str]
    title: str
    shown: tuple[str, ...]   # the answer as the record card shows it
    reason: str = ""


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value[:MAX_VALUE]
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


def read_submission(value: object) -> Submission | None:
    """The answer a submitted Safe Haven card carries, or None if it is not one."""
    if not isinstance(value, dict) or len(value) > MAX_FIELDS:
        return None
    question = value.get(cards.Q)
    if not isinstance(question, str) or not 0 < len(question) <= 120:
        return None
    title = _as_text(value.get(cards.TITLE))[:200] or question
    raw_labels = value.get(cards.LABELS)
    labels = {str(k): _as_text(v) for k, v in raw_labels.items()} if isinstance(
        raw_labels, dict) else {}
    reason = " ".join(_as_text(value.get(cards.REASON)).split())
    picked = value.get(cards.V)
    if isinstance(picked, str) and picked:
        # A multi-select ChoiceSet sends its ticked values separated by commas.
        shown = ", ".join(labels.get(p, p) for p in picked.split(",")) if "," in picked \
            else labels.get(picked, picked)
        return Submission(question, picked[:MAX_VALUE if "," in picked else MAX_ID], title,
                          (shown,), reason)
    if cards.DATE in value or cards.TIME in value:  # a date-time card's two inputs
        when = f"{_as_text(value.get(cards.DATE)).strip()} " \
               f"{_as_text(value.get(cards.TIME)).strip()}".strip()
        return Submission(question, when, title, (when,))
    if cards.TEXT in value:
        text = _as_text(value.get(cards.TEXT))
        shown = text if len(text) <= 300 else text[:297] + "…"
        return Submission(question, text, title, (shown,))
    fields = {k: _as_text(v) for k, v in value.items() if not k.startswith("sh_")}
    raw_choices = value.get(cards.CHOICES)
    choices = raw_choices if isinstance(raw_choices, dict) else {}
    shown_lines = tuple(
        msg.ANSWERED_FIELD.format(label=labelled(labels.get(k, k)),
                                  value=_shown(v, choices.get(k)))
        for k, v in fields.items() if v.strip())
    return Submission(question, fields, title, shown_lines or ("",))


def _shown(value: str, options: object) -> str:
    """A form field's answer as the person saw it: a picked option's label (not its value,
    "no"), a typed value on one line, clipped."""
    if isinstance(options, dict):
        value = _as_text(options.get(value)) or value
    value = " ".join(value.split())
    return value if len(value) <= 200 else value[:199] + "…"


# --- files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str


def remote_files(activity: Activity) -> tuple[list[RemoteFile], int]:
    """Files sent with the paperclip, and how many other attachments came with them
    (pasted pictures, cards) that cannot be taken. Whether a ``downloadUrl`` may be fetched
    is decided when it is fetched (:mod:`channels.egress`)."""
    files: list[RemoteFile] = []
    others = 0
    for attachment in activity.attachments or []:
        content = attachment.content if isinstance(attachment.content, dict) else {}
        url = content.get("downloadUrl")
        name = (attachment.name or "file")[:255]
        if attachment.content_type == cards.FILE_DOWNLOAD and isinstance(url, str) and url:
            files.append(RemoteFile(name=name, url=url))
        elif attachment.content_type != "text/html":  # Teams adds the message as HTML too
            others += 1
    return files, others
