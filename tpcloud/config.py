"""Where tpcloud keeps things and which knobs the environment turns.

Everything is read from an explicit mapping (normally ``os.environ``) so tests and embedders
pass their own environment instead of patching globals.
"""

from __future__ import annotations

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
