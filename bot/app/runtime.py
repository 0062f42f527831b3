"""Build what a process needs from its configuration: logging, the services, the channels.

:func:`build_runtime` takes the :class:`~bot.app.config.Config` read once at start-up and
hands each channel of :data:`bot.app.plugins.CHANNELS` its own section through its
``plugin(...)`` factory; the
domain (``bot/``) and ``handlers/`` see only the ports. In production nothing falls back to
the console: a message for someone whose channel is not configured is kept for them
(:class:`handlers.notify.HeldNotices`).
"""

from __future__ import annotations

import io
import logging
import sys
from dataclasses import dataclass
from typing import cast

import channels.console
from bot.app import logs
from bot.app.config import Config
from bot.app.plugins import CHANNELS, ChannelPlugin, route_notices
from bot.policy import load_policy
from bot.private import open_private, private_dir
from bot.settings import LogFormat, Settings
from bot.vault import vault_from_settings
from channels.twilio.settings import TwilioSettings
from channels.twilio.transport import TwilioTransport
from handlers.notify import HeldNotices, NotifierRouter
from handlers.ports import Notifier, PasswordTransport
from handlers.services import Services
from store import audit
from store.db import Database
from store.objects import open_object_store

# Libraries that, below INFO, log what they send or bind: SQL parameters (aiosqlite: phone
# numbers, names), Web API bodies (slack_sdk: message text), request details (twilio logs
# every request at INFO). Held at these levels whatever SAFEHAVEN_LOG_LEVEL says.
PAYLOAD_LOGGERS = {"aiosqlite": logging.INFO, "asyncpg": logging.INFO,
                   "slack_sdk": logging.INFO, "slack_bolt": logging.INFO,
                   "botbuilder": logging.INFO, "msal": logging.INFO,
                   "twilio": logging.WARNING}


def hold_payload_loggers() -> None:
    """Keep the :data:`PAYLOAD_LOGGERS` from logging payloads, even at DEBUG."""
    for name, level in PAYLOAD_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


class PrivateFileHandler(logging.FileHandler):
    """A log file created (or tightened to) 0600."""

    def _open(self) -> io.TextIOWrapper:
        return cast(io.TextIOWrapper, open_private(
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors))


def configure_logging(settings: Settings, *, terminal: bool = True) -> None:
    """Log to ``var/safehaven.log`` (0600) and, with ``terminal``, to stderr (the terminal
    chat leaves it out: the terminal shows the conversation alone). Handlers never log
    secrets; see SECURITY notes in the README."""
    private_dir(settings.var_dir)
    root = logging.getLogger()
    if getattr(root, "_safehaven_configured", False):
        return
    root.setLevel(settings.log_level)
    hold_payload_loggers()
    # SAFEHAVEN_LOG_FORMAT=json: one JSON object a line (bot/app/logs.py)
    fmt = logs.formatter(settings.log_format == LogFormat.JSON)
    handlers: list[logging.Handler] = [PrivateFileHandler(settings.log_path, encoding="utf-8")]
    if terminal:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root._safehaven_configured = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Runtime:
    """The services of one process and the channels wired to them."""

    svc: Services
    plugins: tuple[ChannelPlugin, ...]


def build_runtime(config: Config) -> Runtime:
    """The services and every channel's plugin, from the configuration read at start-up.

    The password transport is Twilio's when its section is set, else the development
    console's (which refuses production). Each plugin with users gets their prefix on the
    notifier router; everyone else's messages go to the fallback: kept for them in
    production, the console notifier in development. What a channel could not deliver
    (someone it cannot reach) is kept for them in every environment.
    """
    settings = config.core
    private_dir(settings.var_dir)
    db = Database(settings.database_url)
    vault = vault_from_settings(settings)
    twilio = config.section("twilio", TwilioSettings)
    kept = HeldNotices(db, vault)
    console = channels.console.plugin(settings, password_transport=twilio is None, keep=kept)
    fallback: Notifier = kept if console.notifier is None else console.notifier
    transport: PasswordTransport | None = (
        TwilioTransport(twilio) if twilio is not None else console.transport)
    assert transport is not None  # the console plugin has one whenever Twilio is not set
    router = NotifierRouter(fallback, keep=kept)
    svc = Services(settings=settings, policy=load_policy(settings.policy_path), db=db,
                   vault=vault, notifier=router, transport=transport,
                   objects=open_object_store(settings.object_store_url))
    kept.clock = lambda: svc.clock()
    # Every audit record this process appends is keyed; checkpoints go to the anchor.
    audit.attach(db, audit.trail_from_settings(settings, vault=vault, objects=svc.objects))
    plugins: tuple[ChannelPlugin, ...] = (
        *(wiring.plugin(svc, config.sections.get(wiring.name)) for wiring in CHANNELS),
        console)
    route_notices(router, plugins)
    return Runtime(svc, plugins)
