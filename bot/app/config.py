"""The process's configuration, read from the environment once, at start-up.

:func:`load_config` reads the core ``SAFEHAVEN_*`` variables, then each channel's section
with the loader :data:`bot.app.plugins.CHANNELS` names for it, and returns one
:class:`Config`; from then on nothing reads the environment again: each channel is handed
its own section. A section is None when that channel is not configured (Teams: not
servable); a half-configured one stops start-up with the loader's
:class:`bot.settings.SettingsError`, which names the variable to set. Commands that reach
no channel (``generate-key``, ``migrate``, a channel's own commands) read the core alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bot.app.plugins import CHANNELS
from bot.settings import Settings, load_settings

S = TypeVar("S")


@dataclass(frozen=True)
class Config:
    core: Settings
    sections: Mapping[str, object] = field(default_factory=dict)  # by channel name

    def section(self, name: str, kind: type[S]) -> S | None:
        """Channel ``name``'s section, None when it is not configured."""
        section = self.sections.get(name)
        return section if isinstance(section, kind) else None


def load_config(env: Mapping[str, str] | None = None, *, channels: bool = True) -> Config:
    """Read every section from ``env`` (default: the process environment); with
    ``channels=False``, the core alone (for commands that reach no channel)."""
    env = dict(os.environ) if env is None else env
    core = load_settings(env)
    if not channels:
        return Config(core=core)
    return Config(core=core, sections={wiring.name: wiring.load(core, env)
                                       for wiring in CHANNELS})
