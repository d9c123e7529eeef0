"""Where tpcloud keeps things and which knobs the environment turns.

Every knob is read here, once, from an explicit mapping (normally ``os.environ``) into
:class:`Settings`, which is passed down: tests and embedders pass their own environment instead
of patching globals, and no module below reads the environment itself.
"""

from __future__ import annotations

import sys
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from tpcloud.errors import UsageError

DEFAULT_CLOUD_URL = "https://wap.tplinkcloud.com"
# The signed V2 API the current Kasa app speaks (tpcloud.cloud.v2).
DEFAULT_CLOUD_V2_URL = "https://n-wap.tplinkcloud.com"
CLOUD_V2_URL_VAR = "TPCLOUD_CLOUD_V2_URL"
CLOUD_V2_CA_FILE_VAR = "TPCLOUD_CLOUD_V2_CA_FILE"
SECRET_STORE_VAR = "TPCLOUD_SECRET_STORE"
PASSPHRASE_VAR = "TPCLOUD_PASSPHRASE"
# keyring's own knob: when set, it names the backend, and tpcloud's remembered choice stands aside.
KEYRING_BACKEND_VAR = "PYTHON_KEYRING_BACKEND"
SECRET_STORES = ("", "file", "keyring")
# Where `energy --archive` keeps the meters' figures (default: energy.sqlite in the data folder).
ENERGY_DB_VAR = "TPCLOUD_ENERGY_DB"
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


def _http_url(env: Mapping[str, str], var: str, default: str) -> str:
    url = (env.get(var) or default).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"{var} must be an http(s) URL, not {url!r}")
    return url


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
    """The resolved configuration of one tpcloud run; secrets in it never show in its repr."""

    cloud_url: str
    config_dir: Path
    cache_dir: Path
    # What tpcloud keeps for the user, which deleting the cache must not lose: the energy archive.
    data_dir: Path
    energy_db: Path
    cache_ttl: float
    timeout: float
    discovery_targets: tuple[str, ...]
    # The V2 cloud: its endpoint, and CA files trusted for it besides TP-Link's own.
    cloud_v2_url: str = DEFAULT_CLOUD_V2_URL
    cloud_v2_ca_files: tuple[str, ...] = ()
    # "file", "keyring", or "" (the OS keyring when there is a usable one, else the file).
    secret_store: str = ""
    # The keyring backend PYTHON_KEYRING_BACKEND names ("" = keyring chooses).
    keyring_backend: str = ""
    # The file store's passphrase ("" = not encrypted).
    passphrase: str = field(default="", repr=False)
    # The account for `login` from the environment, when no option or prompt gives it.
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def secrets_file(self) -> Path:
        """Where the file store keeps the secrets: beside the rest of tpcloud's configuration."""
        return self.config_dir / "secrets.json"

    @property
    def store_choice_file(self) -> Path:
        """Where the secret store chosen when none is forced is remembered (tpcloud.storechoice)."""
        return self.config_dir / "store.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, timeout: float | None = None) -> "Settings":
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        store = env.get(SECRET_STORE_VAR, "").strip().lower()
        if store not in SECRET_STORES:
            raise UsageError(f"{SECRET_STORE_VAR} must be 'file' or 'keyring', not {store!r}")
        data_dir = _xdg_dir(env, "XDG_DATA_HOME", ".local/share")
        return cls(
            cloud_url=_http_url(env, "TPCLOUD_CLOUD_URL", DEFAULT_CLOUD_URL),
            config_dir=_xdg_dir(env, "XDG_CONFIG_HOME", ".config"),
            cache_dir=_xdg_dir(env, "XDG_CACHE_HOME", ".cache"),
            data_dir=data_dir,
            energy_db=Path(env[ENERGY_DB_VAR]).expanduser() if env.get(ENERGY_DB_VAR) else data_dir / "energy.sqlite",
            cache_ttl=_positive_float(env, "TPCLOUD_CACHE_TTL", DEFAULT_CACHE_TTL),
            timeout=timeout if timeout is not None else _positive_float(env, "TPCLOUD_TIMEOUT", DEFAULT_TIMEOUT),
            discovery_targets=parse_targets(env.get("TPCLOUD_DISCOVERY_TARGET") or DEFAULT_DISCOVERY_TARGET),
            cloud_v2_url=_http_url(env, CLOUD_V2_URL_VAR, DEFAULT_CLOUD_V2_URL),
            cloud_v2_ca_files=tuple(p for p in (env.get(CLOUD_V2_CA_FILE_VAR) or "").split(os.pathsep) if p),
            secret_store=store,
            keyring_backend=env.get(KEYRING_BACKEND_VAR, "").strip(),
            passphrase=env.get(PASSPHRASE_VAR, ""),
            username=(env.get("TPCLOUD_USERNAME") or "").strip(),
            password=env.get("TPCLOUD_PASSWORD", ""),
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
