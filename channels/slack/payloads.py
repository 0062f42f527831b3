"""Which Slack payloads the channel accepts: the shapes of the fields bolt's routing code
and the listeners read, and plausible Slack ids. Both doors use it, ``POST /slack/events``
(:mod:`channels.slack.http`, which answers 400 or 401) and Socket Mode
(:class:`channels.slack.middleware.CheckedSocketMode`, which drops the payload), so a payload
bolt would raise on, or whose background work would fail on, never reaches bolt:

* a payload whose fields do not have the shapes bolt's routing and the channel assume (an
  ``event`` that is null or not an object, ``actions`` that is not a list of objects, an
  ``action_id``, ``callback_id`` or event ``type`` that is not text, a message's ``files``
  that is not a list, a modal's ``state`` that is not Slack's objects of objects, ...);
* an id (of a person, conversation, workspace, organisation, app, event, trigger or message
  timestamp) that is not a plausible Slack id: Slack's ids are short ASCII words, so one
  with control characters or unpaired surrogates (which JSON escapes can carry and no
  encoder will write) never reaches the core, the database or a Web API call.

Pure: no I/O, no SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

# Fields bolt reads while routing a request, and the JSON types its code assumes for them.
_OBJECTS = ("event", "view", "message", "previous_message", "item", "assistant_thread",
            "function_data", "container", "state")
_OBJECT_OR_TEXT = ("user", "team", "channel", "enterprise")
_LISTS_OF_OBJECTS = ("actions", "authorizations")
# ... which bolt reads as ``body.get(key, {})``: present, they may not be null either.
_NOT_NULL = ("event", "view", "actions")

# Slack's ids (U0123ABCD, DUALICE01, T0001, E01, A0001, B01, Ev08ABC, a message's
# 1700000000.000100, a client_msg_id UUID, a trigger id 123.456.abc): ASCII letters and
# digits, with "." "-" "_". An empty id counts as absent (the channel ignores it).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_ID = 100
# Where ids are, by the object that holds them.
_ENTITY_IDS = ("id", "team_id", "enterprise_id")          # in user, team, channel, enterprise
_TOP_IDS = ("user_id", "team_id", "channel_id", "enterprise_id", "api_app_id", "event_id",
            "trigger_id", "context_team_id", "context_enterprise_id", "action_ts", "user_team")
_EVENT_IDS = ("ts", "thread_ts", "event_ts", "client_msg_id", "bot_id", "user_team",
              "source_team", "user_id", "channel_id", "team_id", "file_id")
_MESSAGE_IDS = ("ts", "thread_ts", "bot_id", "user_team")  # a message inside a payload
_CONTAINER_IDS = ("channel_id", "message_ts", "thread_ts", "view_id")
_VIEW_IDS = ("id", "team_id", "app_id", "bot_id", "app_installed_team_id", "root_view_id",
             "previous_view_id")
_AUTHORIZATION_IDS = ("team_id", "user_id", "enterprise_id")
# Names the channel routes on (action_id, block_id, callback_id, a payload's, view's or
# event's type): text of at most Slack's 255 characters, with no control characters and no
# unpaired surrogates (a block id carries a question id to the core, see
# channels.slack.blocks). The same goes for the URLs of a message's files, which the
# channel fetches.
_NOT_IN_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_NAME = 255
MAX_URL = 8000
MAX_METADATA = 3000     # Slack's limit for a view's private_metadata
_FILE_URLS = ("url_private_download", "url_private")


def _is_id(value: Any) -> bool:
    return value is None or value == "" or (
        isinstance(value, str) and len(value) <= MAX_ID and _ID.fullmatch(value) is not None)


def _ids(node: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return all(_is_id(node.get(key)) for key in keys)


def _is_name(value: Any, limit: int = MAX_NAME) -> bool:
    return isinstance(value, str) and len(value) <= limit \
        and _NOT_IN_NAMES.search(value) is None


def _names(node: Mapping[str, Any], keys: Iterable[str], *, required: bool = False) -> bool:
    """Each of ``keys`` a name, or absent (or null: bolt matches nothing on it) unless
    ``required``."""
    return all((node.get(key) is None and not required) or _is_name(node.get(key))
               for key in keys)


def _is_url(value: Any) -> bool:
    if value is None:
        return True
    if not _is_name(value, MAX_URL):
        return False
    try:
        _ = urlsplit(value).port  # raises on a malformed host or port
    except ValueError:
        return False
    return True


def _entity(value: Any) -> bool:
    """A person, conversation, workspace or organisation: an id, or an object with ids."""
    if isinstance(value, dict):
        return _ids(value, _ENTITY_IDS)
    return _is_id(value)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _shapes(body: Mapping[str, Any]) -> bool:
    """The JSON types bolt's own code assumes for the fields it reads."""
    if any(key in body and body[key] is None for key in _NOT_NULL):
        return False
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return False
    for key in _OBJECT_OR_TEXT:
        if not _entity(body.get(key)):
            return False
    return all(body.get(key) is None or _objects(body[key]) for key in _LISTS_OF_OBJECTS)


