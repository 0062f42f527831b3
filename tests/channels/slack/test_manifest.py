"""The Slack app manifest asks for what the channel uses, and no more."""

from __future__ import annotations

import re
from pathlib import Path

from channels.slack.http import PATH

MANIFEST = Path(__file__).resolve().parents[3] / "manifest" / "slack" / "manifest.yaml"


def listed(section: str) -> list[str]:
    """The ``- item`` lines right under ``section:`` (the manifest is plain YAML)."""
    text = MANIFEST.read_text(encoding="utf-8")
    block = re.search(rf"^(\s*){section}:\n((?:\1\s+- .*\n)+)", text, flags=re.M)
    assert block, section
    return [re.sub(r"\s+#.*$", "", line.split("- ", 1)[1]).strip()
            for line in block.group(2).splitlines()]


def test_scopes_are_exactly_those_used() -> None:
    assert sorted(listed("bot")) == ["app_mentions:read", "chat:write", "commands",
                                     "files:read", "files:write", "im:history", "im:write"]


def test_events_and_urls_match_the_server() -> None:
    assert sorted(listed("bot_events")) == ["app_mention", "message.im"]
    text = MANIFEST.read_text(encoding="utf-8")
    urls = re.findall(r"(?:url|request_url): (\S+)", text)
    assert len(urls) == 3 and all(u.endswith(PATH) for u in urls)
    assert "command: /safehaven" in text
    assert "messages_tab_enabled: true" in text
