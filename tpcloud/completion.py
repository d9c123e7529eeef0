"""Shell completion: device names from the local cache, groups from config.toml, bash quoting.

Completion runs on every <TAB>, so it must answer at once and never wait: names come from the
cached device list (whatever its age) and nothing else — no network, no secret store, and no
import heavier than the cache reader.
"""

from __future__ import annotations

import os
import re

import typer
from typer._click.shell_completion import CompletionItem, add_completion_class
from typer._completion_classes import BashComplete

from tpcloud.cache import DeviceCache
from tpcloud.config import Settings, load_groups
from tpcloud.devices import Device, Target, resolve
from tpcloud.errors import TpcloudError


def device_names(incomplete: str) -> list[tuple[str, str]]:
    """(name, description) for each NAME starting with INCOMPLETE that picks exactly one target:
    device aliases, "STRIP/OUTLET", and an outlet's own alias."""
    try:
        settings = Settings.from_env(os.environ)
    except TpcloudError:  # a broken environment: the command itself will say so
        return []
    cached = DeviceCache(settings.cache_dir, ttl=settings.cache_ttl).load()
    devices = cached[0] if cached else []
    names = []
    for device in devices:
        for target in (Target(device), *(Target(device, outlet) for outlet in device.outlets)):
            about = f"outlet of {device.alias}" if target.outlet else device.model
            for name in dict.fromkeys((target.full_name, target.name)):
                if name.startswith(incomplete) and _picks(devices, name, target):
                    names.append((name, about))
    return names


def names_and_groups(incomplete: str) -> list[tuple[str, str]]:
    """Device names, then the groups of config.toml, for commands that take several names."""
    try:
        groups = load_groups(Settings.from_env(os.environ).config_dir)
    except TpcloudError:  # a broken config.toml: the command itself will say so
        groups = {}
    found = [(name, f"group of {len(members)}") for name, members in groups.items() if name.startswith(incomplete)]
    return device_names(incomplete) + found


# What `switch` does to each device it names.
ACTIONS = ("on", "off", "toggle")


def switch_words(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """What may come next in `switch NAME... on|off|toggle`: a name, and once a name (or --all)
    is given, the action (Click offers only the first argument of a variadic one, so the names'
    completion offers the action as well)."""
    words = names_and_groups(incomplete)
    if ctx.params.get("words") or ctx.params.get("every"):
        words += [(action, "what to do") for action in ACTIONS if action.startswith(incomplete)]
    return words


# What `schedule NAME ...` does, and what `schedule NAME add` switches to.
SCHEDULE_VERBS = ("list", "add", "rm", "enable", "disable", "clear")


def schedule_words(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """What may come next in `schedule NAME VERB ...` or `schedule apply FILE NAME...`: first a
    name or apply, then a verb, then on/off after add. Nothing is offered for a file or a rule
    id: the shell completes file names itself, and ids need the device."""
    given = ctx.params.get("words") or []
    if not given:
        return device_names(incomplete) + [("apply", "a schedule file")] * "apply".startswith(incomplete)
    if given[0].casefold() == "apply":
        return names_and_groups(incomplete) if len(given) > 1 else []
    if len(given) == 1:
        return [(verb, "schedules") for verb in SCHEDULE_VERBS if verb.startswith(incomplete)]
    if len(given) == 2 and given[1] == "add":
        return [(action, "what the rule does") for action in ACTIONS[:2] if action.startswith(incomplete)]
    return []


def _picks(devices: list[Device], name: str, target: Target) -> bool:
    """Whether NAME resolves to TARGET (an outlet alias two strips share resolves to neither)."""
    try:
        return resolve(devices, name) == target
    except TpcloudError:
        return False


# What bash needs escaped outside quotes, within "...", and within '...'.
_UNSAFE_BARE = re.compile(r"([^\w@%+=:,./-])")
_UNSAFE_DOUBLE = re.compile(r'([\\"$`])')


def bash_word(value: str, opening_quote: str) -> str:
    """VALUE as bash must see it after what the user typed: bare, or inside an open quote
    (readline adds the closing quote itself)."""
    if opening_quote == "'":
        return value.replace("'", "'\\''")
    if opening_quote == '"':
        return _UNSAFE_DOUBLE.sub(r"\\\1", value)
    return _UNSAFE_BARE.sub(r"\\\1", value)


class QuotingBashComplete(BashComplete):
    """Typer's bash completion, with each value quoted: bash inserts what the script's function
    returns as it is, so `Desk Lamp` would otherwise arrive as two words."""

    def format_completion(self, item: CompletionItem) -> str:
        # Typer's script joins COMP_WORDS with newlines; the word under the cursor is raw text.
        words = os.environ.get("COMP_WORDS", "").split("\n")
        index = int(os.environ.get("COMP_CWORD", "0"))
        current = words[index] if 0 <= index < len(words) else ""
        return bash_word(item.value, current[:1] if current[:1] in ("'", '"') else "")


def use_quoting_bash() -> None:
    """Register the quoting bash class; call after Typer has registered its own (in get_command)."""
    add_completion_class(QuotingBashComplete, "bash")
