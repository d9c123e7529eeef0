"""Where tpcloud keeps things and which knobs the environment turns.

Everything is read from an explicit mapping (normally ``os.environ``) so tests and embedders
pass their own environment instead of patching globals.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from tpcloud.errors import UsageError

DEFAULT_CLOUD_URL = "https://wap.tplinkcloud.com"
DEFAULT_DISCOVERY_TARGET = "255.255.255.255"
DEFAULT_TIMEOUT = 10.0
# Device identities and appServerUrls rarely change; a switch from cron should not pay for a
# device list every time. An unknown name or a "device not bound" answer refreshes anyway.
DEFAULT_CACHE_TTL = 6 * 3600.0


def _xdg_dir(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var)
    if value and Path(value).is_absolute():
        return Path(value) / "tpcloud"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / fallback / "tpcloud"


def _positive_float(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{var} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise UsageError(f"{var} must not be negative")
    return value


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one tpcloud run."""

    cloud_url: str
    config_dir: Path
    cache_dir: Path
    cache_ttl: float
    timeout: float
    discovery_targets: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, timeout: float | None = None) -> "Settings":
        cloud_url = (env.get("TPCLOUD_CLOUD_URL") or DEFAULT_CLOUD_URL).rstrip("/")
        if not cloud_url.startswith(("https://", "http://")):
            raise UsageError(f"TPCLOUD_CLOUD_URL must be an http(s) URL, not {cloud_url!r}")
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        return cls(
            cloud_url=cloud_url,
            config_dir=_xdg_dir(env, "XDG_CONFIG_HOME", ".config"),
            cache_dir=_xdg_dir(env, "XDG_CACHE_HOME", ".cache"),
            cache_ttl=_positive_float(env, "TPCLOUD_CACHE_TTL", DEFAULT_CACHE_TTL),
            timeout=timeout if timeout is not None else _positive_float(env, "TPCLOUD_TIMEOUT", DEFAULT_TIMEOUT),
            discovery_targets=parse_targets(env.get("TPCLOUD_DISCOVERY_TARGET") or DEFAULT_DISCOVERY_TARGET),
        )


def parse_targets(value: str) -> tuple[str, ...]:
    """Discovery targets: one address, or several separated by commas."""
    targets = tuple(t.strip() for t in value.split(",") if t.strip())
    if not targets:
        raise UsageError("the discovery target is empty")
    return targets


def load_groups(config_dir: Path) -> dict[str, tuple[str, ...]]:
    """The named groups of ``config.toml``'s ``[groups]`` table, by case-folded name.

    No file means no groups. A file that cannot be read is an error rather than no groups, so a
    typo never makes ``switch evening off`` mean something else. On Python 3.10, which has no
    tomllib, an existing file is an error saying so (tpcloud does not parse TOML itself).
    """
    path = config_dir / "config.toml"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        import tomllib
    except ModuleNotFoundError:
        version = ".".join(map(str, sys.version_info[:2]))
        raise UsageError(
            f"{path} needs Python 3.11 or newer to be read (this is Python {version})",
            hint="run tpcloud with Python 3.11+, or move config.toml aside to do without groups",
        ) from None
    try:
        table = tomllib.loads(raw.decode("utf-8")).get("groups", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    wanted = 'write groups as [groups] then evening = ["Desk Lamp", "Office Strip/Printer"]'
    if not isinstance(table, dict):
        raise UsageError(f"{path}: groups must be a table", hint=wanted)
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in table.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m.strip() for m in members):
            raise UsageError(f'{path}: group "{name}" must be a list of one or more device names', hint=wanted)
        if name.strip().casefold() in groups:
            raise UsageError(f'{path}: more than one group is named "{name}" (names ignore case)')
        groups[name.strip().casefold()] = tuple(members)
    return groups
