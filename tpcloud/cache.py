"""The account's device list on disk, so a command needs no device list round trip.

Only identities live here (names, ids, models, appServerUrls, outlets): never a token or a
password. A cache that cannot be read is treated as absent and rebuilt, never trusted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

from tpcloud.devices import Device
from tpcloud.fsutil import atomic_write

FORMAT = 1


class DeviceCache:
    """``devices.json`` under the cache folder, with its age."""

    def __init__(self, folder: Path, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.path = folder / "devices.json"
        self._ttl = ttl
        self._clock = clock

    def load(self) -> tuple[list[Device], float] | None:
        """The cached devices and when they were fetched, or None if there is no usable cache."""
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("format") != FORMAT:
                return None
            return [Device.from_dict(d) for d in data["devices"]], float(data["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def load_fresh(self) -> list[Device] | None:
        """The cached devices if they are younger than the TTL."""
        cached = self.load()
        if cached is None:
            return None
        devices, fetched_at = cached
        age = self._clock() - fetched_at
        return devices if 0 <= age < self._ttl else None

    def save(self, devices: list[Device]) -> None:
        data = {"format": FORMAT, "fetched_at": self._clock(), "devices": [d.to_dict() for d in devices]}
        atomic_write(self.path, json.dumps(data, indent=1, ensure_ascii=False).encode())

    def clear(self) -> None:
        """Remove everything tpcloud cached."""
        shutil.rmtree(self.folder, ignore_errors=True)


class LanCache:
    """What discovery learned: where each device answers on the LAN and how (no secrets)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "lan.json"

    def load(self) -> list[dict]:
        try:
            data = json.loads(self.path.read_bytes())
            entries = data["devices"] if data.get("format") == FORMAT else []
            return [e for e in entries if isinstance(e, dict)]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []

    def forget(self, host: str, port: int, wire: str) -> None:
        """Drop what was learned of the device at HOST:PORT on WIRE (it no longer answers that way)."""
        entries = self.load()
        kept = [e for e in entries if (e.get("host"), e.get("port"), e.get("wire")) != (host, port, wire)]
        if len(kept) != len(entries):
            atomic_write(self.path, json.dumps({"format": FORMAT, "devices": kept}, indent=1).encode())

    def merge(self, found: list[dict]) -> None:
        """Add or replace what was found; a device is the same device when its MAC is."""
        fresh_macs = {f.get("mac") for f in found}
        fresh_hosts = {(f.get("host"), f.get("port")) for f in found}
        kept = [e for e in self.load() if e.get("mac") not in fresh_macs and (e.get("host"), e.get("port")) not in fresh_hosts]
        atomic_write(self.path, json.dumps({"format": FORMAT, "devices": kept + found}, indent=1).encode())
