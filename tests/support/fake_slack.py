"""A fake Slack: the Web API methods Safe Haven calls, file downloads and upload URLs, as a
real aiohttp server on 127.0.0.1 (port 0) that records every call
(:class:`tests.support.server.FakeServer`).

It keeps the messages it was asked to post and update, so tests (and
``conversations.history``) see the DM as Slack would show it. Failures are injected per
method: a rate limit with a ``Retry-After``, or a Slack error code such as
``not_in_channel``. Also used by ``bench/slack_ack.py``.

Every message and view it receives goes through the Block Kit guard
(:mod:`tests.support.block_kit`); what Slack would refuse is kept in :attr:`block_kit`, and
the ``fake_slack`` fixture fails the test that sent it (:meth:`FakeSlack.assert_block_kit`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support import block_kit
from tests.support.server import FakeServer

TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
BOT_USER = "UBOT0000"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    authorization: str


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    history: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: str | None = None
    times: int = 1
    channel: str | None = None  # only calls naming this channel (None: any call)


class FakeSlack(FakeServer):
    def __init__(self, *, token: str = TOKEN, record: bool = True) -> None:
        super().__init__(record=record, client_max_size=64 * 1024 * 1024)
        self.token = token
        self.app_token = APP_TOKEN
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.ephemeral: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.file_status: dict[str, int] = {}
        self.downloads: list[tuple[str, str]] = []
        self.failures: dict[str, list[Failure]] = {}
        self.block_kit: list[str] = []  # what Slack would refuse, "method: problem"
        self.stall_after: dict[str, int] = {}
        self.stalled = 0  # downloads now waiting for release
        self.release = asyncio.Event()
        self._ts = itertools.count(1)
        self.app.router.add_route("*", "/api/{method}", self._api)
        self.app.router.add_get("/files/{file_id}", self._download)
        self.app.router.add_post("/upload/{file_id}", self._upload)
        self.app.router.add_get("/socket", self._socket)
        self.app.router.add_get("/stats", self._stats)

    # --- test controls ---------------------------------------------------------------------

    def add_file(self, content: bytes, *, status: int = 200,
                 stall_after: int | None = None) -> str:
        """Serve ``content`` for download; returns the file's private URL. With
        ``stall_after``, a download sends that many bytes and then waits until
        :attr:`release` is set (a download in progress, for as long as a test needs)."""
        file_id = "F" + secrets.token_hex(5).upper()
        self.files[file_id] = content
        self.file_status[file_id] = status
        if stall_after is not None:
            self.stall_after[file_id] = stall_after
        return f"{self.url}/files/{file_id}"

    def fail(self, method: str, *, status: int = 200, error: str | None = None,
             retry_after: str | None = None, times: int = 1,
             channel: str | None = None) -> None:
        self.failures.setdefault(method, []).append(
            Failure(status, error, retry_after, times, channel))

    def assert_block_kit(self) -> None:
        """Fail if any payload received broke Slack's Block Kit rules or limits."""
        assert not self.block_kit, "Slack would refuse:\n" + "\n".join(self.block_kit)

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def in_channel(self, channel: str, *, top_level: bool = False) -> list[Message]:
        return [m for m in self.messages if m.channel == channel
                and (not top_level or m.thread_ts is None)]

    def find(self, predicate: Callable[[Message], bool]) -> Message | None:
        return next((m for m in reversed(self.messages) if predicate(m)), None)

    # --- handlers --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "GET":
            pass
        elif request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in ("blocks", "view", "files"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        if self.record:
            self.calls.append(Call(method, params, request.headers.get("Authorization", "")))
            self.block_kit += [f"{method}: {p}" for p in block_kit.problems(method, params)]
        expected = self.app_token if method == "apps.connections.open" else self.token
        if request.headers.get("Authorization") != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        pending = self.failures.get(method) or []
        failure = next((f for f in pending if f.channel in (None, params.get("channel"))),
                       None)
        if failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                pending.remove(failure)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            if failure.status == 429:
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                         headers=headers)
            return web.json_response({"ok": False, "error": failure.error or "fatal_error"},
                                     status=failure.status)
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(params)
        return web.json_response({"ok": True, **result})

    def api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://example.slack.com/", "team": "Example", "user": "safehaven",
                "team_id": "T0001", "user_id": BOT_USER, "bot_id": "B0001"}

    def api_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + "/socket"}

    def api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user", ""))
        return {"user": {"id": user, "name": user.lower(), "is_bot": False,
                         "tz": "Europe/London"}}

    def api_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": {"id": "D" + str(params.get("users", "")).split(",")[0]}}

    def api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        message = Message(str(params.get("channel")), ts, str(params.get("text", "")),
                          list(params.get("blocks") or []), params.get("thread_ts"))
        self.messages.append(message)
        return {"channel": message.channel, "ts": ts, "message": {"text": message.text}}

    def api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = str(params.get("ts"))
        for message in self.messages:
            if message.ts == ts and message.channel == params.get("channel"):
                message.history.append(message.blocks)
                message.blocks = list(params.get("blocks") or [])
                message.text = str(params.get("text", message.text))
        return {"channel": params.get("channel"), "ts": ts}

    def api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self.ephemeral.append(params)
        return {"message_ts": self._next_ts()}

    def api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = str(params.get("latest"))
        found = [{"ts": m.ts, "text": m.text, "blocks": m.blocks} for m in self.messages
                 if m.ts == ts and m.channel == params.get("channel")]
        return {"messages": found, "has_more": False}

    def api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = dict(params.get("view") or {})
        view["id"] = "V" + secrets.token_hex(4).upper()
        self.views.append(view)
        return {"view": view}

    def api_files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file", ""))
        return {"file": {"id": file_id, "name": "file", "size": len(self.files.get(file_id, b"")),
                         "url_private_download": f"{self.url}/files/{file_id}"}}

    def api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = "F" + secrets.token_hex(5).upper()
        self.uploads[file_id] = {"filename": params.get("filename"),
                                 "length": int(params.get("length", 0)), "data": None}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files") or []
        for f in files:
            upload = self.uploads.get(f.get("id"), {})
            upload.update(channel=params.get("channel_id"), thread_ts=params.get("thread_ts"),
                          initial_comment=params.get("initial_comment"), title=f.get("title"))
        return {"files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": len(self.messages)})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, then record every acknowledgement the app sends back."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0001"}})
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                data = json.loads(message.data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.socket_acks.append(data)
        return ws

    async def push(self, envelope_type: str, payload: dict[str, Any]) -> str:
        """Send a Socket Mode envelope to the connected app; returns its envelope id."""
        envelope_id = secrets.token_hex(8)
        live = [ws for ws in self.sockets if not ws.closed]
        await live[-1].send_json({"envelope_id": envelope_id, "type": envelope_type,
                                  "payload": payload, "accepts_response_payload": False})
        return envelope_id

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        if self.record:
            self.calls.append(Call("upload", {"file_id": file_id, "size": len(data)}, ""))
        if file_id not in self.uploads:
            return web.Response(status=404, text="unknown upload")
        self.uploads[file_id]["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        auth = request.headers.get("Authorization", "")
        if self.record:
            self.calls.append(Call("download", {"file_id": file_id}, auth))
        self.downloads.append((file_id, auth))
        if auth != f"Bearer {self.token}":
            # What Slack does without a valid token: its sign-in page, status 200.
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        status = self.file_status.get(file_id, 404)
        if status == 429:
            self.file_status[file_id] = 200
            return web.Response(status=429, headers={"Retry-After": "0"})
        if status != 200 or file_id not in self.files:
            return web.Response(status=status if status != 200 else 404, text="file_not_found")
        if file_id in self.stall_after and not self.release.is_set():
            content, cut = self.files[file_id], self.stall_after[file_id]
            response = web.StreamResponse(headers={"Content-Length": str(len(content))})
            response.content_type = "application/octet-stream"
            await response.prepare(request)
            await response.write(content[:cut])
            self.stalled += 1
            try:
                await self.release.wait()
                await response.write(content[cut:])
            finally:
                self.stalled -= 1
            return response
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")
