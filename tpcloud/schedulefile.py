"""Schedule files: the rules each device should hold, kept in git and applied from cron
(`tpcloud schedule apply FILE`).

A file is TOML, one table per device, outlet or group (names as on the command line), each with
a list of rules; a device the file does not name is left alone, and ``rules = []`` clears one::

    ["Porch Light"]
    rules = [
      { action = "on", at = "sunset-15m" },                 # every day unless `days` says
      { action = "off", at = "23:30", days = "weekdays" },
    ]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tpcloud.capabilities.schedule import Rule, rule_from
from tpcloud.errors import TpcloudError, UsageError
from tpcloud.timespec import EVERY_DAY, parse_days, parse_when

_KEYS = {"action", "at", "days", "brightness", "enabled"}


def load(path: Path) -> dict[str, list[Rule]]:
    """The rules of each name in the file at PATH, in the file's order; one line saying where a
    mistake is (the file, the name, the rule's number)."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a TOML file: {exc}") from None
    if not data:
        raise UsageError(f"{path}: names no device", hint='write a table per device: ["Porch Light"] with rules = [...]')
    return {name: _rules(path, name, table) for name, table in data.items()}


def _rules(path: Path, name: str, table: Any) -> list[Rule]:
    where = f'{path}: "{name}"'
    if not isinstance(table, dict) or set(table) != {"rules"} or not isinstance(table["rules"], list):
        raise UsageError(f"{where}: a device's table holds one key, rules = [...]")
    rules = []
    for number, entry in enumerate(table["rules"], 1):
        try:
            rules.append(_rule(entry))
        except TpcloudError as exc:
            raise UsageError(f"{where} rule {number}: {exc.message}") from None
    return rules


def _rule(entry: Any) -> Rule:
    if not isinstance(entry, dict):
        raise UsageError("a rule is a table such as { action = \"on\", at = \"07:30\" }")
    unknown = set(entry) - _KEYS
    if unknown:
        raise UsageError(f"unknown key {sorted(unknown)[0]!r} (a rule has {', '.join(sorted(_KEYS))})")
    for key in ("action", "at"):
        if not isinstance(entry.get(key), str):
            raise UsageError(f"{key} is required, as a string")
    days = entry.get("days", "daily")
    if not isinstance(days, str):
        raise UsageError("days is a string such as \"weekdays\" or \"mon,wed\"")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise UsageError("enabled is true or false")
    return rule_from(entry["action"], parse_when(entry["at"]), parse_days(days) if days else EVERY_DAY,
                     brightness=entry.get("brightness"), enabled=enabled)
