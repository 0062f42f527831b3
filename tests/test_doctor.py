"""``safehaven doctor`` through the real CLI process, against the fake Twilio, Slack and
Teams (real HTTP servers on 127.0.0.1; nothing else is contacted): all OK, then one fault at
a time (the database down, Slack refusing the token, Twilio unreachable, a bad time zone),
each reported on its own row with exit 1; warnings alone exit 2. No secret is printed."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.vault import generate_key
from tests.support.fake_slack import TOKEN as SLACK_TOKEN
from tests.support.fake_slack import FakeSlack
from tests.support.fake_teams import TENANT, FakeConnector
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.support.tls import trusting_env

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "0b5e7f1c-1111-4222-8333-944445555666"
APP_PASSWORD = "teams-client-secret-0123456789"
SIGNING_SECRET = "slack-signing-secret-0123456789abcdef"
DB_PASSWORD = "db-password-never-printed"
# Settings of the process running the tests that would reach its CLI (doctor honours a
# proxy from the environment, as aiohttp's trust_env does: the fakes are reached directly).
CHANNEL_PREFIXES = ("SAFEHAVEN_", "TWILIO_", "SLACK_", "TEAMS_", "Microsoft", "AWS_", "AZURE_",
                    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                    "all_proxy")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fakes:
    twilio: FakeTwilio
    slack: FakeSlack
    teams: FakeConnector


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    twilio, slack, teams = FakeTwilio(), FakeSlack(), FakeConnector()
    teams.app_credentials = (APP_ID, APP_PASSWORD)
    for fake in (twilio, slack, teams):
        fake.tls = True  # as the services are: production refuses plain http
        await fake.start()
    try:
        yield Fakes(twilio, slack, teams)
    finally:
        for fake in (twilio, slack, teams):
            await fake.close()


def environment(tmp_path: Path, fakes: Fakes, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHANNEL_PREFIXES)}
    env.update(
        SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
        SAFEHAVEN_PUBLIC_URL="http://127.0.0.1:3978",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+447700900123", TWILIO_API_URL=fakes.twilio.url,
        SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=f"{fakes.slack.url}/api/",
        MicrosoftAppId=APP_ID, MicrosoftAppPassword=APP_PASSWORD, TEAMS_TENANT_IDS=TENANT,
        TEAMS_LOGIN_URL=fakes.teams.url, **trusting_env(),
    )
    env.update(changes)
    return env


async def safehaven(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the CLI as a process (this event loop keeps serving the fakes meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The table as check -> (status, detail)."""
    lines = output.splitlines()
    assert lines[0].split() == ["check", "status", "detail"], output
    status_at = lines[0].index("status")
    detail_at = lines[0].index("detail")
    table = {}
    for line in lines[1:-1]:
        table[line[:status_at].strip()] = (line[status_at:detail_at].strip(),
                                           line[detail_at:].strip())
    return table


def assert_no_secret(env: dict[str, str], *outputs: str) -> None:
    for name in ("SAFEHAVEN_SECRET_KEY", "TWILIO_AUTH_TOKEN", "SLACK_BOT_TOKEN",
                 "SLACK_SIGNING_SECRET", "MicrosoftAppPassword"):
        for output in outputs:
            assert name not in env or env[name] not in output, name
    for output in outputs:
        assert DB_PASSWORD not in output


async def doctor(env: dict[str, str]) -> tuple[int, dict[str, tuple[str, str]], str]:
    code, out, err = await safehaven(env, "doctor")
    assert "Traceback" not in err, err
    assert_no_secret(env, out, err)
    return code, rows(out), out


