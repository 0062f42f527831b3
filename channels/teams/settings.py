"""Microsoft Teams settings, read from the standard Bot Framework variables.

``MicrosoftAppId``, ``MicrosoftAppPassword``, ``MicrosoftAppTenantId`` and
``MicrosoftAppType`` are the names every Bot Framework sample and the Azure portal use, so a
council IT officer can paste them from the bot registration unchanged. Without an app id
Teams is not served at all. With one, ``TEAMS_TENANT_IDS`` (default ``MicrosoftAppTenantId``)
names the Microsoft Entra tenants whose users are served, and is required: a bot id alone
could be added to any organisation's Teams. Serving it unauthenticated takes
``TEAMS_AUTH=off``, for tests and a developer's own machine: it is refused when
``SAFEHAVEN_ENV=production``, when ``SAFEHAVEN_HOST`` is not a loopback address, and when
``SAFEHAVEN_PUBLIC_URL`` names another host (a tunnel or proxy in front of 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.egress import service_url_problem
from bot.settings import Settings, SettingsError

APP_TYPES = {"multitenant": "MultiTenant", "singletenant": "SingleTenant",
             "userassignedmsi": "UserAssignedMSI"}
SWITCH_VALUES = ("auto", "on", "off")
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
AUTH_VALUES = ("on", "off")


@dataclass(frozen=True)
class TeamsSettings:
    """Whether Teams is served, and the bot's identity. Without an app id it is served only
    with ``auth_off`` (``TEAMS_AUTH=off``): every activity is then taken unauthenticated.
    ``tenant_ids`` are the tenants whose users are served (lower case); none, only without
    an app id."""

    enabled: bool
    app_id: str | None = None
    app_password: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    app_type: str = "MultiTenant"
    auth_off: bool = False
    tenant_ids: tuple[str, ...] = ()
    # TEAMS_LOGIN_URL: where `safehaven doctor` sends the client secret for a token.
    login_url: str = DEFAULT_LOGIN_URL

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @property
    def servable(self) -> bool:
        """``/api/messages`` may be mounted: with credentials, or explicitly without."""
        return self.enabled and (self.auth_enabled or self.auth_off)


class BotFrameworkConfig:
    """The attribute names botbuilder's ``ConfigurationBotFrameworkAuthentication`` reads."""

    def __init__(self, teams: TeamsSettings) -> None:
        self.APP_ID = teams.app_id or ""
        self.APP_PASSWORD = teams.app_password or ""
        self.APP_TENANTID = teams.tenant_id or ""
        self.APP_TYPE = teams.app_type


def _guid(name: str, value: str,
          where: str = "the Azure Bot registration (Configuration > Microsoft App ID)") -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise SettingsError(
            f"{name} is {value[:60]!r}, which is not an id of the form "
            f"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx. Copy it from {where}.") from None


_TENANT_WHERE = "Microsoft Entra ID > Overview > Tenant ID in the Azure portal"


def _tenant_ids(env: Mapping[str, str], app_tenant: str | None) -> tuple[str, ...]:
    """``TEAMS_TENANT_IDS`` (comma-separated), else ``MicrosoftAppTenantId``; lower case."""
    listed = [t.strip() for t in (env.get("TEAMS_TENANT_IDS") or "").split(",") if t.strip()]
    if listed:
        return tuple(dict.fromkeys(_guid("TEAMS_TENANT_IDS", t, _TENANT_WHERE)
                                   for t in listed))
    if app_tenant:
        return (_guid("MicrosoftAppTenantId", app_tenant, _TENANT_WHERE),)
    return ()


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.1``, ``::1``)."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _auth_off(settings: Settings, env: Mapping[str, str]) -> bool:
    """``TEAMS_AUTH``: on (the default) or off, which only a loopback development server
    may use."""
    text = (env.get("TEAMS_AUTH") or "on").strip().lower() or "on"
    if text not in AUTH_VALUES:
        raise SettingsError(
            f"TEAMS_AUTH is {text[:20]!r}; leave it unset (Teams requests must be signed by "
            "Microsoft), or set it to off only for tests on your own machine.")
    if text == "on":
        return False
    if settings.is_production:
        raise SettingsError(
            "TEAMS_AUTH=off is refused when SAFEHAVEN_ENV=production: anyone who reaches the "
            "server could act as any Teams user. Unset TEAMS_AUTH and set MicrosoftAppId and "
            "MicrosoftAppPassword from the Azure Bot registration (see docs/teams.md).")
    if not is_loopback(settings.host):
        raise SettingsError(
            f"TEAMS_AUTH=off is refused because SAFEHAVEN_HOST is {settings.host!r}, which "
            "other machines can reach: anyone there could act as any Teams user. Set "
            "SAFEHAVEN_HOST=127.0.0.1, or unset TEAMS_AUTH and set MicrosoftAppId and "
            "MicrosoftAppPassword (see docs/teams.md).")
    # Set explicitly (not the listening address it defaults to) and naming another host.
    explicit = settings.public_url not in ("", f"http://{settings.host}:{settings.port}")
    if explicit and not is_loopback(urlsplit(settings.public_url).hostname or ""):
        raise SettingsError(
            f"TEAMS_AUTH=off is refused because SAFEHAVEN_PUBLIC_URL is "
            f"{settings.public_url[:80]!r}: a tunnel or proxy (ngrok, nginx) in front of this "
            "machine lets anyone who reaches that address act as any Teams user. Unset "
            "SAFEHAVEN_PUBLIC_URL (or set it to http://127.0.0.1:PORT), or unset TEAMS_AUTH "
            "and set MicrosoftAppId and MicrosoftAppPassword (see docs/teams.md).")
    return True


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
    auth_off = _auth_off(settings, env)
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
        if auth_off:
            return TeamsSettings(enabled=True, auth_off=True, tenant_ids=_tenant_ids(env, None))
        if switch == "on":
            where = ("which is refused when SAFEHAVEN_ENV=production" if settings.is_production
                     else "so Teams is not served (TEAMS_AUTH=off serves it unauthenticated, "
                     "for tests on this machine only)")
            raise SettingsError(
                "SAFEHAVEN_TEAMS=on but MicrosoftAppId is not set. Without it Teams "
                f"requests cannot be authenticated, {where}. Set MicrosoftAppId and "
                "MicrosoftAppPassword from the Azure Bot registration (see docs/teams.md).")
        return TeamsSettings(enabled=False)
    if auth_off:
        raise SettingsError(
            "TEAMS_AUTH=off but MicrosoftAppId is set. Unset TEAMS_AUTH so requests are "
            "authenticated with the bot's credentials.")
    app_id = _guid("MicrosoftAppId", app_id)
    login_url = (env.get("TEAMS_LOGIN_URL") or DEFAULT_LOGIN_URL).strip().rstrip("/")
    problem = service_url_problem("TEAMS_LOGIN_URL", login_url,
                                  production=settings.is_production)
    if problem:  # the client secret goes there
        raise SettingsError(problem)
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
    tenant_ids = _tenant_ids(env, tenant)
    if not tenant_ids:
        raise SettingsError(
            "TEAMS_TENANT_IDS is not set, so Teams would serve users of any Microsoft 365 "
            "organisation: anyone could add the bot by its id to their own Teams and send "
            "transfers. Set TEAMS_TENANT_IDS to your Microsoft Entra tenant id (comma-separated "
            f"if the council has several; {_TENANT_WHERE}), or set MicrosoftAppTenantId.")
    return TeamsSettings(enabled=True, app_id=app_id, app_password=password, tenant_id=tenant,
                         app_type=app_type, tenant_ids=tenant_ids, login_url=login_url)
