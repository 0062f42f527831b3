"""Microsoft's side of a Teams conversation, as real HTTP servers on 127.0.0.1
(:class:`tests.support.server.FakeServer`).

``FakeConnector`` answers the Bot Connector paths the bot calls (send, reply, update) and
records every call; it also serves OpenID metadata and signing keys when a test turns
authentication on. ``FakeFileHost`` plays OneDrive: it serves the ``downloadUrl`` of files a
user sends and accepts upload sessions in ``Content-Range`` chunks. ``TeamsUser`` builds
the activities Teams would post for one person and reads back what the bot said to them.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.server import FakeServer

ADAPTIVE = "application/vnd.microsoft.card.adaptive"

# Every message and card update any FakeConnector was sent, in order (the card guard,
# tests/channels/teams/conftest.py, checks each test's; tests/support/teams_render.py).
SENT: list[dict[str, Any]] = []


def card_actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """A card's buttons, wherever they are: its action bar, then rows (ActionSets) in its
    body, in the order shown (the bar is below the body)."""
    rows = [a for e in card.get("body", []) if e.get("type") == "ActionSet"
            for a in e.get("actions", [])]
    return rows + list(card.get("actions", []))


def choice_sets(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in card.get("body", []) if e.get("type") == "Input.ChoiceSet"]


@dataclass
class Call:
    method: str
    conversation: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str
    id: str = ""

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def card(self) -> dict[str, Any]:
        """The Adaptive Card in this message ({} if none)."""
        return dict(self.attachment(ADAPTIVE).get("content") or {})

    def attachment(self, content_type: str) -> dict[str, Any]:
        """The first attachment of this type ({} if none)."""
        for a in self.body.get("attachments") or []:
            if a.get("contentType") == content_type:
                return dict(a)
        return {}

    @property
    def words(self) -> str:
        """Everything a person would read in this message."""
        parts = [self.text]
        card = self.card
        if card:
            for block in card.get("body", []):
                parts.append(block.get("text", ""))
                # A RichTextBlock's runs make one line.
                parts.append("".join(run.get("text", "") for run in block.get("inlines", [])))
                parts += [c.get("title", "") for c in block.get("choices", [])]
            parts += [a.get("title", "") for a in card_actions(card)]
        return "\n".join(parts)


class FakeConnector(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self._ids = itertools.count(1)
        self.openid: dict[str, Any] | None = None
        self.jwks: dict[str, Any] | None = None
        self.app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        self.app.router.add_post("/v3/conversations/{conversation}/activities/{activity}",
                                 self._send)
        self.app.router.add_put("/v3/conversations/{conversation}/activities/{activity}",
                                self._update)
        self.app.router.add_get("/openid", self._openid)
        self.app.router.add_get("/keys", self._keys)
        # The Microsoft identity platform's token endpoint (``safehaven doctor``'s check).
        self.app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self.app_credentials: tuple[str, str] | None = None  # (app id, password) it accepts

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        if form.get("grant_type") != "client_credentials" or given != self.app_credentials:
            return web.json_response({"error": "invalid_client", "error_codes": [7000215],
                                      "error_description": "AADSTS7000215: Invalid client "
                                      "secret provided."}, status=401)
        return web.json_response({"token_type": "Bearer", "expires_in": 3599,
                                  "access_token": "fake-teams-token"})

    def _record(self, request: web.Request, body: dict[str, Any]) -> Call:
        call = Call(request.method, unquote(request.match_info["conversation"]),
                    request.match_info.get("activity"), body,
                    request.headers.get("Authorization", ""))
        self.calls.append(call)
        SENT.append(body)
        return call

    async def _send(self, request: web.Request) -> web.Response:
        call = self._record(request, await request.json())
        call.id = f"bot-{next(self._ids)}"
        return web.json_response({"id": call.id})

    async def _update(self, request: web.Request) -> web.Response:
        call = self._record(request, await request.json())
        call.id = call.activity_id or ""
        # Teams shows the new version in place of the message it updates.
        for sent in self.calls:
            if sent.method == "POST" and sent.id == call.id:
                sent.body = call.body
        return web.json_response({"id": call.id})

    async def _openid(self, request: web.Request) -> web.Response:
        assert self.openid is not None
        return web.json_response(self.openid)

    async def _keys(self, request: web.Request) -> web.Response:
        assert self.jwks is not None
        return web.json_response(self.jwks)

    def to(self, conversation: str, method: str = "POST") -> list[Call]:
        return [c for c in self.calls if c.conversation == conversation and c.method == method]

    def updates(self, conversation: str) -> list[Call]:
        return self.to(conversation, "PUT")


@dataclass
class Upload:
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    done: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(c for _, c in self.chunks)


class FakeFileHost(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self.uploads: dict[str, Upload] = {}
        self.fail_uploads = False
        self.app.router.add_get("/files/{name}", self._download)
        self.app.router.add_put("/upload/{session}", self._upload)

    def serve(self, content: bytes) -> str:
        name = uuid.uuid4().hex
        self.files[name] = content
        return f"{self.url}/files/{name}"

    def upload_url(self) -> str:
        session = uuid.uuid4().hex
        self.uploads[session] = Upload()
        return f"{self.url}/upload/{session}"

    async def _download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.downloads.append(name)
        if name not in self.files:
            return web.Response(status=404)
        data = self.files[name]
        # Chunked, without Content-Length, so the bot must count while it streams.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(data), 8192):
            await response.write(data[i:i + 8192])
        await response.write_eof()
        return response

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["session"])
        if upload is None or self.fail_uploads:
            return web.Response(status=500)
        content_range = request.headers["Content-Range"]
        data = await request.read()
        upload.chunks.append((content_range, data))
        start_end, total = content_range.removeprefix("bytes ").split("/")
        end = int(start_end.split("-")[1])
        if end + 1 == int(total):
            upload.done = True
            return web.json_response({"id": "drive-item", "name": "archive.zip"}, status=201)
        return web.json_response({"nextExpectedRanges": [f"{end + 1}-"]}, status=202)


# The Microsoft Entra tenant a TeamsUser belongs to unless told otherwise.
TENANT = "7e5a0c1d-2b3c-4d5e-8f60-0123456789ab"


class TeamsUser:
    """One person in Teams (of ``tenant``): posts activities to the bot and reads what it
    sent them."""

    _activity_ids = itertools.count(1)

    def __init__(self, client: TestClient[web.Request, web.Application],
                 connector: FakeConnector, *, aad: str, name: str,
                 conversation_type: str = "personal",
                 conversation_id: str | None = None, tenant: str = TENANT) -> None:
        self.client = client
        self.tenant = tenant
        self.connector = connector
        self.aad = aad
        self.name = name
        self.conversation_type = conversation_type
        self.conversation = conversation_id or f"a:personal-{aad}"
        self.headers: dict[str, str] = {}

    @property
    def user_id(self) -> str:
        return f"teams:{self.aad}"

    def activity(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "id": f"1700000000{next(self._activity_ids):06d}",
            "timestamp": "2026-11-23T09:30:00.000Z",
            "serviceUrl": self.connector.url + "/",
            "channelId": "msteams",
            "from": {"id": f"29:{self.aad}", "name": self.name, "aadObjectId": self.aad},
            "conversation": {"id": self.conversation, "conversationType":
                             self.conversation_type, "tenantId": self.tenant},
            "recipient": {"id": "28:safehaven-bot", "name": "Safe Haven"},
            "channelData": {"tenant": {"id": self.tenant}},
            "locale": "en-GB",
        }
        if self.conversation_type != "personal":
            body["conversation"]["isGroup"] = True
        body.update(fields)
        return body

    async def post(self, body: Any, *, raw: bool = False) -> tuple[int, Any]:
        if raw:
            response = await self.client.post("/api/messages", data=body,
                                               headers=self.headers)
        else:
            response = await self.client.post("/api/messages", json=body,
                                               headers=self.headers)
        text = await response.text()
        return response.status, json.loads(text) if text else None

    async def send(self, **fields: Any) -> dict[str, Any]:
        body = self.activity(**fields)
        status, _ = await self.post(body)
        assert status == 200, status
        return body

    async def install(self) -> None:
        await self.send(type="conversationUpdate",
                        membersAdded=[{"id": "28:safehaven-bot"}])

    async def say(self, text: str) -> dict[str, Any]:
        return await self.send(text=text)

    async def send_file(self, name: str, url: str) -> dict[str, Any]:
        return await self.send(text="", attachments=[{
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "contentUrl": f"https://contoso.sharepoint.com/personal/files/{name}",
            "name": name,
            "content": {"downloadUrl": url, "uniqueId": uuid.uuid4().hex,
                        "fileType": name.rsplit(".", 1)[-1]}}])

    # --- reading what the bot said -----------------------------------------------------

    @property
    def received(self) -> list[Call]:
        return self.connector.to(self.conversation)

    def text_since(self, mark: int) -> str:
        return "\n".join(c.words for c in self.received[mark:])

    def last_card(self) -> Call:
        for call in reversed(self.received):
            if card_actions(call.card):
                return call
        raise AssertionError("no card with buttons was sent")

    def card_value(self, call: Call, title: str, inputs: dict[str, str] | None = None
                   ) -> dict[str, Any]:
        """What Teams posts when a card button is pressed: the button's data merged with
        the card's inputs (their current values, overridden by ``inputs``). ``title`` may
        also be an option of the card's single choice set: it is picked, then the button
        that sends the inputs is pressed."""
        card = call.card
        actions = card_actions(card)
        action = next((a for a in actions if a["title"] == title), None)
        if action is None:
            for choices in choice_sets(card):
                picked = next((c["value"] for c in choices["choices"] if c["title"] == title),
                              None)
                if picked is not None and not choices.get("isMultiSelect"):
                    inputs = {**(inputs or {}), choices["id"]: picked}
                    action = next(a for a in actions if a.get("associatedInputs") != "none")
                    break
        assert action is not None, [a["title"] for a in actions]
        value: dict[str, Any] = {}
        if action.get("associatedInputs") != "none":
            for element in card["body"]:
                if element["type"].startswith("Input."):
                    value[element["id"]] = str(element.get("value", ""))
            value.update(inputs or {})
        value.update(action["data"])
        return value

    async def click(self, call: Call, title: str, inputs: dict[str, str] | None = None
                    ) -> dict[str, Any]:
        return await self.send(text="", value=self.card_value(call, title, inputs),
                               replyToId=call.id)

    def option_title(self, call: Call, value: str) -> str:
        """The title of the option (a choice or a button) that answers ``value``."""
        for choices in choice_sets(call.card):
            for c in choices["choices"]:
                if c["value"] == value:
                    return str(c["title"])
        return next(str(a["title"]) for a in card_actions(call.card)
                    if a.get("data", {}).get("sh_v") == value)

    async def tick(self, *labels: str) -> dict[str, Any]:
        """Tick ``labels`` in the last card's multi-select and press Continue: Teams sends
        the ticked values separated by commas."""
        call = self.last_card()
        (choices,) = [e for e in call.card["body"] if e.get("type") == "Input.ChoiceSet"
                      and e.get("isMultiSelect")]
        values = [c["value"] for c in choices["choices"]
                  if any(c["title"].startswith(label) for label in labels)]
        assert len(values) == len(labels), f"not all of {labels}:\n{call.words}"
        return await self.click(call, "Continue", {choices["id"]: ",".join(values)})



class Redirector(FakeServer):
    """Answers every GET with a redirect to ``target``, counting what it was asked."""

    def __init__(self, target: str = "") -> None:
        super().__init__()
        self.target = target
        self.hits: list[str] = []
        self.app.router.add_get("/{tail:.*}", self._redirect)

    async def _redirect(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        raise web.HTTPFound(self.target)
