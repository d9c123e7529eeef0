"""The LAN address book: where each device answers on the LAN, and how to find it again.

What discovery learns is kept in the LAN cache (``lan.json``); a device of the account is matched
to an entry by its MAC (or, for XOR replies, its deviceId). The book also knows the address
``--host`` names, and runs at most one fallback discovery per command, shared by every device
that needs it (a command that runs for long, `watch` or `wait`, one each REDISCOVER_AFTER).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Callable, Sequence

from tpcloud import errors
from tpcloud.lan.discovery import Found, discover, normalise_mac

if TYPE_CHECKING:
    from tpcloud.cache import LanCache
    from tpcloud.devices import Device

# The discovery run when a device's address is unknown or stale, and `--host` asked how it talks.
FALLBACK_DISCOVERY_TIMEOUT = 2.0
# Seconds after which a command still running discovers again for a device it cannot find: one
# switched off may come back.
REDISCOVER_AFTER = 10.0


def parse_host(value: str) -> tuple[str, int | None]:
    """`HOST` or `HOST:PORT` (a bracketed IPv6 address may carry a port too)."""
    host, sep, port = value.rpartition(":") if value.count(":") == 1 or value.startswith("[") else ("", "", "")
    if not sep:
        return value.strip("[]"), None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.UsageError(f"--host wants HOST or HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def matches(device: "Device", found: Found) -> bool:
    """A discovered device is an account device when its MAC (or its XOR deviceId) is the same."""
    mac = normalise_mac(device.mac)
    return bool(mac and mac == normalise_mac(found.mac)) or bool(found.device_id and found.device_id == device.device_id)


class AddressBook:
    """Cached LAN addresses, the `--host` address, and discovery, for one command."""

    def __init__(
        self,
        cache: "LanCache",
        *,
        targets: tuple[str, ...],
        timeout: float,
        host: str | None = None,
        at: Found | None = None,
        log: Callable[[str], None] = lambda _line: None,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        """HOST: the address `--host` gave (HOST or HOST:PORT); AT: an address already known
        (`doctor` checks a device there); either pins the command to one device. TICKS: the
        clock REDISCOVER_AFTER is counted by."""
        self._cache = cache
        self.targets = targets
        self._timeout = min(timeout, FALLBACK_DISCOVERY_TIMEOUT)
        self._host = parse_host(host) if host else None
        self._at = at
        self._log = log
        self._ticks = ticks
        self._fallback: "asyncio.Future[list[Found]] | None" = None
        self._fallback_began = 0.0
        self._entries: list[Found] | None = None  # lan.json as read, until discovery changes it

    @property
    def pinned(self) -> bool:
        """Whether this command was given one device's address (so it may name only one)."""
        return self._host is not None or self._at is not None

    def entries(self) -> list[Found]:
        """Everything discovery has learned so far (unreadable entries are skipped); read once,
        as every request of a command asks it."""
        if self._entries is None:
            self._entries = []
            for entry in self._cache.load():
                try:
                    self._entries.append(Found.from_dict(entry))
                except (KeyError, TypeError, ValueError):
                    continue
        return self._entries

    def cached(self, device: "Device") -> Found | None:
        """DEVICE's last known address."""
        return next((f for f in self.entries() if matches(device, f)), None)

    def of(self, devices: Sequence["Device"]) -> dict[str, Found]:
        """Each device's last known address, by deviceId."""
        return {d.device_id: f for d in devices if (f := self.cached(d)) is not None}

    async def known(self, device: "Device") -> Found | None:
        """The address given (`--host` asked how it talks), else the cached one."""
        if self._at is not None:
            return self._at
        if self._host is None:
            return self.cached(device)
        host, port = self._host
        found = next((f for f in self.entries() if f.host == host and port in (None, f.port)), None)
        if found is None:
            answers = await self.discover((host,), self._timeout)
            found = next((f for f in answers if f.host == host), None)
        if found is None:  # a device that does not answer discovery: assume its dialect's usual wire
            wire, default_port, version = ("xor", 9999, 0) if device.dialect == "iot" else ("klap", 80, 2)
            found = Found(host, default_port, wire, version, device.dialect, device.device_type, device.model,
                          normalise_mac(device.mac), device.device_id, device.alias, wire.upper())
        return found._replace(port=port) if port else found

    async def find_again(self, device: "Device", stale: Found) -> Found | None:
        """DEVICE, which refused the wire it was known by at STALE: that entry is forgotten, the
        address asked first (one unicast probe), then the shared discovery of the command."""
        self._cache.forget(stale.host, stale.port, stale.wire)
        self._entries = None
        self._log(f"{stale.host}:{stale.port} refused {stale.wire}: asking it how it talks now")
        answers = await self.discover((stale.host,), self._timeout)
        again = next((f for f in answers if matches(device, f)), None)
        return again if again is not None else await self.find(device)

    async def find(self, device: "Device") -> Found | None:
        """DEVICE's answer to discovery; one discovery serves all the devices of a command (of each
        REDISCOVER_AFTER seconds of it)."""
        stale = self._fallback is not None and self._fallback.done() and (
            self._ticks() - self._fallback_began >= REDISCOVER_AFTER)
        if self._fallback is None or stale:
            self._fallback_began = self._ticks()
            self._fallback = asyncio.ensure_future(self.discover(None, self._timeout))
        return next((f for f in await self._fallback if matches(device, f)), None)

    async def discover(self, targets: Sequence[str] | None, timeout: float) -> list[Found]:
        """Every device answering at TARGETS (default: the configured ones); the book learns them."""
        found = await discover(targets or self.targets, timeout=timeout, log=self._log)
        if found:
            self._cache.merge([f.to_dict() for f in found])
            self._entries = None
        return found
