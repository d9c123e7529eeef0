"""The lifecycle of the account's cloud session: log in, keep tokens, renew them unattended.

A cron job must keep working for months: an expired token is refreshed once and the call
retried once; a dead refresh token is replaced by a full login with the stored password; only
when neither is possible does the user hear "run tpcloud login".

Jobs started in the same minute all meet the same expired token. Renewal takes turns under a
file lock, and whoever comes second finds the token already renewed, so the cloud sees one
refresh however many jobs run (and a refresh token the cloud retires after one use survives).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from tpcloud import errors
from tpcloud.cloud.client import APP_TYPE, CloudClient
from tpcloud.fsutil import FileLock

if TYPE_CHECKING:
    from tpcloud.redact import Redactor
    from tpcloud.secrets import SecretStore

_LOGIN_HINT = "run `tpcloud login`"


class CloudSession:
    """Runs cloud calls with the stored token and renews it when the cloud rejects it."""

    def __init__(
        self,
        client: CloudClient,
        secrets: "SecretStore",
        redactor: "Redactor",
        *,
        renewal_lock: Path | None = None,
        lock_wait: float = 10.0,
    ) -> None:
        self._client = client
        self._secrets = secrets
        self._redactor = redactor
        self._renewal_lock = renewal_lock
        self._lock_wait = lock_wait

    def _secret(self, name: str) -> str | None:
        value = self._secrets.get(name)
        self._redactor.add(value)
        return value

    def terminal_uuid(self) -> str:
        """The client's terminalUUID: made once, kept across logins (the cloud ties tokens to it)."""
        value = self._secret("terminal_uuid")
        if not value:
            value = str(uuid.uuid4())
            self._secrets.update({"terminal_uuid": value})
            self._redactor.add(value)
        return value

    async def login(self, username: str, password: str, *, store_password: bool = True) -> dict[str, Any]:
        """Log in, store what a later unattended run needs, and return the login result."""
        self._redactor.add(password)
        result = await self._client.call(
            "login",
            {
                "appType": APP_TYPE,
                "cloudUserName": username,
                "cloudPassword": password,
                "terminalUUID": self.terminal_uuid(),
                "refreshTokenNeeded": True,
            },
        )
        token = result.get("token")
        if not isinstance(token, str) or not token:
            raise errors.CloudError("the cloud accepted the login but sent no token")
        self._redactor.add(token, result.get("refreshToken"))
        self._secrets.update(
            {
                "token": token,
                "refresh_token": result.get("refreshToken") or None,
                "username": username,
                "password": password if store_password else None,
            }
        )
        return result

    async def call(self, method: str, params: dict[str, Any] | None = None, *, url: str | None = None) -> dict[str, Any]:
        """Call an authenticated method; on a rejected token renew it once and retry once."""
        token = self._secret("token")
        if not token:
            raise errors.LoginRequired("not logged in to the TP-Link cloud", hint=_LOGIN_HINT)
        try:
            return await self._client.call(method, params, url=url, token=token)
        except errors.TokenRejected:
            async with self._renewal_turn():
                token = self._renewed_elsewhere(token) or await self._renew()
        return await self._client.call(method, params, url=url, token=token)

    @contextlib.asynccontextmanager
    async def _renewal_turn(self) -> AsyncIterator[None]:
        """Hold the renewal lock; wait a bounded time for it, then go ahead rather than hang."""
        if self._renewal_lock is None:
            yield
            return
        lock = FileLock(self._renewal_lock)
        deadline = time.monotonic() + self._lock_wait
        while not lock.acquire(blocking=False) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            lock.release()

    def _renewed_elsewhere(self, rejected: str) -> str | None:
        """The token another run stored while this one waited for its turn, if any."""
        token = self._secret("token")
        return token if token and token != rejected else None

    async def _renew(self) -> str:
        refresh_token = self._secret("refresh_token")
        if refresh_token:
            try:
                result = await self._client.call(
                    "refreshToken",
                    {"appType": APP_TYPE, "terminalUUID": self.terminal_uuid(), "refreshToken": refresh_token},
                )
            except (errors.RefreshTokenRejected, errors.TokenRejected):
                pass
            else:
                token = result.get("token")
                if isinstance(token, str) and token:
                    self._redactor.add(token, result.get("refreshToken"))
                    self._secrets.update({"token": token, "refresh_token": result.get("refreshToken") or refresh_token})
                    return token
        username, password = self._secret("username"), self._secret("password")
        if not (username and password):
            raise errors.LoginRequired(
                "the cloud session has expired and no password is stored to renew it", hint=_LOGIN_HINT
            )
        result = await self.login(username, password)
        return result["token"]
