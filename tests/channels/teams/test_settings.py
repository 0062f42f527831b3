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
    """Core settings; production gets its https public URL, development the default."""
    public = {"SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk"} \
        if env == "production" else {}
    return load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path), "SAFEHAVEN_ENV": env,
                          "SAFEHAVEN_SECRET_KEY": generate_key(), **public, **more})


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
    # 127.0.0.1 behind a tunnel or a proxy: the public URL says so.
    ({"SAFEHAVEN_PUBLIC_URL": "https://3f2a.ngrok-free.app"},
     "SAFEHAVEN_PUBLIC_URL is 'https://3f2a.ngrok-free.app'"),
    ({"SAFEHAVEN_PUBLIC_URL": "http://safehaven.council.local/sh"}, "SAFEHAVEN_PUBLIC_URL"),
])
def test_auth_off_is_refused_in_production_and_off_loopback(
        tmp_path: Path, settings: dict[str, str], named: str) -> None:
    env = settings.pop("SAFEHAVEN_ENV", "development")
    with pytest.raises(SettingsError, match=f"TEAMS_AUTH=off is refused.*{named}"):
        load_teams_settings(base(tmp_path, env, **settings), {"TEAMS_AUTH": "off"})
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert load_teams_settings(base(tmp_path, SAFEHAVEN_HOST=loopback),
                                   {"TEAMS_AUTH": "off"}).servable
    for public in ("http://127.0.0.1:8080", "http://localhost:8080/sh", "http://[::1]:8080"):
        assert load_teams_settings(base(tmp_path, SAFEHAVEN_PUBLIC_URL=public),
                                   {"TEAMS_AUTH": "off"}).servable


def test_production_refuses_teams_without_app_id(tmp_path: Path) -> None:
    production = base(tmp_path, "production")
    assert not load_teams_settings(production, {}).enabled  # not configured: not served
    with pytest.raises(SettingsError, match="refused when SAFEHAVEN_ENV=production"):
        load_teams_settings(production, {"SAFEHAVEN_TEAMS": "on"})
    teams = load_teams_settings(production, {"MicrosoftAppId": APP_ID,
                                             "MicrosoftAppPassword": "s3cret",
                                             "TEAMS_TENANT_IDS": TENANT})
    assert teams.enabled and teams.auth_enabled and teams.app_type == "MultiTenant"
    assert "s3cret" not in repr(teams)


def test_credentials_need_the_tenants_to_serve(tmp_path: Path) -> None:
    """A bot id alone could be added to any organisation's Teams: the tenants are named."""
    credentials = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"}
    for env in ("production", "development"):
        with pytest.raises(SettingsError, match="TEAMS_TENANT_IDS is not set"):
            load_teams_settings(base(tmp_path, env), credentials)
    other = "0E0E0E0E-0000-4000-8000-00000000E7E0"
    teams = load_teams_settings(base(tmp_path), {
        **credentials, "TEAMS_TENANT_IDS": f" {TENANT.upper()}, {other},{TENANT}"})
    assert teams.tenant_ids == (TENANT, other.lower())
    single = load_teams_settings(base(tmp_path), {**credentials,
                                                  "MicrosoftAppTenantId": TENANT})
    assert single.tenant_ids == (TENANT,) and single.app_type == "MultiTenant"
    with pytest.raises(SettingsError, match=r"TEAMS_TENANT_IDS is 'contoso\.onmicrosoft\.com'"):
        load_teams_settings(base(tmp_path), {**credentials,
                                             "TEAMS_TENANT_IDS": "contoso.onmicrosoft.com"})


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
