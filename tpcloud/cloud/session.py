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
import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from tpcloud import errors
from tpcloud.cloud.client import CloudClient
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
        self._terminal_uuid: str | None = None
        client.terminal = self.terminal_uuid
        self._secrets = secrets
        self._redactor = redactor
        self._renewal_lock = renewal_lock
        self._lock_wait = lock_wait

    @property
    def api(self) -> str:
        """The API ("v1" or "v2") this session speaks."""
        return self._client.api

    async def aclose(self) -> None:
        await self._client.aclose()

    def _secret(self, name: str, *, fresh: bool = False) -> str | None:
        value = self._secrets.get(name, fresh=fresh)
        self._redactor.add(value)
        return value

    def terminal_uuid(self) -> str:
        """The client's terminalUUID: made once, kept across logins (the cloud ties tokens to it).
        Read from the store once per session: every request carries it (as termID)."""
        if self._terminal_uuid is None:
            value = self._secret("terminal_uuid")
            if not value:
                value = str(uuid.uuid4())
                self._secrets.update({"terminal_uuid": value})
                self._redactor.add(value)
            self._terminal_uuid = value
        return self._terminal_uuid

    async def login(
        self,
        username: str,
        password: str,
        *,
        store_password: bool = True,
        code_via: str | None = None,
        ask_code: Callable[[str], str] | None = None,
    ) -> dict[str, Any]:
        """Log in, store what a later unattended run needs, and return the login result.

        When the cloud wants a 2-step verification code, one is sent (CODE_VIA: "email" or
        "push"; else e-mail when offered) and the login is kept as pending. ASK_CODE, given
        only when a person is at a terminal, is asked for the code and the login finished;
        without it MfaCodeSent tells a script to come back with ``tpcloud login --code``.
        """
        self._redactor.add(password)
        kept_password = password if store_password else None
        try:
            result = await self._client.login(username, password, self.terminal_uuid())
        except errors.MfaRequired as challenge:
            how = await self._send_code(challenge, username, password, kept_password, code_via)
            if ask_code is None:
                raise errors.MfaCodeSent(
                    f"a 2-step verification code was sent {how}", hint="finish with `tpcloud login --code CODE`"
                ) from None
            return await self.finish_mfa(ask_code(how), password=password)
        self._keep(result, username, kept_password)
        return result

    async def _send_code(
        self, challenge: errors.MfaRequired, username: str, password: str, kept_password: str | None, code_via: str | None
    ) -> str:
        """Ask the cloud for a code and keep the pending login; say how the code travels."""
        from tpcloud.cloud.v2 import MFA_EMAIL, MFA_NAMES

        mfa_type = _mfa_type(challenge.mfa_types, code_via)
        self._redactor.add(challenge.process_id)
        await self._client.send_mfa_code(username, password, self.terminal_uuid(), challenge.process_id, mfa_type)
        pending = {
            "url": self._client.app_url, "username": username, "password": kept_password,
            "process_id": challenge.process_id, "mfa_type": mfa_type,
        }
        self._secrets.update({"mfa_pending": json.dumps(pending)})
        return "by e-mail" if mfa_type == MFA_EMAIL else f"to the Kasa/Tapo app ({MFA_NAMES[mfa_type]})"

    async def finish_mfa(self, code: str, *, password: str | None = None) -> dict[str, Any]:
        """Finish the pending login with the verification CODE; it stays pending if the code is refused.

        PASSWORD (else the one kept with the pending login, if it was) goes with the code: some
        servers want it there.
        """
        pending = pending_mfa(self._secrets)
        if pending is None:
            raise errors.LoginRequired("no login is waiting for a verification code", hint="run `tpcloud login` first")
        password = password or pending.get("password")
        self._redactor.add(code.strip(), pending.get("process_id"), password)
        try:
            result = await self._client.check_mfa_code(
                pending["username"], code.strip(), self.terminal_uuid(), pending.get("process_id"), pending["mfa_type"],
                password=password,
            )
        except errors.CloudError as exc:
            if type(exc) is not errors.CloudError or exc.code is None:
                raise
            raise errors.AuthError(
                f"the verification code was not accepted ({exc.message})",
                hint="check the code, or run `tpcloud login` again for a new one",
            ) from None
        self._keep(result, pending["username"], pending.get("password"))
        return result

    def _keep(self, result: dict[str, Any], username: str, password: str | None, *, ends_pending: bool = True) -> None:
        """Store the session a login result gives, and which API and server it belongs to.

        A renewal (ENDS_PENDING false) leaves alone a login someone else left waiting for its code.
        """
        token = result.get("token")
        if not isinstance(token, str) or not token:
            raise errors.CloudError("the cloud accepted the login but sent no token")
        self._redactor.add(token, result.get("refreshToken"))
        self._secrets.update(
            {
                "token": token,
                "refresh_token": result.get("refreshToken") or None,
                "username": username,
                "password": password,
                "cloud_api": self._client.api,
                "cloud_url": self._client.app_url,
                **({"mfa_pending": None} if ends_pending else {}),
            }
        )

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
        token = self._secret("token", fresh=True)
        return token if token and token != rejected else None

    async def _renew(self) -> str:
        refresh_token = self._secret("refresh_token")
        if refresh_token:
            try:
                result = await self._client.refresh(refresh_token, self.terminal_uuid())
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
        # No code is sent from here: a job that meets 2-step verification stops and says so.
        result = await self._client.login(username, password, self.terminal_uuid())
        self._keep(result, username, password, ends_pending=False)
        return str(result["token"])


def pending_mfa(secrets: "SecretStore") -> dict[str, Any] | None:
    """The login waiting for its verification code (kept by ``login``), if there is one."""
    raw = secrets.get("mfa_pending")
    try:
        pending = json.loads(raw) if raw else None
    except ValueError:
        return None
    return pending if isinstance(pending, dict) and pending.get("username") and pending.get("url") else None


def _mfa_type(offered: tuple[int, ...], wanted: str | None) -> int:
    """How to ask for the code: WANTED if the cloud offers it, else e-mail, else what it offers."""
    from tpcloud.cloud.v2 import MFA_EMAIL, MFA_NAMES

    known = [t for t in offered if t in MFA_NAMES]
    if wanted:
        chosen = next(t for t, name in MFA_NAMES.items() if name == wanted)
        if offered and chosen not in offered:
            names = ", ".join(MFA_NAMES[t] for t in known) or "ways tpcloud cannot use"
            raise errors.UsageError(f"the cloud does not offer the code by {wanted}; it offers: {names}")
        return chosen
    if not offered or MFA_EMAIL in offered:
        return MFA_EMAIL
    if not known:
        raise errors.AuthError(
            f"the cloud offers the verification code only in ways tpcloud cannot ask for ({offered})",
            hint="switch 2-step verification to e-mail in the app",
        )
    return known[0]
