"""Everything a command needs from the outside world, made in one place.

Commands get their settings, streams, clocks, secret store, caches, the account and the device
service from a ``Factory`` instead of reaching for globals, so a test (or another front end)
builds one with its own environment and streams. This is where the layers are wired together:
the service gets a router, the router its routes and the address book. Expensive pieces are made
on first use only: `tpcloud --help` never opens the keyring or imports httpx.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, Mapping, TextIO

from tpcloud.config import Settings
from tpcloud.redact import Redactor

if TYPE_CHECKING:
    from tpcloud.addresses import AddressBook
    from tpcloud.cache import DeviceCache, LanCache
    from tpcloud.cloud.account import Account
    from tpcloud.lan.discovery import Found
    from tpcloud.lan.sessions import SessionStore
    from tpcloud.secrets import SecretStore
    from tpcloud.service import DeviceService


async def _sleep(seconds: float) -> None:
    import asyncio  # not at start-up: `tpcloud --help` loads no event loop

    await asyncio.sleep(seconds)


@dataclass
class Factory:
    env: Mapping[str, str]
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    timeout: float | None = None
    verbose: bool = False
    debug: bool = False
    clock: Callable[[], float] = time.time
    # For intervals and deadlines (`watch`, `wait`): a clock that never jumps, and a pause by it.
    ticks: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = _sleep
    redactor: Redactor = field(default_factory=Redactor)

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env, timeout=self.timeout)

    @cached_property
    def secrets(self) -> "SecretStore":
        from tpcloud.secrets import SecretStore

        return SecretStore(self.settings, log=self.log)

    @cached_property
    def lan_sessions(self) -> "SessionStore":
        """KLAP/AES sessions kept between commands: secrets, so they live in the secret store."""
        from tpcloud.lan.sessions import SessionStore

        return SessionStore(
            self.secrets, self.redactor, counters=self.settings.cache_dir / "lan-counters.json", clock=self.clock
        )

    @cached_property
    def cache(self) -> "DeviceCache":
        from tpcloud.cache import DeviceCache

        return DeviceCache(self.settings.cache_dir, ttl=self.settings.cache_ttl, clock=self.clock)

    @cached_property
    def lan_cache(self) -> "LanCache":
        from tpcloud.cache import LanCache

        return LanCache(self.settings.cache_dir)

    def account(self) -> "Account":
        """The account: login, logout, and the cloud session (opened on first use)."""
        from tpcloud.cloud.account import Account

        return Account(self.settings, self.secrets, self.redactor, self.cache, clock=self.clock, log=self.log)

    @asynccontextmanager
    async def open_account(self) -> AsyncIterator["Account"]:
        """The account for one event loop; its HTTP client is closed at the end."""
        account = self.account()
        try:
            yield account
        finally:
            await account.aclose()

    def addresses(self, host: str | None = None, at: "Found | None" = None) -> "AddressBook":
        """The LAN address book (HOST: the address `--host` gave; AT: one already found)."""
        from tpcloud.addresses import AddressBook

        settings = self.settings
        return AddressBook(
            self.lan_cache, targets=settings.discovery_targets, timeout=settings.timeout, host=host, at=at,
            log=self.log, ticks=self.ticks,
        )

    @asynccontextmanager
    async def open_service(
        self, *, via: str = "auto", host: str | None = None, at: "Found | None" = None
    ) -> AsyncIterator["DeviceService"]:
        """The device service of one command, routing by VIA (and --host, or AT), closed at the end."""
        from tpcloud.config import load_groups
        from tpcloud.lan.links import LanLinks
        from tpcloud.routes import CloudRoute, LanRoute, Router
        from tpcloud.service import DeviceService

        settings = self.settings
        addresses = self.addresses(host, at)
        # Both made on first use: the XOR wire needs neither credentials nor sessions.
        links = LanLinks(credentials=self._lan_credentials, sessions=lambda: self.lan_sessions, log=self.log)
        async with self.open_account() as account:
            try:
                router = Router(
                    via, cloud=CloudRoute(lambda: account.session), lan=LanRoute(links, timeout=settings.timeout),
                    addresses=addresses,
                )
                yield DeviceService(
                    source=account, router=router, cache=self.cache, addresses=addresses,
                    groups=lambda: load_groups(settings.config_dir), log=self.log,
                )
            finally:
                await links.close()

    def _lan_credentials(self) -> tuple[str, str] | None:
        """KLAP and AES devices check the cloud account's e-mail and password."""
        username, password = self.secrets.get("username"), self.secrets.get("password")
        self.redactor.add(password)
        return (username, password) if username and password else None

    def stdin_is_tty(self) -> bool:
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    def chart_width(self) -> int | None:
        """How many columns a chart on stdout may fill: None when stdout is not a terminal, cannot
        show block characters (TERM=dumb, an encoding without them) or NO_COLOR asks for plain
        text; else COLUMNS when set (as shutil.get_terminal_size reads it, so a user can narrow
        it), else the terminal's own width, else 80."""
        if not getattr(self.stdout, "isatty", lambda: False)() or self.env.get("NO_COLOR") or self.env.get("TERM") == "dumb":
            return None
        try:
            "█▁".encode(getattr(self.stdout, "encoding", None) or "ascii")
        except (LookupError, UnicodeEncodeError):
            return None
        columns = self.env.get("COLUMNS", "").strip()
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(self.stdout.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):  # no descriptor, or not a terminal after all
            return 80

    def log(self, message: str) -> None:
        """A line of `-v` output on stderr, with every known secret masked."""
        if self.verbose:
            self.stderr.write(self.redactor.scrub(message) + "\n")
            self.stderr.flush()

