"""A Slack workspace for tests: the real aiohttp app with Slack mounted, a fake Slack Web API
on 127.0.0.1, and people who DM the bot, click buttons and fill in modals through genuinely
signed requests, so bolt's verification runs in every test.

``await alice.send_files(...)``, ``await alice.click("CONTROLLED")``, ``alice.text`` make a
Slack conversation read like the conversation it is. :class:`SlackChatUser` is the same
person as a :class:`~tests.support.chat.ChatUser`, for the scenarios run on every channel.
The fixtures (``fake_slack``, ``slack_policy``, ``workspace``) are imported by the conftest
of each folder that uses them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.plugins import route_notices
from bot.app.web import create_app
from bot.policy import load_policy
from bot.policy_rules import Policy
from channels.slack import plugin as slack_plugin
from channels.slack.channel import SlackChannel
from channels.slack.settings import SlackSettings
from handlers.notify import NotifierRouter
from handlers.services import Services
from tests.support import block_kit
from tests.support.chat import conversation_step
from tests.support.core import RecordingNotifier
from tests.support.fake_slack import TOKEN, FakeSlack, Message
from tests.support.fake_twilio import FakeTwilio

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVERS = ("slack:UBOSS01", "slack:UBOSS02")
_ids = itertools.count(1)


def signed(body: str, *, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    base = f"v0:{stamp}:{body}".encode()
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature}


def message_text(message: Message) -> str:
    parts: list[str] = []
    for block in message.blocks:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts += [e.get("text", "") for e in block.get("elements", [])]
    return "\n".join(parts) or message.text


def controls(message: Message) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(block, element) for every interactive element of a message."""
    return [(b, e) for b in message.blocks if b.get("type") == "actions"
            for e in b.get("elements", [])]


@pytest.fixture
def slack_policy(tmp_path: Path) -> Policy:
    """The default policy, with Slack approvers listed for every sender."""
    default = Path(__file__).resolve().parents[2] / "bot" / "policies" / "default.toml"
    text = default.read_text(encoding="utf-8")
    listed = ", ".join(f'"{a}"' for a in APPROVERS)
    text, count = re.subn(r'^"\*" = \[.*\]$', f'"*" = [{listed}]', text, flags=re.M)
    assert count == 1
    path = tmp_path / "policy-slack.toml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.close()
    fake.assert_block_kit()


class Workspace:
    def __init__(self, client: TestClient[Any, Any], channel: SlackChannel, fake: FakeSlack,
                 svc: Services) -> None:
        self.client = client
        self.channel = channel
        self.fake = fake
        self.svc = svc

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(self, user_id)

    async def settle(self) -> None:
        await self.channel.tasks.join()

    async def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
                   sign: bool = True, stamp: int | None = None, secret: str = SECRET
                   ) -> tuple[int, str]:
        all_headers = {"Content-Type": content_type, **(signed(body, secret=secret, stamp=stamp)
                                                         if sign else {}), **(headers or {})}
        response = await self.client.post("/slack/events", data=body.encode(),
                                          headers=all_headers)
        return response.status, await response.text()

    def event_body(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        return json.dumps({
            "token": "legacy", "team_id": "T0001", "api_app_id": "A0001",
            "type": "event_callback", "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T0001", "user_id": "UBOT0000", "is_bot": True}],
        })

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry: int | None = None, settle: bool = True) -> int:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} \
            if retry else None
        status, _ = await self.post(self.event_body(event, event_id=event_id),
                                    "application/json", headers=headers)
        if settle:
            await self.settle()
        return status

    async def interact(self, payload: dict[str, Any], *, settle: bool = True
                       ) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        result = await self.post(body, "application/x-www-form-urlencoded")
        if settle:
            await self.settle()
        return result

    async def command(self, user: str, text: str, *, channel_id: str | None = None
                      ) -> tuple[int, str]:
        body = urlencode({
            "token": "legacy", "team_id": "T0001", "team_domain": "example",
            "channel_id": channel_id or f"D{user}", "channel_name": "directmessage",
            "user_id": user, "user_name": user.lower(), "command": "/safehaven", "text": text,
            "api_app_id": "A0001", "response_url": f"{self.fake.url}/hooks/1",
            "trigger_id": f"tr-{next(_ids)}"})
        result = await self.post(body, "application/x-www-form-urlencoded")
        await self.settle()
        return result


