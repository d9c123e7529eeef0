"""The account: logging in (V1, then V2 when V1 refuses), finishing a 2-step verification,
logging out, and the one cloud session a command's cloud calls run in.

``open_session`` is the one place a cloud session is made from the settings, on the API (V1 or
V2) and server the account logged in with; everything else asks the :class:`Account` for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tpcloud import errors

if TYPE_CHECKING:
    from tpcloud.cache import DeviceCache
    from tpcloud.cloud.session import CloudSession
    from tpcloud.config import Settings
    from tpcloud.redact import Redactor
    from tpcloud.secrets import SecretStore


def open_session(
    settings: "Settings",
    secrets: "SecretStore",
    redactor: "Redactor",
    *,
    clock: Callable[[], float],
    log: Callable[[str], None],
    api: str = "v1",
    app_url: str | None = None,
) -> "CloudSession":
    """A session on API ("v1" or "v2", whose account calls go to APP_URL), with its own HTTP client."""
    from tpcloud.cloud.client import CloudClient
    from tpcloud.cloud.http import CloudHttp
    from tpcloud.cloud.session import CloudSession

    client: CloudClient
    if api == "v2":
        from tpcloud.cloud import v2

        client = v2.V2Client(
            CloudHttp(lambda: v2.ssl_context(settings.cloud_v2_ca_files)), settings.cloud_v2_url,
            app_url=app_url, timeout=settings.timeout, clock=clock, log=log,
        )
    else:
        client = CloudClient(CloudHttp(), settings.cloud_url, timeout=settings.timeout, log=log)
    return CloudSession(
        client, secrets, redactor, renewal_lock=settings.config_dir / "renewal.lock", lock_wait=settings.timeout
    )


class Account:
    """The TP-Link account of one command: its login, its session, its device list."""

    def __init__(
        self,
        settings: "Settings",
        secrets: "SecretStore",
        redactor: "Redactor",
        cache: "DeviceCache",
        *,
        clock: Callable[[], float],
        log: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._redactor = redactor
        self._cache = cache
        self._clock = clock
        self._log = log
        self._session: "CloudSession | None" = None

    @property
    def session(self) -> "CloudSession":
        """The cloud session, opened on first use on the API (V1 or V2) the account logged in with."""
        if self._session is None:
            self._session = self._open(self._secrets.get("cloud_api") or "v1", self._secrets.get("cloud_url"))
        return self._session

    def _open(self, api: str, app_url: str | None = None) -> "CloudSession":
        return open_session(
            self._settings, self._secrets, self._redactor, clock=self._clock, log=self._log, api=api, app_url=app_url
        )

    async def _reopen(self, api: str, app_url: str | None = None) -> "CloudSession":
        await self.aclose()
        self._session = self._open(api, app_url)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.aclose()
            self._session = None

    async def device_list(self) -> list[dict[str, Any]]:
        """The entries of the cloud's device list (each a dict with at least a deviceId)."""
        result = await self.session.call("getDeviceList")
        entries = result.get("deviceList")
        if not isinstance(entries, list):
            raise errors.CloudError("the cloud's device list has no deviceList")
        return [e for e in entries if isinstance(e, dict) and e.get("deviceId")]

    async def login(
        self,
        username: str,
        password: str,
        *,
        store_password: bool,
        api: str = "auto",
        code_via: str | None = None,
        ask_code: Callable[[str], str] | None = None,
    ) -> tuple[str, str]:
        """Log in; return the account's e-mail and a description of where the secrets went.

        API "auto" tries V1 first and moves to V2 when V1 refuses the way it does for accounts
        with 2-step verification. For code_via and ask_code, see ``CloudSession.login``.
        """
        self._secrets.choose_afresh()  # a login probes for the OS keyring again, and remembers the answer
        before = self._account_now()
        options: dict[str, Any] = {"store_password": store_password, "code_via": code_via, "ask_code": ask_code}
        session = await self._reopen("v2" if api == "v2" else "v1")
        try:
            result = await session.login(username, password, **options)
        except errors.NeedsV2Login:
            if api != "auto":
                raise
            self._log("the V1 login was refused as it is for 2-step verification; trying the V2 login")
            result = await (await self._reopen("v2")).login(username, password, **options)
        return self._logged_in(before, result)

    async def finish_login(self, code: str) -> tuple[str, str]:
        """Finish the login that waits for a 2-step verification CODE (``tpcloud login --code``)."""
        from tpcloud.cloud.session import pending_mfa

        before = self._account_now()
        pending = pending_mfa(self._secrets)
        session = await self._reopen("v2", pending["url"] if pending else None)
        return self._logged_in(before, await session.finish_mfa(code))

    def logout(self) -> None:
        """Forget every secret and everything cached."""
        self._secrets.clear()
        self._cache.clear()

    def _account_now(self) -> tuple[str, str]:
        return (self._secrets.get("username") or "").casefold(), self._secrets.get("cloud_api") or "v1"

    def _logged_in(self, before: tuple[str, str], result: dict[str, Any]) -> tuple[str, str]:
        """Forget cached devices of another account or API (their appServerUrls), and say who logged in."""
        if before[0] and before != self._account_now():
            self._cache.clear()
        return str(result.get("email") or self._secrets.get("username")), self._secrets.description
