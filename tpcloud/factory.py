"""Everything a command needs from the outside world, made in one place.

Commands get their environment, streams, clock, secret store, cache and HTTP client from a
``Factory`` instead of reaching for globals, so a test (or another front end) builds one with
its own environment and streams. Expensive pieces are made on first use only: `tpcloud --help`
never opens the keyring or imports httpx.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Mapping, TextIO

from tpcloud.config import Settings
from tpcloud.redact import Redactor

if TYPE_CHECKING:
    import httpx

    from tpcloud.cache import DeviceCache, LanCache
    from tpcloud.lan.sessions import SessionStore
    from tpcloud.secrets import SecretStore


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
    redactor: Redactor = field(default_factory=Redactor)

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env, timeout=self.timeout)

    @cached_property
    def secrets(self) -> "SecretStore":
        from tpcloud.secrets import SecretStore

        return SecretStore(self.env)

    @cached_property
    def lan_sessions(self) -> "SessionStore":
        """KLAP/AES sessions kept between commands: secrets, so they live in the secret store."""
        from tpcloud.lan.sessions import SessionStore

        return SessionStore(self.secrets, self.redactor, clock=self.clock)

    @cached_property
    def cache(self) -> "DeviceCache":
        from tpcloud.cache import DeviceCache

        return DeviceCache(self.settings.cache_dir, ttl=self.settings.cache_ttl, clock=self.clock)

    @cached_property
    def lan_cache(self) -> "LanCache":
        from tpcloud.cache import LanCache

        return LanCache(self.settings.cache_dir)

    def http_client(self) -> "httpx.AsyncClient":
        """A new HTTP client for one command's event loop; certificates are always verified."""
        import httpx

        return httpx.AsyncClient(timeout=self.settings.timeout, follow_redirects=False, trust_env=True)

    def lan_http_client(self) -> "httpx.AsyncClient":
        """An HTTP client for devices on the LAN: never through a proxy from the environment."""
        import httpx

        return httpx.AsyncClient(follow_redirects=False, trust_env=False)

    def stdin_is_tty(self) -> bool:
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    def log(self, message: str) -> None:
        """A line of `-v` output on stderr, with every known secret masked."""
        if self.verbose:
            self.stderr.write(self.redactor.scrub(message) + "\n")
            self.stderr.flush()