class SlackUser:
    def __init__(self, workspace: Workspace, user_id: str) -> None:
        self.ws = workspace
        self.id = user_id
        self.dm = f"D{user_id}"

    # --- what they see ---------------------------------------------------------------------

    def messages(self) -> list[Message]:
        return self.ws.fake.in_channel(self.dm)

    @property
    def last(self) -> Message:
        return self.messages()[-1]

    @property
    def text(self) -> str:
        return "\n".join(message_text(m) for m in self.messages())

    def ephemeral(self) -> list[str]:
        return [str(e.get("text")) for e in self.ws.fake.ephemeral if e.get("user") == self.id]

    # --- what they do ----------------------------------------------------------------------

    def message_event(self, text: str, **extra: Any) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        return {"type": "message", "channel": self.dm, "channel_type": "im", "user": self.id,
                "text": text, "ts": ts, "event_ts": ts, "client_msg_id": secrets.token_hex(8),
                **extra}

    async def say(self, text: str, **kwargs: Any) -> int:
        return await self.ws.event(self.message_event(text), **kwargs)

    def file_event(self, *files: tuple[str, bytes], declared: int | None = None
                   ) -> dict[str, Any]:
        shared = [{"id": f"F{next(_ids):06d}", "name": name,
                   "size": declared if declared is not None else len(content),
                   "mimetype": "application/octet-stream",
                   "url_private_download": self.ws.fake.add_file(content)}
                  for name, content in files]
        return self.message_event("", subtype="file_share", files=shared)

    async def send_files(self, *files: tuple[str, bytes], **kwargs: Any) -> int:
        return await self.ws.event(self.file_event(*files), **kwargs)

    def find_control(self, label: str, message: Message | None = None
                     ) -> tuple[Message, dict[str, Any], dict[str, Any]]:
        candidates = [message] if message else list(reversed(self.messages()))
        for m in candidates:
            for block, element in controls(m):
                text = (element.get("text") or {}).get("text", "")
                if element.get("type") == "button" and text.startswith(label):
                    return m, block, element
                for option in element.get("options", []):
                    if option["text"]["text"].startswith(label):
                        return m, block, {**element, "selected_option": option}
        raise AssertionError(f"no control {label!r} in {self.dm}: {self.text}")

    def action_payload(self, message: Message, block: dict[str, Any],
                       element: dict[str, Any], state: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        action = {"type": element["type"], "action_id": element["action_id"],
                  "block_id": block.get("block_id", ""), "action_ts": f"{time.time():.6f}"}
        if element["type"] == "button":
            action.update(value=element.get("value", ""), text=element["text"])
        elif "selected_option" in element:
            action["selected_option"] = element["selected_option"]
        return {
            "type": "block_actions", "user": {"id": self.id, "username": self.id.lower(),
                                              "team_id": "T0001"},
            "api_app_id": "A0001", "token": "legacy", "team": {"id": "T0001"},
            "trigger_id": f"tr-{next(_ids)}",
            "container": {"type": "message", "message_ts": message.ts,
                          "channel_id": message.channel, "is_ephemeral": False},
            "channel": {"id": message.channel}, "enterprise": None,
            "message": {"type": "message", "ts": message.ts, "text": message.text,
                        "blocks": message.blocks},
            "state": {"values": state or {}}, "response_url": f"{self.ws.fake.url}/hooks/2",
            "actions": [action],
        }

    async def click(self, label: str, *, message: Message | None = None,
                    state: dict[str, Any] | None = None, settle: bool = True
                    ) -> tuple[int, str]:
        """Click a button or pick a select option; ``message`` may be someone else's."""
        found, block, element = self.find_control(label, message)
        return await self.ws.interact(self.action_payload(found, block, element, state),
                                      settle=settle)

    async def tick(self, *labels: str) -> tuple[int, str]:
        """Tick the boxes of the last message's several-choice question whose labels start
        with ``labels``, then press its button (Slack sends what is ticked in the click's
        ``state``)."""
        question = self.last
        block, boxes = next((b, e) for b, e in controls(question)
                            if e.get("type") in ("checkboxes", "multi_static_select"))
        ticked = [o for o in boxes["options"]
                  if any(o["text"]["text"].startswith(label) for label in labels)]
        assert len(ticked) == len(labels), f"not all of {labels}: {boxes['options']}"
        button = next(e for b, e in controls(question) if e.get("type") == "button"
                      and b is block)
        state = {block["block_id"]: {boxes["action_id"]: {
            "type": boxes["type"], "selected_options": ticked}}}
        return await self.click(button["text"]["text"], message=question, state=state)

    async def open_form(self) -> dict[str, Any]:
        before = len(self.ws.fake.views)
        await self.click("Fill in the form")
        assert len(self.ws.fake.views) == before + 1, self.text
        return self.ws.fake.views[-1]

    async def submit(self, view: dict[str, Any], values: dict[str, str | list[str]]
                     ) -> dict[str, Any]:
        """Submit a modal with ``values`` by field name; returns the acknowledgement body."""
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            name = block["block_id"].removeprefix("f.")
            element = block["element"]
            given = values.get(name)
            if element["type"] == "static_select":
                chosen = next((o for o in element["options"] if o["value"] == given), None)
                state[block["block_id"]] = {"v": {"type": "static_select",
                                                  "selected_option": chosen}}
            elif element["type"] == "checkboxes":
                wanted = given if isinstance(given, list) else [given] if given else []
                chosen_list = [o for o in element["options"] if o["value"] in wanted]
                state[block["block_id"]] = {"v": {"type": "checkboxes",
                                                  "selected_options": chosen_list}}
            else:
                state[block["block_id"]] = {"v": {"type": "plain_text_input",
                                                  "value": given or element.get("initial_value")}}
        payload = {
            "type": "view_submission", "team": {"id": "T0001"},
            "user": {"id": self.id, "username": self.id.lower(), "team_id": "T0001"},
            "api_app_id": "A0001", "token": "legacy", "trigger_id": f"tr-{next(_ids)}",
            "view": {**view, "state": {"values": state}, "team_id": "T0001",
                     "app_id": "A0001", "bot_id": "B0001", "hash": "1"},
        }
        status, body = await self.ws.interact(payload)
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body) if body else {}
        self.ws.fake.block_kit += [f"view_submission ack: {p}"
                                   for p in block_kit.ack_problems(view, answer)]
        return answer


