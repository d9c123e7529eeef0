"""The V1 TP-Link cloud API: one JSON POST per call, its error codes mapped to tpcloud errors.

This layer knows the wire shape of the cloud and nothing about tokens' lifecycle or devices'
names: ``CloudSession`` (session.py) decides when to refresh or log in again. The signed V2 API
(v2.py) is this client with signed headers, other paths and its own login.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlencode, urlsplit

from tpcloud import errors
from tpcloud.http11 import Reply
from tpcloud.redact import redact_json, redact_url

if TYPE_CHECKING:
    from tpcloud.cloud.http import CloudHttp

APP_TYPE = "Kasa_Android"
TRUSTED_DOMAIN = "tplinkcloud.com"
# A device list of hundreds of devices is tens of KiB; nothing the cloud sends is near this.
MAX_REPLY = 4 * 2**20

_BUG_HINT = "this is a tpcloud bug: please report it with the output of `tpcloud -v ...`"
_LOGIN_HINT = "run `tpcloud login`"
_V2_HINT = "run `tpcloud login --api auto` (or `--api v2`): the V2 login handles it"

# code -> (error class, message, hint); the messages follow protocols.md §3.
_CLOUD_ERRORS: dict[int, tuple[type[errors.TpcloudError], str, str | None]] = {
    -20600: (errors.AuthError, "no TP-Link account has that e-mail address", "check it, or create the account in the Kasa or Tapo app"),
    -20601: (errors.AuthError, "incorrect e-mail or password", "both are case-sensitive; run `tpcloud login` again"),
    -20602: (errors.AuthError, "the TP-Link account is not activated", "activate it from the e-mail TP-Link sent"),
    -20661: (errors.AuthError, "the TP-Link account is locked after too many failed logins", "wait a while, or reset the password in the app"),
    -20675: (errors.TokenRejected, "the account logged in somewhere else and this session ended", _LOGIN_HINT),
    -20651: (errors.TokenRejected, "the cloud token has expired", _LOGIN_HINT),
    -20652: (errors.TokenRejected, "the cloud token is not valid", _LOGIN_HINT),
    -20655: (errors.RefreshTokenRejected, "the cloud refresh token has expired", _LOGIN_HINT),
    -20656: (errors.RefreshTokenRejected, "the cloud refresh token is not valid", _LOGIN_HINT),
    -20571: (errors.DeviceOffline, "the cloud cannot reach the device (-20571 Device is offline)", "check that it is powered and on Wi-Fi; the Kasa cloud answers this way for Tapo devices, which tpcloud reaches on the LAN"),
    -20580: (errors.DeviceNotBound, "the device is not bound to this account", "run `tpcloud list --refresh`"),
    -20501: (errors.DeviceNotBound, "the cloud does not know this device id", "run `tpcloud list --refresh`"),
    -20002: (errors.CloudBusy, "the cloud timed out", "try again in a minute"),
    -20003: (errors.CloudBusy, "the cloud is busy", "try again in a minute"),
    -20004: (errors.RateLimited, "the cloud is rate-limiting this account", "wait a few minutes before trying again"),
    -10200: (errors.RateLimited, "the cloud is rate-limiting this account", "wait a few minutes before trying again"),
    -10201: (errors.RateLimited, "the cloud is rate-limiting this account", "wait a few minutes before trying again"),
    -20677: (errors.NeedsV2Login, "this account uses 2-step verification, which the V1 cloud login cannot do", _V2_HINT),
    -23003: (errors.NeedsV2Login, "the cloud refused the V1 login (-23003 App version is too old), as it does for accounts with 2-step verification", _V2_HINT),
}
_BUG_CODES = {-20103, -20104, -20105, -20106, -20107, -10000, -10100, -10101}


def error_for(code: int, msg: str | None, method: str) -> errors.TpcloudError:
    """The tpcloud error for a cloud ``error_code``."""
    if code in _CLOUD_ERRORS:
        cls, message, hint = _CLOUD_ERRORS[code]
        return cls(message, code=code, hint=hint) if issubclass(cls, errors.CloudError) else cls(message, hint=hint)
    text = f"the cloud rejected {method} with error {code}" + (f" ({msg})" if msg else "")
    return errors.CloudError(text, code=code, hint=_BUG_HINT if code in _BUG_CODES else None)


def check_token_destination(url: str, base_url: str) -> None:
    """Refuse to send the token anywhere but TP-Link's cloud over https, or the configured host.

    A device list or redirect naming another host must not walk away with the account's token.
    """
    target, base = urlsplit(url), urlsplit(base_url)
    host = (target.hostname or "").lower()
    if target.scheme == "https" and (host == TRUSTED_DOMAIN or host.endswith("." + TRUSTED_DOMAIN)):
        return
    if target.scheme == base.scheme and host == (base.hostname or "").lower():
        return
    raise errors.CloudError(
        f"refusing to send the cloud token to {target.scheme}://{host}: not a TP-Link cloud host",
        hint="if you use a proxy, point TPCLOUD_CLOUD_URL at it",
    )


class CloudClient:
    """Calls V1 cloud methods with a timeout and a bounded retry of transient failures.

    It owns the HTTP client it is given: :meth:`aclose` closes it.
    """

    api = "v1"
    # The server account calls go to; V2 has a regional one, V1 uses base_url for everything.
    app_url: str | None = None
    # What the Kasa app sends with every request besides the token (plus termID, its terminal),
    # and as whom it introduces itself: as piekstra/tplink-cloud-api does against the real cloud,
    # which calls these parameters required (its issues #83, #84).
    APP_QUERY: Mapping[str, str] = {
        "appName": "Kasa_Android", "appVer": "1.4.4.607", "netType": "wifi", "ospf": "Android 6.0.1",
        "locale": "en_US",
    }
    USER_AGENT = "Dalvik/2.1.0 (Linux; U; Android 6.0.1; A0001 Build/M4B30X)"

    def __init__(
        self,
        http: "CloudHttp",
        base_url: str,
        *,
        timeout: float,
        log: Callable[[str], None] | None = None,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self._http = http
        self.base_url = base_url
        # The client's terminalUUID, sent as termID; CloudSession, which keeps it, sets this.
        self.terminal: Callable[[], str] | None = None
        self._timeout = timeout
        self._log = log
        self._retries = retries
        self._backoff = backoff

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, url: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST one method and return its ``result``; raises the mapped error otherwise."""
        return await self.request(url or self.base_url, {"method": method, "params": params or {}}, token=token, what=method)

    async def login(self, username: str, password: str, terminal_uuid: str) -> dict[str, Any]:
        """The V1 login: the account's token and refresh token, or the mapped refusal."""
        return await self.call(
            "login",
            {
                "appType": APP_TYPE,
                "cloudUserName": username,
                "cloudPassword": password,
                "terminalUUID": terminal_uuid,
                "refreshTokenNeeded": True,
            },
        )

    async def refresh(self, refresh_token: str, terminal_uuid: str) -> dict[str, Any]:
        """A new token (and perhaps a new refresh token) for a refresh token."""
        return await self.call(
            "refreshToken", {"appType": APP_TYPE, "terminalUUID": terminal_uuid, "refreshToken": refresh_token}
        )

    async def request(self, url: str, body: dict[str, Any], *, token: str | None, what: str) -> dict[str, Any]:
        """POST BODY to URL, retrying transient failures; WHAT names the call in errors."""
        if token is not None:
            check_token_destination(url, self.base_url)
        for attempt in range(self._retries + 1):
            try:
                return await self._call_once(url, body, token, what)
            except (errors.CloudBusy, errors.NetworkError) as exc:
                if attempt == self._retries or isinstance(exc, errors.CertificateError):
                    raise
                await asyncio.sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _call_once(self, url: str, body: dict[str, Any], token: str | None, what: str) -> dict[str, Any]:
        shown_url = redact_url(f"{url}?token={token}" if token else url)
        if self._log:
            self._log(f"> POST {shown_url} {json.dumps(redact_json(body))}")
        try:
            reply = await asyncio.wait_for(self._post(url, body, token), self._timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout(f"the cloud ({urlsplit(url).hostname}) did not answer within {self._timeout:g} s") from None
        if self._log:
            self._log(f"< HTTP {reply.status} {_loggable(reply.body)}")
        return self._parse_reply(reply, what)

    def _headers(self, url: str, content: bytes) -> list[tuple[str, str]]:
        """The request's headers; the V2 client adds its signature here."""
        return [("Content-Type", "application/json"), ("User-Agent", self.USER_AGENT)]

    def _query(self, token: str | None) -> dict[str, str]:
        """The app's parameters, this terminal's id, and the token when there is one."""
        query = dict(self.APP_QUERY)
        if self.terminal is not None:
            query["termID"] = self.terminal()
        if token:
            query["token"] = token
        return query

    def _parse_reply(self, reply: "Reply", what: str) -> dict[str, Any]:
        """The reply's ``result``; the V2 client looks for its own signals first."""
        return _parse(reply, what)

    async def _post(self, url: str, body: dict[str, Any], token: str | None) -> Reply:
        """POST and read the reply, refusing one larger than MAX_REPLY before holding it all."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = self._headers(url, payload)
        query = urlencode(self._query(token))
        return await self._http.post(f"{url}{'&' if urlsplit(url).query else '?'}{query}", payload, headers, limit=MAX_REPLY, timeout=self._timeout)


def document_of(reply: Reply, method: str) -> dict[str, Any]:
    """The JSON object of a 200 reply with an integer ``error_code``; anything else is an error."""
    status = reply.status
    if 300 <= status < 400:
        where = urlsplit(reply.get("location")).hostname or "another address"
        raise errors.CloudError(f"the cloud redirected {method} to {where}; not followed")
    if status >= 500:
        raise errors.CloudBusy(f"the cloud answered HTTP {status} to {method}", hint="try again in a minute")
    if status != 200:
        raise errors.CloudError(f"the cloud answered HTTP {status} to {method}")
    try:
        document = json.loads(reply.body)
    except ValueError:
        kind = reply.get("content-type", "no content type").split(";")[0]
        what = "an empty reply" if not reply.body else f"a reply that is not JSON ({kind})"
        raise errors.CloudError(f"the cloud sent {what} to {method}") from None
    if not isinstance(document, dict) or not isinstance(document.get("error_code"), int):
        raise errors.CloudError(f"the cloud sent a reply to {method} without an error code")
    return document


def result_of(document: dict[str, Any], what: str) -> dict[str, Any]:
    """The ``result`` of a reply whose ``error_code`` is 0; otherwise the mapped error."""
    code = document["error_code"]
    if code != 0:
        raise error_for(code, document.get("msg") if isinstance(document.get("msg"), str) else None, what)
    result = document.get("result", {})
    if not isinstance(result, dict):
        raise errors.CloudError(f"the cloud sent a reply to {what} whose result is not an object")
    return result


def _parse(reply: Reply, method: str) -> dict[str, Any]:
    return result_of(document_of(reply, method), method)


def _loggable(content: bytes) -> str:
    try:
        return json.dumps(redact_json(json.loads(content)))
    except ValueError:
        return f"<{len(content)} bytes, not JSON>"

