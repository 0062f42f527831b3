"""The ``safehaven`` command line: serve, chat, share, approve, status, cancel, audit.

Every command uses the same settings, policy, engine and store as the chat channels, so a
transfer started in one place can be followed or decided in another. This module parses the
arguments and runs the command; the commands live in ``server`` (serve, worker),
``transfer_commands`` and ``share`` (the transfers), ``admin`` (migrate, keys, audit), and
``agreements`` (the register of information-sharing agreements).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from bot.app.admin import (
    cmd_audit_checkpoint,
    cmd_audit_export,
    cmd_audit_public_key,
    cmd_audit_verify,
    cmd_audit_verify_export,
    cmd_generate_key,
    cmd_migrate,
)
from bot.app.agreements import add_parser as add_agreements_parser
from bot.app.config import Config, load_config
from bot.app.doctor import add_parser as add_doctor_parser
from bot.app.incidents import add_parser as add_incidents_parser
from bot.app.plugins import CHANNELS, Command
from bot.app.policy_check import add_parser as add_policy_parser
from bot.app.process import EXIT_CONFIG, EXIT_INVALID, default_user
from bot.app.retention import add_parser as add_retention_parser
from bot.app.rotation import add_parser as add_rotation_parser
from bot.app.runtime import configure_logging
from bot.app.server import cmd_serve, cmd_worker
from bot.app.transfer_commands import (
    cmd_approve,
    cmd_cancel,
    cmd_chat,
    cmd_received,
    cmd_share,
    cmd_status,
    reference_arg,
)
from bot.app.where import add_parser as add_where_parser
from bot.app.where import database_unreachable, ensure_data_folder
from bot.policy import PolicyError
from bot.private import UMASK
from bot.settings import SettingsError
from bot.statuses import DeliveryMethod, PasswordMethod

__all__ = ["EXIT_CONFIG", "EXIT_INVALID", "build_parser", "main"]

# Commands that talk to no channel and read only the core settings.
CORE_ONLY = ("generate-key", "migrate", "agreements", "where",
             *(command.name for wiring in CHANNELS for command in wiring.commands))


# Commands whose terminal shows the conversation alone (their log: the log file; --verbose
# shows it on chat and share).
CONVERSATIONS = ("chat", "share", "approve", "received")

# What `safehaven --help` says (plain text: the terminal shows it as it is).
DESCRIPTION = (
    "Safe Haven's command line: share files safely (chat, share), decide and follow "
    "transfers (approve, status, cancel, received, mistake), run the service (serve, "
    "worker, migrate) and keep the records (audit, agreements, retention, incidents). "
    "Every command uses the same settings, policy and database as the chat channels, so a "
    "transfer started in one place can be followed or decided in another. 'safehaven where' "
    "shows where the data is.")

# --- parser --------------------------------------------------------------------------------


def _core_only(command: Command) -> Callable[[Config, argparse.Namespace], int]:
    return lambda config, args: command.run(config.core, args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safehaven", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP server (channels, health, scheduler)")
    s.add_argument("--no-scheduler", action="store_true",
                   help="do not run password sends and expiry in this process")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="run only the scheduler (password sends, expiry)")
    s.add_argument("--exit-when-idle", action="store_true",
                   help="stop once no delivery is due (for batch runs and tests)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("migrate", help="create or upgrade the database schema")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("generate-key", help="print a new SAFEHAVEN_SECRET_KEY")
    s.set_defaults(func=cmd_generate_key)

    for wiring in CHANNELS:
        for command in wiring.commands:
            command.add_parser(sub).set_defaults(func=_core_only(command))

    s = sub.add_parser("chat", help="the guided conversation in this terminal")
    s.add_argument("files", nargs="*", help="files to share (none: carry on where you were)")
    s.add_argument("--sender", default=default_user(), help="who you are (console:NAME)")
    s.add_argument("--verbose", action="store_true",
                   help="show the log in the terminal too (it is always in the log file)")
    s.set_defaults(func=cmd_chat)

    # Every answer that goes on the record is given here by the person sharing: a missing
    # one stops the command naming the option and its choices (bot.app.share.check_flags).
    s = sub.add_parser("share", help="the same flow without questions (for scripts)")
    s.add_argument("files", nargs="+", help="the files to share")
    s.add_argument("--classification", help="the protective marking (one of the policy's)")
    s.add_argument("--category", action="append", dest="categories", metavar="KEY",
                   help="a kind of information it carries (a key of the policy's "
                   "[[information_category]]); repeat for each that applies")
    s.add_argument("--recipient-name", required=True, help="the recipient's full name")
    s.add_argument("--recipient-title", required=True, help="the recipient's job title")
    s.add_argument("--recipient-department", default="",
                   help="the recipient's department (optional: recorded empty if not given)")
    s.add_argument("--recipient-org", required=True, help="the recipient's organisation")
    s.add_argument("--recipient-email", required=True,
                   help="the recipient's work email address")
    s.add_argument("--recipient-phone", required=True,
                   help="the recipient's phone number, for the password")
    s.add_argument("--purpose", required=True, help="why the recipient needs it")
    s.add_argument("--lawful-basis", help="one of the policy's lawful bases")
    s.add_argument("--consent", required=True, help="what the recipient may do with it")
    s.add_argument("--onward-sharing", nargs="?", const="yes", choices=("yes", "no"),
                   help="whether the recipient may share it onward: yes or no (required)")
    s.add_argument("--delete-after-use", action="store_true",
                   help="confirm the recipient will be told to delete it after use (required)")
    s.add_argument("--delivery", choices=[m.value for m in DeliveryMethod],
                   help="how the archive goes (default: the policy's default_delivery for "
                   "the classification)")
    s.add_argument("--password-via", choices=[m.value for m in PasswordMethod],
                   help="how the recipient gets the password (required; one the "
                   "classification allows)")
    s.add_argument("--call-at", help="ISO-8601 time agreed for the password call (required "
                   "with --password-via voice)")
    s.add_argument("--sender", default=default_user(),
                   help="who you are (console:NAME; default: your login name)")
    s.add_argument("--out", help="copy the archive into this folder (the copy is 0600)")
    s.add_argument("--verbose", action="store_true",
                   help="print the whole summary, and the log in the terminal too")
    s.set_defaults(func=cmd_share)

    s = sub.add_parser("approve", help="approve (or --reject) a transfer waiting for you")
    s.add_argument("reference", type=reference_arg,
                   help="the transfer's reference, e.g. SH-7K3Q-9F")
    s.add_argument("--approver", required=True, help="who you are (console:NAME)")
    s.add_argument("--reject", action="store_true", help="reject it instead of approving")
    s.add_argument("--reason", default="", help="why (told to the sender; with --reject)")
    s.set_defaults(func=cmd_approve)

    s = sub.add_parser("status", help="where a transfer is")
    s.add_argument("reference", type=reference_arg,
                   help="the transfer's reference, e.g. SH-7K3Q-9F")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("cancel", help="cancel an unfinished transfer")
    s.add_argument("reference", type=reference_arg,
                   help="the transfer's reference, e.g. SH-7K3Q-9F")
    s.add_argument("--sender", default=None,
                   help="act as this sender (default: as an administrator)")
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("received", help="the recipient has the archive: send the SMS password")
    s.add_argument("reference", type=reference_arg,
                   help="the transfer's reference, e.g. SH-7K3Q-9F")
    s.add_argument("--sender", default=default_user(),
                   help="who you are: the transfer's sender (default: your login name)")
    s.set_defaults(func=cmd_received)

    a = sub.add_parser("audit", help="verify or export the audit trail")
    asub = a.add_subparsers(dest="audit_command", required=True)
    s = asub.add_parser("verify", help="check the keyed chain against the signed checkpoints, "
                        "or (--export) an export with the public key alone")
    s.add_argument("--export", help="an export file to check instead (no database needed)")
    s.add_argument("--public-key",
                   help="with --export: the key 'safehaven audit public-key' printed")
    s.add_argument("--signature", help="with --export: its signature (default: FILE.sig)")
    s.set_defaults(func=cmd_audit_verify)
    s = asub.add_parser("export", help="write the records as CSV or JSON lines")
    s.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO-8601 time")
    s.add_argument("--until", help="YYYY-MM-DD (that day included) or an ISO-8601 time")
    s.add_argument("--reference", help="one transfer's records")
    s.add_argument("--sender", help="records of transfers this sender started (a user id)")
    s.add_argument("--organisation", help="records of transfers to this organisation")
    s.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv (default) or json (one record a line)")
    s.add_argument("--out", help="file to write, 0600, signed in FILE.sig "
                   "(default: standard output, unsigned)")
    s.set_defaults(func=cmd_audit_export)
    s = asub.add_parser("public-key", help="print the key that checks checkpoints and exports")
    s.add_argument("--format", choices=("pem", "base64"), default="pem",
                   help="pem (default) or base64 (the raw key on one line)")
    s.add_argument("--all", action="store_true",
                   help="each key labelled: the current one and those of earlier key "
                   "rotations")
    s.set_defaults(func=cmd_audit_public_key)
    s = asub.add_parser("checkpoint", help="sign and write a checkpoint now")
    s.set_defaults(func=cmd_audit_checkpoint)

    add_agreements_parser(sub)

    add_retention_parser(sub)

    add_incidents_parser(sub)

    add_where_parser(sub)

    add_rotation_parser(sub)

    add_policy_parser(sub)

    add_doctor_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # What Safe Haven writes is for this account only (bot/private.py): files created
    # without an explicit mode still come out 0600, folders 0700.
    os.umask(UMASK)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "audit" and getattr(args, "export", None):
            # An auditor's check: no settings, database or secret, nothing written.
            return cmd_audit_verify_export(args)
        standalone = getattr(args, "standalone", None)
        if standalone is not None:  # reads its own input (policy check, doctor)
            return int(standalone(args))
        config = load_config(channels=args.command not in CORE_ONLY)
        if args.command not in ("generate-key", "where"):  # these two create nothing
            ensure_data_folder(config.core)
            # A conversation keeps the terminal to itself: its log goes to the log file
            # only, unless --verbose.
            configure_logging(config.core, terminal=args.command not in CONVERSATIONS
                              or getattr(args, "verbose", False))
        code: int = args.func(config, args)
        return code
    except (SettingsError, PolicyError) as exc:
        sys.stderr.write(f"safehaven: {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A database that cannot be reached is a sentence for the operator, not a traceback;
        # anything else is a fault and keeps its traceback.
        said = database_unreachable(exc, os.environ.get("SAFEHAVEN_DATABASE_URL", ""))
        if said is None or not os.environ.get("SAFEHAVEN_DATABASE_URL"):
            raise
        sys.stderr.write(f"safehaven: {said}\n")
        return EXIT_INVALID


if __name__ == "__main__":
    raise SystemExit(main())