async def test_all_ok_against_the_fakes(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes)
    code, _, err = await safehaven(env, "migrate")
    assert code == 0, err
    code, table, out = await doctor(env)
    assert code == 0, out
    assert list(table) == ["settings", "policy", "time zone", "call window", "secret key",
                           "data folder", "database", "migrations", "object store",
                           "audit anchor", "twilio", "slack", "teams"], out
    assert {status for status, _ in table.values()} == {"OK"}, out
    assert "account " + ACCOUNT_SID in table["twilio"][1]
    assert "workspace Example" in table["slack"][1]
    assert "issued a token" in table["teams"][1]
    assert "at the head revision" in table["migrations"][1]
    assert out.splitlines()[-1] == "13 OK, 0 WARN, 0 FAIL."
    # Each service was asked at its configured base URL.
    assert any(r.path.endswith(f"/Accounts/{ACCOUNT_SID}.json") for r in fakes.twilio.requests)
    assert [c.method for c in fakes.slack.calls] == ["auth.test"]
    assert any(r.path == "/botframework.com/oauth2/v2.0/token" for r in fakes.teams.requests)
    # The probe object is gone again.
    assert not [p for p in (tmp_path / "var" / "objects").rglob("*") if p.is_file()]


async def test_database_down(tmp_path: Path, fakes: Fakes) -> None:
    url = f"postgresql+asyncpg://safehaven:{DB_PASSWORD}@127.0.0.1:{closed_port()}/safehaven"
    code, table, out = await doctor(environment(tmp_path, fakes, SAFEHAVEN_DATABASE_URL=url))
    assert code == 1, out
    status, detail = table["database"]
    assert status == "FAIL" and "cannot connect" in detail, out
    assert "safehaven:***@127.0.0.1" in detail
    assert table["migrations"][0] == "FAIL"
    assert table["slack"][0] == table["twilio"][0] == "OK"  # the rest is still checked


async def test_slack_refuses_the_token(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes, SLACK_BOT_TOKEN="xoxb-revoked-0123456789")
    code, table, out = await doctor(env)
    assert code == 1, out
    status, detail = table["slack"]
    assert status == "FAIL" and "refused SLACK_BOT_TOKEN (invalid_auth)" in detail, out
    assert table["twilio"][0] == "OK" and table["teams"][0] == "OK"


async def test_twilio_unreachable(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes, TWILIO_API_URL=f"http://127.0.0.1:{closed_port()}")
    code, table, out = await doctor(env)
    assert code == 1, out
    status, detail = table["twilio"]
    assert status == "FAIL" and "unreachable" in detail, out


async def test_twilio_and_teams_refusing_credentials(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes, TWILIO_AUTH_TOKEN="wrong-token-0123456789",
                      MicrosoftAppPassword="wrong-teams-secret-0123")
    code, table, out = await doctor(env)
    assert code == 1, out
    assert table["twilio"][0] == "FAIL" and "HTTP 401" in table["twilio"][1], out
    assert table["teams"][0] == "FAIL" and "invalid_client" in table["teams"][1], out


