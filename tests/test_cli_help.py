"""`safehaven --help` and every subcommand's help are plain text, and every option says what
it is for (issue 15): walked over the parser the command line itself builds."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.app.cli import build_parser

# reST roles and literals, and any backtick: the terminal shows them as they are.
MARKUP = re.compile(r"`|:(func|class|data|mod|meth|attr|ref|doc|exc|obj):|\*\*|\.\. ")


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def subcommands_without_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest for choice in action._choices_actions
                         if choice.help and choice.help != argparse.SUPPRESS}
            missing += [name for name in action.choices if name not in described]
    return missing


def test_every_option_and_subcommand_has_help_text() -> None:
    lacking = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                name = "/".join(action.option_strings) or action.dest
                lacking.append(f"safehaven {' '.join(path)} {name}".replace("  ", " "))
        lacking += [f"safehaven {' '.join((*path, name))}"
                    for name in subcommands_without_help(parser)]
    assert lacking == []


def test_no_help_output_holds_markup() -> None:
    found = {}
    walked = 0
    for path, parser in parsers(build_parser()):
        walked += 1
        text = parser.format_help()
        hits = sorted({m.group(0) for m in MARKUP.finditer(text)})
        if hits:
            found[" ".join(("safehaven", *path))] = hits
    assert walked > 20  # every subcommand was reached, audit's own included
    assert found == {}


def test_the_installed_command_prints_plain_help() -> None:
    """The real entry point, as a new user would type it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    done = subprocess.run([sys.executable, "-m", "bot.app.cli", "--help"], env=env,
                          text=True, capture_output=True, timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert "usage: safehaven" in done.stdout and "where" in done.stdout
    assert not MARKUP.search(done.stdout), done.stdout
