"""What ``safehaven doctor`` says: one line per check (its name, OK / WARN / FAIL, and a
detail a council IT officer can act on). No line ever carries a secret: a refused token is
named by its setting, never shown."""

from __future__ import annotations

HEADER = ("check", "status", "detail")
SUMMARY = "{ok} OK, {warn} WARN, {fail} FAIL."
EXIT_NOTE = ("Exit code: 0 all OK, 1 something FAILed (serve would not start or a service "
             "is unreachable), 2 only WARNings.")

# Check names, as the table shows them.
SETTINGS = "settings"
POLICY = "policy"
TIME_ZONE = "time zone"
CALL_WINDOW = "call window"
SECRET_KEY = "secret key"
DATA_FOLDER = "data folder"
DATABASE = "database"
MIGRATIONS = "migrations"
OBJECT_STORE = "object store"
AUDIT_ANCHOR = "audit anchor"
TWILIO = "twilio"
SLACK = "slack"
TEAMS = "teams"

SETTINGS_OK = "{environment}; every setting read and valid; public URL {public_url}"
SETTINGS_SQLITE_IN_PRODUCTION = ("production on SQLite ({database}): use PostgreSQL "
                                 "(SAFEHAVEN_DATABASE_URL) for a service")
NOT_CHECKED = "not checked: {what} failed above"

POLICY_OK = "{source}: {levels} classifications, {agreements} agreements"
POLICY_FAIL = ("{source}: {errors}, the first: {first} (run 'safehaven policy check "
               "FILE' for all)")

TIME_ZONE_OK = "{zone} (policy [organisation] timezone): now {now}"
TIME_ZONE_FAIL = "{zone!r} is not a known time zone (policy key organisation.timezone)"
TIME_ZONE_UNREAD = "the policy could not be read, so neither could its time zone"

CALL_WINDOW_OK = "{start}-{end} {days} ({zone}); {state}"
CALL_WINDOW_OPEN = "open now"
CALL_WINDOW_CLOSED = "closed now; calls can be booked for {next}"
CALL_WINDOW_NARROW = ("{start}-{end} {days} ({zone}): shorter than an hour, so few calls can "
                      "be booked")

SECRET_FROM_ENV = "SAFEHAVEN_SECRET_KEY set (32 bytes){previous}"
SECRET_PREVIOUS = "; {keys} still open older seals"
SECRET_BAD = "{name} {problem}; generate one with 'safehaven generate-key'"
SECRET_NOT_BASE64 = "is not base64url"
SECRET_LENGTH = "decodes to {length} bytes, not 32"
SECRET_WEAK = ("has only {distinct} different byte values in 32: it looks typed by hand, "
               "not random")
SECRET_DEV_FILE = ("no SAFEHAVEN_SECRET_KEY: development key file {path} (set "
                   "SAFEHAVEN_SECRET_KEY from your secret store in production)")
SECRET_DEV_NONE = ("no SAFEHAVEN_SECRET_KEY and no development key yet (the first command "
                   "makes {path}); production needs SAFEHAVEN_SECRET_KEY")

FOLDER_OK = "{path}: 0700, files 0600, owned by this account"
FOLDER_MISSING = "{path} does not exist yet (the first command creates it, 0700)"
FOLDER_OPEN = "{path} is {mode}: others can list it; chmod 700 {path}"
FOLDER_FILES_OPEN = "readable or writable by others: {paths} (chmod 600; folders 700)"
FOLDER_NOT_OWNED = "{path} belongs to another account (uid {uid})"
NOT_YOURS = ("the data folder {path} belongs to {owner}, not to this account: what this "
             "command writes there would be unreadable to {owner}. Run it as {owner}, with "
             "the services' settings (docs/operations.md, \"Admin commands\"), e.g. "
             "sudo systemd-run --pipe --wait -p User={owner} "
             "-p EnvironmentFile=/etc/safehaven/safehaven.env safehaven ...")

DATABASE_OK = "{url}: connected"
DATABASE_SQLITE_MISSING = "{url}: no database file yet (serve or migrate creates it)"
DATABASE_FAIL = "{url}: cannot connect ({reason})"
# Any command, when the database cannot be reached (bot/app/cli.py).
DATABASE_UNREACHABLE = ("cannot reach the database {url} ({reason}). Check "
                        "SAFEHAVEN_DATABASE_URL and that the server is running and accepts "
                        "this login; 'safehaven doctor' checks every setting.")
MIGRATIONS_CURRENT = "at the head revision {head}"
MIGRATIONS_BEHIND = ("at {current}, the code expects {head}: run 'safehaven migrate' "
                     "(serve also migrates on start)")
MIGRATIONS_EMPTY = "no schema yet: run 'safehaven migrate' (serve also migrates on start)"
MIGRATIONS_UNKNOWN = ("at {current}, which this code does not know: the database is newer "
                      "than this release")

OBJECTS_OK = "{url}: wrote, read back and deleted a probe object"
OBJECTS_FAIL = "{url}: {reason}"
OBJECTS_MISMATCH = "read back different bytes than were written"
OBJECTS_DATA_FOLDER_MISSING = "{url}: not probed, the data folder does not exist yet"

ANCHOR_FILE_OK = "{path}: writable{exists}"
ANCHOR_FILE_NEW = " (created with the first checkpoint)"
ANCHOR_FILE_FAIL = "{path}: not writable by this account ({reason})"
ANCHOR_IN_STORE = "{spec}: in the object store (probed above)"
ANCHOR_STORE_OK = "{spec}: wrote, read back and deleted a probe object"

NOT_CONFIGURED = "not configured (not served)"
TWILIO_CONSOLE = ("not configured: passwords are printed by the development console "
                  "transport (refused in production); see docs/twilio.md")
TWILIO_REQUIRED = ("not configured, and production sends passwords only through Twilio: set "
                   "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and a sender (docs/twilio.md)")
TWILIO_OK = "account {sid} ({status}) at {host}; sender {sender}"
TWILIO_REFUSED = ("{host} refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN (HTTP {status}): "
                  "copy both from the Twilio console")
TWILIO_HTTP = "{host} answered HTTP {status} to the account fetch"
SLACK_OK = "bot {user} in workspace {team} at {host}"
SLACK_REFUSED = "{host} refused SLACK_BOT_TOKEN ({error}): reinstall the app and copy its token"
SLACK_HTTP = "{host} answered HTTP {status} to auth.test"
TEAMS_AUTH_OFF = "TEAMS_AUTH=off: served unauthenticated (this machine only, never production)"
TEAMS_MSI = "MicrosoftAppType=UserAssignedMSI: its token is only available inside Azure"
TEAMS_OK = "Microsoft sign-in at {host} issued a token for MicrosoftAppId {app_id}"
TEAMS_REFUSED = ("{host} refused MicrosoftAppId / MicrosoftAppPassword ({error}): create a "
                 "new client secret in the app registration")
UNREACHABLE = "{host} unreachable ({reason})"
