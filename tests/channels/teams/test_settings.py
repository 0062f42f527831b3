"""Teams settings from the standard Bot Framework variables, and the wiring into serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.settings import Settings, SettingsError, load_settings
from bot.vault import generate_key
from channels.teams.app import TeamsNotifier
from channels.teams.settings import load_teams_settings
from handlers.notify import NotifierRouter
from handlers.services import Services

APP_ID = "0b5e7f1c-1111-4222-8333-944445555666"
TENANT = "7c0ffee0-1111-4222-8333-944445555666"


def base(tmp_path: Path, env: str = "development", **more: str) -> Settings:
    return load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path), "SAFEHAVEN_ENV": env,
                          "SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk",
                          "SAFEHAVEN_SECRET_KEY": generate_key(), **more})


def test_without_app_id_teams_runs_with_auth_off_only_when_told(tmp_path: Path) -> None:
    assert not load_teams_settings(base(tmp_path), {}).servable  # no credentials: not served
    with pytest.raises(SettingsError, match="SAFEHAVEN_TEAMS=on but MicrosoftAppId"):
        load_teams_settings(base(tmp_path), {"SAFEHAVEN_TEAMS": "on"})
    teams = load_teams_settings(base(tmp_path), {"TEAMS_AUTH": "off"})
    assert teams.enabled and not teams.auth_enabled
    assert not load_teams_settings(base(tmp_path), {"SAFEHAVEN_TEAMS": "off"}).enabled


@pytest.mark.parametrize(("settings", "named"), [
    ({"SAFEHAVEN_ENV": "production"}, "SAFEHAVEN_ENV=production"),
    ({"SAFEHAVEN_HOST": "0.0.0.0"}, "SAFEHAVEN_HOST is '0.0.0.0'"),
    ({"SAFEHAVEN_HOST": "10.1.2.3"}, "SAFEHAVEN_HOST is '10.1.2.3'"),
    ({"SAFEHAVEN_HOST": "safehaven.council.local"}, "SAFEHAVEN_HOST"),
])
def test_auth_off_is_refused_in_production_and_off_loopback(
        tmp_path: Path, settings: dict[str, str], named: str) -> None:
    env = settings.pop("SAFEHAVEN_ENV", "development")
    with pytest.raises(SettingsError, match=f"TEAMS_AUTH=off is refused.*{named}"):
        load_teams_settings(base(tmp_path, env, **settings), {"TEAMS_AUTH": "off"})
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert load_teams_settings(base(tmp_path, SAFEHAVEN_HOST=loopback),
                                   {"TEAMS_AUTH": "off"}).servable


def test_production_refuses_teams_without_app_id(tmp_path: Path) -> None:
    production = base(tmp_path, "production")
    assert not load_teams_settings(production, {}).enabled  # not configured: not served
    with pytest.raises(SettingsError, match="refused when SAFEHAVEN_ENV=production"):
        load_teams_settings(production, {"SAFEHAVEN_TEAMS": "on"})
    teams = load_teams_settings(production, {"MicrosoftAppId": APP_ID,
                                             "MicrosoftAppPassword": "s3cret"})
    assert teams.enabled and teams.auth_enabled and teams.app_type == "MultiTenant"
    assert "s3cret" not in repr(teams)


@pytest.mark.parametrize(("env", "named"), [
    ({"MicrosoftAppId": "not-a-guid", "MicrosoftAppPassword": "x"}, "MicrosoftAppId"),
    ({"MicrosoftAppId": APP_ID}, "MicrosoftAppPassword"),
    ({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x",
      "MicrosoftAppType": "SingleTenant"}, "MicrosoftAppTenantId"),
    ({"MicrosoftAppId": APP_ID, "MicrosoftAppType": "Sometimes"}, "MicrosoftAppType"),
    ({"MicrosoftAppPassword": "x"}, "MicrosoftAppId"),
    ({"SAFEHAVEN_TEAMS": "maybe"}, "SAFEHAVEN_TEAMS"),
    ({"TEAMS_AUTH": "no"}, "TEAMS_AUTH"),
    ({"TEAMS_AUTH": "off", "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"},
     "TEAMS_AUTH=off but MicrosoftAppId"),
])
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_teams_settings(base(tmp_path), env)


def test_single_tenant_and_managed_identity(tmp_path: Path) -> None:
    teams = load_teams_settings(base(tmp_path), {
        "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x",
        "MicrosoftAppType": "singletenant", "MicrosoftAppTenantId": TENANT})
    assert teams.app_type == "SingleTenant" and teams.tenant_id == TENANT
    msi = load_teams_settings(base(tmp_path), {
        "MicrosoftAppId": APP_ID, "MicrosoftAppType": "UserAssignedMSI",
        "MicrosoftAppTenantId": TENANT})
    assert msi.app_type == "UserAssignedMSI" and msi.app_password is None


def test_build_services_routes_teams_users_and_serve_mounts_the_route(tmp_path: Path) -> None:
    from bot.app.config import Config, load_config
    from bot.app.plugins import mount_plugins
    from bot.app.runtime import build_runtime

    def config(**env: str) -> Config:
        """The root's configuration, read once from these variables (as at start-up)."""
        return load_config({"SAFEHAVEN_VAR_DIR": str(tmp_path),
                            "SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk",
                            "SAFEHAVEN_SECRET_KEY": generate_key(), **env})

    runtime = build_runtime(config(TEAMS_AUTH="off"))
    svc: Services = runtime.svc
    assert isinstance(svc.notifier, NotifierRouter)
    assert isinstance(svc.notifier.routes.get("teams"), TeamsNotifier)
    app = web.Application()
    mount_plugins(app, runtime.plugins)
    assert any(r.method == "POST" and r.resource is not None
               and r.resource.canonical == "/api/messages" for r in app.router.routes())

    quiet = build_runtime(config(TEAMS_AUTH="off", SAFEHAVEN_TEAMS="off"))
    assert isinstance(quiet.svc.notifier, NotifierRouter)
    assert "teams" not in quiet.svc.notifier.routes
    app = web.Application()
    mount_plugins(app, quiet.plugins)
    assert not any(r.resource is not None and r.resource.canonical == "/api/messages"
                   for r in app.router.routes())
