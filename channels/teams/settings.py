"""Microsoft Teams settings, read from the standard Bot Framework variables.

``MicrosoftAppId``, ``MicrosoftAppPassword``, ``MicrosoftAppTenantId`` and
``MicrosoftAppType`` are the names every Bot Framework sample and the Azure portal use, so a
council IT officer can paste them from the bot registration unchanged. Without an app id the
Teams endpoint runs with authentication off, for the Bot Framework Emulator on a developer's
machine; that is refused when ``SAFEHAVEN_ENV=production``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.settings import Settings, SettingsError

APP_TYPES = {"multitenant": "MultiTenant", "singletenant": "SingleTenant",
             "userassignedmsi": "UserAssignedMSI"}
SWITCH_VALUES = ("auto", "on", "off")


@dataclass(frozen=True)
class TeamsSettings:
    """Whether Teams is served, and the bot's identity (None app id: authentication off)."""

    enabled: bool
    app_id: str | None = None
    app_password: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    app_type: str = "MultiTenant"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)


class BotFrameworkConfig:
    """The attribute names botbuilder's ``ConfigurationBotFrameworkAuthentication`` reads."""

    def __init__(self, teams: TeamsSettings) -> None:
        self.APP_ID = teams.app_id or ""
        self.APP_PASSWORD = teams.app_password or ""
        self.APP_TENANTID = teams.tenant_id or ""
        self.APP_TYPE = teams.app_type


def _guid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise SettingsError(
            f"{name} is {value[:60]!r}, which is not an id of the form "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx. Copy it from the Azure Bot registration "
            "(Configuration > Microsoft App ID).") from None


def load_teams_settings(settings: Settings, env: Mapping[str, str] | None = None
                        ) -> TeamsSettings:
    """Read the Teams variables; raise :class:`SettingsError` naming the first bad one."""
    env = os.environ if env is None else env
    switch = env.get("SAFEHAVEN_TEAMS", "auto").strip().lower() or "auto"
    if switch not in SWITCH_VALUES:
        raise SettingsError(
            f"SAFEHAVEN_TEAMS is {switch!r}; set it to on, off, or leave it unset (on when "
            "MicrosoftAppId is set, and in development).")
    if switch == "off":
        return TeamsSettings(enabled=False)
    app_id = (env.get("MicrosoftAppId") or "").strip() or None
    password = env.get("MicrosoftAppPassword") or None
    tenant = (env.get("MicrosoftAppTenantId") or "").strip() or None
    type_text = (env.get("MicrosoftAppType") or "MultiTenant").strip()
    app_type = APP_TYPES.get(type_text.lower())
    if app_type is None:
        raise SettingsError(
            f"MicrosoftAppType is {type_text!r}; set it to MultiTenant, SingleTenant or "
            "UserAssignedMSI, as shown on the Azure Bot registration.")
    if app_id is None:
        if password or tenant:
            raise SettingsError(
                "MicrosoftAppPassword or MicrosoftAppTenantId is set but MicrosoftAppId is "
                "not. Set MicrosoftAppId to the bot's Microsoft App ID as well.")
        if settings.is_production:
            if switch == "on":
                raise SettingsError(
                    "SAFEHAVEN_TEAMS=on but MicrosoftAppId is not set. Without it Teams "
                    "requests cannot be authenticated, which is refused when "
                    "SAFEHAVEN_ENV=production. Set MicrosoftAppId and MicrosoftAppPassword "
                    "from the Azure Bot registration (see docs/teams.md).")
            return TeamsSettings(enabled=False)
        return TeamsSettings(enabled=True)
    app_id = _guid("MicrosoftAppId", app_id)
    if app_type in ("MultiTenant", "SingleTenant") and not password:
        raise SettingsError(
            "MicrosoftAppPassword is not set. Set it to a client secret of the bot's app "
            "registration (Certificates & secrets in Microsoft Entra ID).")
    if app_type in ("SingleTenant", "UserAssignedMSI"):
        if not tenant:
            raise SettingsError(
                f"MicrosoftAppType is {app_type}, which needs MicrosoftAppTenantId: set it "
                "to your Microsoft Entra tenant id.")
        tenant = _guid("MicrosoftAppTenantId", tenant)
    return TeamsSettings(enabled=True, app_id=app_id, app_password=password, tenant_id=tenant,
                         app_type=app_type)