def _state(state: Any) -> bool:
    """A view's or a message's input state, ``{"values": {block: {action: element}}}``,
    with the element fields the channel reads (see inputs.form_values, picked_time)."""
    if state is None:
        return True
    if not isinstance(state, dict):
        return False
    values = state.get("values")
    if values is None:
        return True
    if not isinstance(values, dict):
        return False
    for block in values.values():
        if not isinstance(block, dict):
            return False
        for element in block.values():
            if not isinstance(element, dict):
                return False
            if not (element.get("value") is None or isinstance(element["value"], str)):
                return False
            if not (element.get("selected_option") is None
                    or isinstance(element["selected_option"], dict)):
                return False
            if not (element.get("selected_options") is None
                    or _objects(element["selected_options"])):
                return False
    return True


def _metadata(value: Any) -> bool:
    """A view's private_metadata: ours (see inputs.metadata), text Slack keeps for
    us; when it is a JSON object, its texts are ids and names, sent on to the core."""
    if value is None:
        return True
    if not isinstance(value, str) or len(value) > MAX_METADATA:
        return False
    try:
        data = json.loads(value)
    except RecursionError:
        return False
    except ValueError:
        return True  # not ours: the channel ignores it
    if not isinstance(data, dict):
        return True
    return all(_is_name(v) for v in data.values() if isinstance(v, str)) \
        and _ids(data, ("c", "ts"))


def _view(view: Mapping[str, Any], kind: Any) -> bool:
    if kind in ("view_submission", "view_closed") and not _names(
            view, ("type", "callback_id"), required=True):
        return False
    if not _names(view, ("type", "callback_id")) or not _ids(view, _VIEW_IDS):
        return False
    if not _state(view.get("state")) or not _metadata(view.get("private_metadata")):
        return False
    blocks = view.get("blocks")
    return blocks is None or (_objects(blocks) and all(_names(b, ("block_id",))
                                                       for b in blocks))


def _message(message: Any) -> bool:
    """A message inside a payload (a click's, an edit's): who sent it, when."""
    return not isinstance(message, dict) or (
        _entity(message.get("user")) and _ids(message, _MESSAGE_IDS))


def _event(event: Mapping[str, Any]) -> bool:
    if not (event.get("type") is None or _is_name(event["type"])):
        return False  # bolt matches event listeners on it, by regular expression too
    if "function" in event and not isinstance(event["function"], dict):
        return False  # bolt reads event.get("function", {}).get("callback_id")
    if not (_shapes({k: v for k, v in event.items()
                     if k in (*_OBJECT_OR_TEXT, "item", "message", "previous_message")})
            and _ids(event, _EVENT_IDS)):
        return False
    item = event.get("item")
    if isinstance(item, dict) and not (_entity(item.get("channel")) and _is_id(item.get("ts"))):
        return False
    if not (_message(event.get("message")) and _message(event.get("previous_message"))):
        return False
    files = event.get("files")
    if files is None:
        return True
    if not isinstance(files, list):
        return False  # the channel downloads each one
    # The channel sends a file's id to files.info and fetches its URL.
    return all(not isinstance(f, dict) or (
        _is_id(f.get("id")) and all(_is_url(f.get(k)) for k in _FILE_URLS)) for f in files)


def _interaction(body: Mapping[str, Any], kind: Any) -> bool:
    actions = body.get("actions")
    if kind == "block_actions":
        if not actions:
            return False  # bolt routes on actions[0]
        if not _names(actions[0], ("action_id",), required=True):
            return False  # ... by its action_id, by regular expression too
    for action in actions or ():
        if not (_names(action, ("action_id", "block_id")) and _is_id(action.get("action_ts"))):
            return False
    if kind == "block_suggestion" and not _names(body, ("action_id",), required=True):
        return False  # bolt's warning about an unhandled request concatenates it
    if kind == "workflow_step_edit" and "workflow_step" not in body:
        return False  # bolt reads it for every listener's arguments
    # bolt matches callback_id by regular expression (shortcuts, attachment actions,
    # dialogs, workflow steps) and the slash command by its name.
    return _names(body, ("callback_id", "action_id", "block_id", "command")) \
        and _state(body.get("state")) and _message(body.get("message")) \
        and (not isinstance(body.get("container"), dict) or _ids(body["container"],
                                                                   _CONTAINER_IDS))


def well_formed(body: Any) -> bool:
    """Whether a parsed payload has the shapes bolt's routing code and the channel rely
    on, and plausible Slack ids."""
    if not isinstance(body, dict) or not _shapes(body):
        return False
    kind = body.get("type")
    if not (kind is None or _is_name(kind)):
        return False
    if not (_ids(body, _TOP_IDS) and all(_ids(a, _AUTHORIZATION_IDS)
                                         for a in body.get("authorizations") or ())):
        return False
    view = body.get("view")
    if isinstance(view, dict):
        if not _view(view, kind):
            return False
        if kind == "view_submission" and view.get("type") == "workflow_step" \
                and "workflow_step" not in body:
            return False  # bolt reads it for every listener's arguments
    elif kind in ("view_submission", "view_closed"):
        return False
    event = body.get("event")
    if isinstance(event, dict) and not _event(event):
        return False
    return _interaction(body, kind)