async def test_bad_time_zone(tmp_path: Path, fakes: Fakes) -> None:
    text = (ROOT / "bot" / "policies" / "default.toml").read_text(encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(text.replace('timezone = "Europe/London"', 'timezone = "Mars/Olympus"'),
                      encoding="utf-8")
    code, table, out = await doctor(environment(tmp_path, fakes,
                                                SAFEHAVEN_POLICY=str(policy)))
    assert code == 1, out
    assert table["policy"][0] == "FAIL" and "organisation.timezone" in table["policy"][1]
    status, detail = table["time zone"]
    assert status == "FAIL" and "'Mars/Olympus' is not a known time zone" in detail, out
    assert table["call window"][0] == "FAIL"


async def test_a_bad_setting_is_one_failed_row(tmp_path: Path, fakes: Fakes) -> None:
    code, table, out = await doctor(environment(tmp_path, fakes, SAFEHAVEN_PORT="eighty"))
    assert code == 1, out
    assert table == {"settings": ("FAIL", table["settings"][1])}
    assert "SAFEHAVEN_PORT" in table["settings"][1]


async def test_only_warnings_exit_2(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        del env[name]
    code, _, err = await safehaven(env, "migrate")
    assert code == 0, err
    code, table, out = await doctor(env)
    assert code == 2, out
    assert table["twilio"][0] == "WARN" and "console transport" in table["twilio"][1]
    assert {s for name, (s, _) in table.items() if name != "twilio"} == {"OK"}, out


async def test_open_data_folder_permissions_fail(tmp_path: Path, fakes: Fakes) -> None:
    env = environment(tmp_path, fakes)
    code, _, err = await safehaven(env, "migrate")
    assert code == 0, err
    (tmp_path / "var" / "safehaven.db").chmod(0o644)
    code, table, out = await doctor(env)
    assert code == 1, out
    assert table["data folder"][0] == "FAIL" and "safehaven.db" in table["data folder"][1]


async def test_production_rules(tmp_path: Path, fakes: Fakes) -> None:
    """In production: SQLite is a warning, no Twilio is a failure (passwords could not go)."""
    env = environment(tmp_path, fakes, SAFEHAVEN_ENV="production",
                      SAFEHAVEN_PUBLIC_URL="https://safehaven.example.gov.uk")
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        del env[name]
    code, table, out = await doctor(env)
    assert code == 1, out
    assert table["settings"][0] == "WARN" and "PostgreSQL" in table["settings"][1], out
    assert table["twilio"][0] == "FAIL" and "production" in table["twilio"][1], out
    del env["SAFEHAVEN_SECRET_KEY"]
    code, table, out = await doctor(env)
    assert code == 1
    assert table == {"settings": ("FAIL", table["settings"][1])}
    assert "SAFEHAVEN_SECRET_KEY is not set" in table["settings"][1]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"SAFEHAVEN_SECRET_KEY": "A" * 43}, "SAFEHAVEN_SECRET_KEY has only 1 different byte"),
    ({"SAFEHAVEN_SECRET_KEY": "not a key!"}, "SAFEHAVEN_SECRET_KEY is not base64url"),
    ({"SAFEHAVEN_PREVIOUS_SECRET_KEYS": "c2hvcnQ"},
     "SAFEHAVEN_PREVIOUS_SECRET_KEYS (key 1) decodes to 5 bytes, not 32"),
])
async def test_a_weak_or_malformed_key_fails_without_being_shown(
        tmp_path: Path, fakes: Fakes, changes: dict[str, str], expected: str) -> None:
    env = environment(tmp_path, fakes, **changes)
    code, table, out = await doctor(env)
    assert code == 1, out
    status, detail = table["secret key"]
    assert status == "FAIL" and expected in detail, out
    for value in changes.values():
        assert value not in out


QUERY_SECRET, PORT_SECRET, STORE_SECRET = "S3CRETQ-db-query", "S3CRETP-db-pass", "S3CRETO-store"


