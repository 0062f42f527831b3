"""The composition root: build the services a process needs from settings.

This is the one place in ``bot/`` that names concrete channel adapters (the console
transport and notifier for development); everything else in ``bot/`` and ``handlers/``
sees only the ports. In production nothing falls back to the console: a message for someone
whose channel is not configured is kept for them (:class:`handlers.notify.HeldNotices`).
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import cast

from bot.policy import Policy, load_policy
from bot.private import open_private, private_dir
from bot.settings import Settings
from bot.vault import vault_from_settings
from channels.console.notifier import ConsoleNotifier
from channels.console.transport import ConsoleTransport
from channels.slack import attach_slack
from channels.teams.app import attach_teams
from channels.twilio.settings import load_twilio_settings
from channels.twilio.transport import TwilioTransport
from handlers.notify import HeldNotices, NotifierRouter
from handlers.ports import Notifier, PasswordTransport
from handlers.services import Services
from store.db import Database

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


def configure_logging(settings: Settings) -> None:
    """Log to stderr and ``var/safehaven.log`` (0600). Handlers never log secrets; see
    SECURITY notes in the README."""
    private_dir(settings.var_dir)
    root = logging.getLogger()
    if getattr(root, "_safehaven_configured", False):
        return
    root.setLevel(settings.log_level)
    hold_payload_loggers()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in (logging.StreamHandler(sys.stderr),
                    PrivateFileHandler(settings.log_path, encoding="utf-8")):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root._safehaven_configured = True  # type: ignore[attr-defined]


def load_configured_policy(settings: Settings) -> Policy:
    return load_policy(settings.policy_path)


def password_transport(settings: Settings) -> PasswordTransport:
    """Twilio when TWILIO_* is set; otherwise the development console transport (which
    refuses to start in production)."""
    twilio = load_twilio_settings()
    if twilio is not None:
        return TwilioTransport(twilio)
    return ConsoleTransport(outbox=settings.outbox_path, production=settings.is_production)


def build_services(settings: Settings, *, policy: Policy | None = None,
                   notifier: Notifier | None = None,
                   transport: PasswordTransport | None = None) -> Services:
    private_dir(settings.var_dir)
    db = Database(settings.database_url)
    vault = vault_from_settings(settings)
    fallback: Notifier = (
        HeldNotices(db, vault) if settings.is_production
        else ConsoleNotifier(log_path=Path(settings.var_dir, "notifications.log"),
                             production=False))
    svc = Services(
        settings=settings,
        policy=policy or load_configured_policy(settings),
        db=db,
        vault=vault,
        notifier=notifier or NotifierRouter(fallback),
        transport=transport or password_transport(settings),
    )
    if isinstance(fallback, HeldNotices):
        fallback.clock = lambda: svc.clock()
    if notifier is None:
        attach_teams(svc)  # teams: users, when Teams is configured (channels/teams/app.py)
        attach_slack(svc)  # slack: users, when SLACK_* is set (channels/slack/__init__.py)
    return svc
