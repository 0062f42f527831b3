"""The Block Kit guard: what Slack would refuse (or silently cut) in a payload the bot sends.

Every message (``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``) and view
(``views.open``, ``views.update``, ``views.push``) is parsed with ``slack_sdk.models``
(:class:`Block`, :class:`View`) and checked with their ``validate_json()``,
which enforce Slack's documented limits on text lengths, element counts and ids. A key or
element the models do not know is reported too (the models drop it silently; Slack refuses
it). On top, the limits the models leave out: 50 blocks a message and 100 a modal, non-empty
text objects, unique ``block_id`` in a payload and ``action_id`` in a block, button values of
at most 2000 characters, a fallback ``text`` beside blocks (short enough for a notification),
and modal title, submit and close of at most 24 characters.

:class:`tests.support.fake_slack.FakeSlack` runs :func:`problems` on every call it receives,
so every Slack test is a guard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})
VIEW_METHODS = frozenset({"views.open", "views.update", "views.push"})

MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
SECTION_TEXT = 3000
FALLBACK_TEXT = 2000  # the notification text beside blocks: a summary, not the message
MESSAGE_TEXT = 4000  # Slack's advice for text alone; it cuts at 40,000
ID_LENGTH = 255
BUTTON_VALUE = 2000
MODAL_LABEL = 24


def problems(method: str, params: dict[str, Any]) -> list[str]:
    """What is wrong with the Block Kit in one Web API call (empty: nothing, or not Block
    Kit)."""
    if method in MESSAGE_METHODS:
        return message_problems(_loaded(params.get("blocks")), params.get("text"))
    if method in VIEW_METHODS:
        view = _loaded(params.get("view"))
        return view_problems(view) if isinstance(view, dict) else ["view: not an object"]
    return []


def message_problems(blocks: Any, text: Any) -> list[str]:
    found: list[str] = []
    blocks = blocks or []
    if not isinstance(blocks, list):
        return ["blocks: not a list"]
    if len(blocks) > MESSAGE_BLOCKS:
        found.append(f"{len(blocks)} blocks in a message (at most {MESSAGE_BLOCKS})")
    text = "" if text is None else str(text)
    if blocks:
        if not text.strip():
            found.append("no fallback text beside the blocks (notifications show nothing)")
        elif len(text) > FALLBACK_TEXT:
            found.append(f"fallback text of {len(text)} characters (at most {FALLBACK_TEXT})")
    elif not text.strip():
        found.append("a message with neither text nor blocks")
    elif len(text) > MESSAGE_TEXT:
        found.append(f"text of {len(text)} characters (at most {MESSAGE_TEXT})")
    return found + _blocks_problems(blocks)


def view_problems(view: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if view.get("type") != "modal":
        found.append(f"view type {view.get('type')!r} (the bot opens modals)")
    for key in ("title", "submit", "close"):
        label = view.get(key)
        if label is None:
            if key == "title":
                found.append("modal without a title")
            continue
        if not isinstance(label, dict) or label.get("type") != "plain_text":
            found.append(f"modal {key}: not a plain_text object")
            continue
        if len(str(label.get("text", ""))) > MODAL_LABEL:
            found.append(f"modal {key} {label.get('text')!r} over {MODAL_LABEL} characters")
    blocks = view.get("blocks") or []
    if not isinstance(blocks, list):
        return [*found, "view blocks: not a list"]
    if len(blocks) > MODAL_BLOCKS:
        found.append(f"{len(blocks)} blocks in a modal (at most {MODAL_BLOCKS})")
    if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) \
            and view.get("submit") is None:
        found.append("a modal with inputs but no submit button")
    found += _blocks_problems(blocks)
    known = set(View(type="modal").attributes) | {"id"}
    found += [f"view: unknown key {key!r}" for key in view if key not in known]
    if not found:
        found += _validated(lambda: View(**view).validate_json(), "view")
    return found


def ack_problems(view: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    """What Slack would refuse in the acknowledgement of a modal's submission: an error
    for a block that is not one of the modal's inputs, or an empty one; a view to show
    instead is checked as any view."""
    action = answer.get("response_action")
    if action == "errors":
        inputs = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
        errors = answer.get("errors") or {}
        return [f"error for {key!r}, not an input of the modal" for key in errors
                if key not in inputs] + [f"empty error for {key!r}" for key, text in errors.items()
                                         if not str(text).strip()]
    if action in ("update", "push"):
        return view_problems(answer.get("view") or {})
    return []


def _blocks_problems(blocks: list[Any]) -> list[str]:
    found: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block {index}"
        if not isinstance(block, dict):
            found.append(f"{where}: not an object")
            continue
        where = f"block {index} ({block.get('type')})"
        try:
            parsed = Block.parse(dict(block))
        except (SlackObjectFormationError, TypeError, ValueError, KeyError,
                AttributeError) as error:
            found.append(f"{where}: {error}")
            continue
        if parsed is None:
            found.append(f"{where}: unknown block type {block.get('type')!r}")
            continue
        try:
            rendered = parsed.to_dict()  # validate_json() on the block and all it holds
        except (SlackObjectFormationError, TypeError, ValueError, KeyError,
                AttributeError) as error:
            found.append(f"{where}: {error}")
        else:
            found += [f"{where}: {p}" for p in _dropped(block, rendered)]
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                found.append(f"{where}: block_id {block_id!r} used twice")
            block_ids.add(block_id)
            if len(str(block_id)) > ID_LENGTH:
                found.append(f"{where}: block_id over {ID_LENGTH} characters")
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict) \
                and len(str(text.get("text", ""))) > SECTION_TEXT:
            found.append(f"{where}: section text over {SECTION_TEXT} characters")
        action_ids: set[str] = set()
        for element in _elements(block):
            action_id = element.get("action_id")
            if action_id is None:
                continue
            if action_id in action_ids:
                found.append(f"{where}: action_id {action_id!r} used twice")
            action_ids.add(action_id)
            if len(str(action_id)) > ID_LENGTH:
                found.append(f"{where}: action_id over {ID_LENGTH} characters")
            if element.get("type") == "button" \
                    and len(str(element.get("value", ""))) > BUTTON_VALUE:
                found.append(f"{where}: button {action_id!r} value over {BUTTON_VALUE} "
                             "characters")
        found += [f"{where}: empty text at {path}" for path in _empty_texts(block, "")]
    return found


def _elements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for element in block.get("elements") or []:
        if isinstance(element, dict):
            yield element
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            yield block[key]


def _empty_texts(value: Any, path: str) -> Iterator[str]:
    """Text objects whose text is empty (Slack: "must be more than 0 characters")."""
    if isinstance(value, dict):
        if value.get("type") in ("plain_text", "mrkdwn") and not str(value.get("text", "")):
            yield path or "."
        for key, inner in value.items():
            yield from _empty_texts(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _empty_texts(inner, f"{path}[{index}]")


def _dropped(original: Any, rendered: Any, path: str = "") -> Iterator[str]:
    """Keys or list items of ``original`` the models did not keep: unknown to them (and to
    Slack, which refuses them)."""
    if isinstance(original, dict):
        if not isinstance(rendered, dict):
            yield f"{path or '.'} not understood"
            return
        for key, inner in original.items():
            if key not in rendered:
                yield f"unknown key {path}.{key}"
            else:
                yield from _dropped(inner, rendered[key], f"{path}.{key}")
    elif isinstance(original, list):
        if not isinstance(rendered, list) or len(rendered) != len(original):
            yield f"{path} has items the models do not know"
            return
        for index, (inner, out) in enumerate(zip(original, rendered, strict=True)):
            yield from _dropped(inner, out, f"{path}[{index}]")


def _validated(check: Any, what: str) -> list[str]:
    try:
        check()
    except SlackObjectFormationError as error:
        return [f"{what}: {error}" if what else str(error)]
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        return [f"{what}: malformed ({error})" if what else f"malformed ({error})"]
    return []


def _loaded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