@pytest.mark.parametrize(("changes", "secret", "row", "detail", "serve_refuses"), [
    # A password in the query (asyncpg reads ?password=), not the user-info: not shown.
    ({"SAFEHAVEN_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:{closed}/db"
      f"?password={QUERY_SECRET}&sslpassword={QUERY_SECRET}"},
     QUERY_SECRET, "database", "postgresql+asyncpg://u@127.0.0.1:{closed}/db: cannot connect",
     False),
    # Unreadable URLs: said so, without their text (the password, the secret key).
    ({"SAFEHAVEN_DATABASE_URL": f"postgresql+asyncpg://u:{PORT_SECRET}@127.0.0.1:notaport/db"},
     PORT_SECRET, "database", "SAFEHAVEN_DATABASE_URL is not a valid database URL", True),
    ({"SAFEHAVEN_OBJECT_STORE": f"s3://AKIAX:{STORE_SECRET}/x@bucket/prefix"},
     STORE_SECRET, "object store", "(not a valid URL): SAFEHAVEN_OBJECT_STORE", True),
    # A secret with a "/" in it: the part after it is no prefix to be shown either.
    ({"SAFEHAVEN_OBJECT_STORE": f"s3://AKIAX:abc/{STORE_SECRET}@bucket/prefix"},
     STORE_SECRET, "object store", "(not a valid URL): SAFEHAVEN_OBJECT_STORE", True),
    ({"SAFEHAVEN_OBJECT_STORE": f"s3://bucket/prefix?secret_access_key={STORE_SECRET}"},
     STORE_SECRET, "object store", "s3://bucket/prefix: SAFEHAVEN_OBJECT_STORE", True),
])
async def test_a_credential_in_a_url_is_never_shown(
        tmp_path: Path, fakes: Fakes, changes: dict[str, str], secret: str, row: str,
        detail: str, serve_refuses: bool) -> None:
    closed = closed_port()
    env = environment(tmp_path, fakes, SAFEHAVEN_PORT="0",
                      **{k: v.replace("{closed}", str(closed)) for k, v in changes.items()})
    code, out, err = await safehaven(env, "doctor")
    assert code == 1 and "Traceback" not in out + err and secret not in out + err, out + err
    status, shown = rows(out)[row]
    assert status == "FAIL" and shown.startswith(detail.replace("{closed}", str(closed))), out
    code, out, err = await safehaven(env, "where")
    assert code == 0 and "Traceback" not in out + err and secret not in out + err, out + err
    if serve_refuses:  # a settings error at start-up, without the secret
        code, out, err = await safehaven(env, "serve")
        assert code == 2 and "\nsafehaven: SAFEHAVEN_" in "\n" + err, out + err
        assert "Traceback" not in out + err and secret not in out + err, out + err


async def test_production_sends_no_credential_over_plain_http(tmp_path: Path,
                                                              fakes: Fakes) -> None:
    """TEAMS_LOGIN_URL, TWILIO_API_URL, SLACK_API_URL take https only in production (a
    settings error, so doctor sends nothing and serve does not start); plain http only to
    this machine, outside production. The http fake records whether anything reached it."""
    plain = FakeConnector()
    plain.app_credentials = (APP_ID, APP_PASSWORD)
    await plain.start()
    try:
        production = environment(tmp_path, fakes, SAFEHAVEN_ENV="production", SAFEHAVEN_PORT="0",
                                 SAFEHAVEN_PUBLIC_URL="https://safehaven.example.gov.uk")
        code, table, out = await doctor(production)
        assert table["teams"][0] == table["slack"][0] == table["twilio"][0] == "OK", out
        for variable, url in (("TEAMS_LOGIN_URL", plain.url),
                              ("TWILIO_API_URL", plain.url),
                              ("SLACK_API_URL", f"{plain.url}/api/")):
            env = {**production, variable: url}
            code, table, out = await doctor(env)
            row = {"TEAMS": "teams", "TWILI": "twilio", "SLACK": "slack"}[variable[:5]]
            assert code == 1 and table[row][0] == "FAIL", out
            assert f"{variable} is http://127.0.0.1: plain http is refused when " \
                   "SAFEHAVEN_ENV=production" in table[row][1], out
            code, _, stderr = await safehaven(env, "serve")
            assert code == 2 and f"safehaven: {variable} is http://127.0.0.1" in stderr, stderr
        # Outside production: http to this machine (a test server), never to another host.
        code, table, out = await doctor(environment(tmp_path, fakes, TEAMS_LOGIN_URL=plain.url))
        assert table["teams"][0] == "OK", out
        code, table, out = await doctor(environment(
            tmp_path, fakes, TEAMS_LOGIN_URL="http://login.example.invalid"))
        assert table["teams"] == ("FAIL", "TEAMS_LOGIN_URL is http://login.example.invalid: "
                                  "plain http only to this machine (127.0.0.1, ::1, localhost: "
                                  "a test server); set an https:// URL."), out
        # Only the one development run that allowed it reached the plain http fake.
        assert len(plain.requests) == 1, plain.requests
    finally:
        await plain.close()