@pytest.fixture
async def workspace(services: Services, slack_policy: Policy, fake_slack: FakeSlack
                    ) -> AsyncIterator[Workspace]:
    services.policy = slack_policy
    services.notifier = router = NotifierRouter(RecordingNotifier())
    settings = SlackSettings(bot_token=TOKEN, signing_secret=SECRET, app_token=None,
                             api_url=f"{fake_slack.url}/api/")
    slack = slack_plugin(services, settings)
    route_notices(router, [slack])
    app = create_app(services, migrate=False, scheduler=False)
    slack.mount(app)
    channel = slack.channel
    assert channel is not None
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Workspace(client, channel, fake_slack, services)


class SlackChatUser:
    def __init__(self, workspace: Workspace, slack_id: str) -> None:
        self.ws = workspace
        self.person = SlackUser(workspace, slack_id)
        self.user_id = f"slack:{slack_id}"
        # What Slack shows outside the DM's messages (a modal's field errors, an ephemeral
        # note), with the number of DM messages there were when it was shown.
        self.notes: list[tuple[int, str]] = []

    def _note(self, text: str) -> None:
        self.notes.append((len(self.person.messages()), text))

    def _with_control(self, label: str, reference: str) -> Message:
        """The latest message in the DM about ``reference`` with a control ``label``."""
        for message in reversed(self.person.messages()):
            if reference in message_text(message) and any(
                    (e.get("text") or {}).get("text", "").startswith(label)
                    for _, e in controls(message)):
                return message
        raise AssertionError(f"no {label!r} for {reference} in {self.person.dm}:\n{self.text}")

    # --- what they do ----------------------------------------------------------------------

    async def send_files(self, *paths: Path) -> None:
        await self.person.send_files(*((p.name, p.read_bytes()) for p in paths))

    async def say(self, text: str) -> None:
        await self.person.say(text)

    async def choose(self, label: str) -> None:
        status, body = await self.person.click(label)
        assert status == 200, body

    async def choose_several(self, *labels: str) -> None:
        status, body = await self.person.tick(*labels)
        assert status == 200, body

    async def answer(self, text: str) -> None:
        await self.person.say(text)  # a free-text question is answered in the DM

    async def fill(self, values: Mapping[str, str]) -> None:
        ack = await self.person.submit(await self.person.open_form(), dict(values))
        if ack.get("response_action") == "errors":
            for error in ack["errors"].values():
                self._note(f"⚠ {error}")

    async def pick_time(self, when: datetime) -> None:
        """Pick ``when`` in the question's date-time picker, then press its button."""
        question = self.person.last
        block, picker = next((b, e) for b, e in controls(question)
                             if e.get("type") == "datetimepicker")
        button = next(e for b, e in controls(question) if e.get("type") == "button"
                      and b is block)
        state = {block["block_id"]: {picker["action_id"]: {
            "type": "datetimepicker", "selected_date_time": int(when.timestamp())}}}
        status, body = await self.person.click(button["text"]["text"], message=question,
                                               state=state)
        assert status == 200, body

    async def approve(self, reference: str) -> None:
        status, body = await self.person.click(
            "Approve", message=self._with_control("Approve", reference))
        assert status == 200, body

    async def reject(self, reference: str, reason: str) -> None:
        views = len(self.ws.fake.views)
        await self.person.click("Reject", message=self._with_control("Reject", reference))
        assert len(self.ws.fake.views) == views + 1, "no reason was asked for"
        view: dict[str, Any] = self.ws.fake.views[-1]
        fields = [b["block_id"].removeprefix("f.") for b in view["blocks"]
                  if b.get("type") == "input"]
        await self.person.submit(view, dict.fromkeys(fields, reason))

    async def archive(self, reference: str) -> bytes:
        found = [u for u in self.ws.fake.uploads.values()
                 if u.get("channel") == self.person.dm and u["filename"] == f"{reference}.zip"]
        assert found and found[-1]["data"], f"no archive for {reference} in {self.person.dm}"
        return bytes(found[-1]["data"])

    # --- what they see ---------------------------------------------------------------------

    async def current_question(self) -> str | None:
        return await conversation_step(self.ws.svc, self.user_id)

    @property
    def conversation_id(self) -> str:
        return self.user_id  # the DM's conversation is the user's

    @property
    def text(self) -> str:
        return self.since(0)

    def mark(self) -> int:
        return len(self.person.messages())

    def since(self, mark: int) -> str:
        shown = [message_text(m) for m in self.person.messages()[mark:]]
        shown += [text for at, text in self.notes if at >= mark]
        if mark == 0:  # an ephemeral note has no place among the DM's messages
            shown += self.person.ephemeral()
        return "\n".join(shown)


class SlackWorld:
    channel = "slack"

    def __init__(self, workspace: Workspace, twilio: FakeTwilio) -> None:
        self.workspace = workspace
        self.svc: Services = workspace.svc
        self.twilio = twilio
        self.portal: TestClient = workspace.client  # type: ignore[type-arg]

    async def sender(self) -> SlackChatUser:
        return SlackChatUser(self.workspace, "UALICE01")

    async def approver(self) -> SlackChatUser:
        return SlackChatUser(self.workspace, "UBOSS01")
