"""The signed V2 TP-Link cloud API, what the current Kasa app speaks (protocols.md §2).

It is the V1 client (client.py) with three differences: every request carries a signature
(Content-MD5 and an HMAC-SHA1 ``X-Authorization``); account calls are flat JSON posted to
``/api/v2/account/...`` on the account's regional server, and may ask for a 2-step verification
code; and the hosts present certificates from TP-Link's own CA, which this module trusts in
addition to the system store (never instead of it, and only for these hosts).

Errors go through the same table as V1 (``client.error_for``). The password and the token go
only where ``check_token_destination`` allows: TP-Link's hosts over https, or the host of the
configured override.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import urlsplit

from tpcloud import errors
from tpcloud.config import CLOUD_V2_CA_FILE_VAR as CA_FILE_VAR
from tpcloud.cloud.client import CloudClient, Reply, check_token_destination, document_of, result_of

if TYPE_CHECKING:
    import ssl

    from tpcloud.cloud.http import CloudHttp

# The Kasa app's identity: public per-app constants, the same in every installation.
APP_TYPE = "Kasa_Android_Mix"
APP_VERSION = "3.4.451"
ACCESS_KEY = "e37525375f8845999bcc56d5e6faa76d"
SECRET_KEY = "314bc6700b3140ca80bc655e527cb062"

ACCOUNT_STATUS = "/api/v2/account/getAccountStatusAndUrl"
LOGIN = "/api/v2/account/login"
REFRESH = "/api/v2/account/refreshToken"
MFA_CHECK = "/api/v2/account/checkMFACodeAndLogin"

# The ways the cloud sends a verification code, by its MFAType number.
MFA_PUSH, MFA_EMAIL = 1, 2
MFA_NAMES = {MFA_EMAIL: "email", MFA_PUSH: "push"}
_MFA_SEND = {MFA_EMAIL: "/api/v2/account/getEmailVC4TerminalMFA", MFA_PUSH: "/api/v2/account/getPushVC4TerminalMFA"}
_MFA_CODE = -20677
_WRONG_REGION = -20212

_CA_PACKAGE = "tpcloud.cloud.certs"


def signature_headers(
    content: bytes, path: str, *, timestamp: str, nonce: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> dict[str, str]:
    """Content-MD5 and X-Authorization for a request body sent to PATH (no query)."""
    content_md5 = base64.b64encode(hashlib.md5(content).digest()).decode()
    to_sign = f"{content_md5}\n{timestamp}\n{nonce}\n{path}".encode()
    signature = hmac.new(secret_key.encode(), to_sign, hashlib.sha1).hexdigest()
    return {
        "Content-MD5": content_md5,
        "X-Authorization": f"Timestamp={timestamp}, Nonce={nonce}, AccessKey={access_key}, Signature={signature}",
    }


def ssl_context(extra_ca_files: Sequence[str] = ()) -> "ssl.SSLContext":
    """The CAs the cloud's HTTP trusts (``trust_store``), plus TP-Link's private CAs and EXTRA_CA_FILES.

    Built on the V2 client's first https request: the V1 path and the LAN never load the private CAs.
    Verification of the certificate and the host name stays on, always.
    """
    import ssl

    from tpcloud.cloud.http import trust_store

    context = trust_store()
    for entry in sorted(resources.files(_CA_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".pem"):
            context.load_verify_locations(cadata=entry.read_text(encoding="ascii"))
    for path in extra_ca_files:
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise errors.UsageError(f"{CA_FILE_VAR} names {path!r}, which is not a readable PEM file ({exc})") from None
    return context


class _WrongRegion(errors.CloudError):
    """-20212: the account lives on another regional server, which the reply names."""

    def __init__(self, what: str, url: str) -> None:
        super().__init__(
            f"the cloud sent {what} to another region ({urlsplit(url).hostname}) twice; not followed", code=_WRONG_REGION
        )
        self.url = url


def _mfa_types(result: dict[str, Any]) -> tuple[int, ...]:
    offered = result.get("supportedMFATypes")
    values = offered if isinstance(offered, list) else [result.get("mfaType")]
    return tuple(int(v) for v in values if isinstance(v, (int, str)) and str(v).lstrip("-").isdigit())


def _mfa_required(result: dict[str, Any]) -> errors.MfaRequired:
    process_id = result.get("MFAProcessId")
    return errors.MfaRequired(
        "this account uses 2-step verification: the cloud wants a code before it logs tpcloud in",
        process_id=process_id if isinstance(process_id, str) and process_id else None,
        mfa_types=_mfa_types(result),
        hint="run `tpcloud login` (on a terminal it asks for the code; in a script, finish with `tpcloud login --code CODE`)",
    )


def _unnested(document: dict[str, Any]) -> dict[str, Any]:
    """DOCUMENT with a failure nested in its result (``result.errorCode``) lifted to the top, so
    one reader serves both shapes; a document without one is returned as it is."""
    result = document.get("result")
    if document["error_code"] != 0 or not isinstance(result, dict):
        return document
    nested = result.get("errorCode")
    try:
        code = int(str(nested).strip()) if nested is not None and not isinstance(nested, bool) else 0
    except ValueError:
        return document
    if code == 0:
        return document
    message = result.get("errorMsg") if isinstance(result.get("errorMsg"), str) else result.get("msg")
    return {**document, "error_code": code, "msg": message if isinstance(message, str) else None}


class V2Client(CloudClient):
    """Calls the V2 API: signed requests, account calls on the regional server, paged lists."""

    api = "v2"
    APP_QUERY = {
        "appName": APP_TYPE, "appVer": APP_VERSION, "netType": "wifi", "ospf": "Android 14", "brand": "TPLINK",
        "locale": "en_US", "model": "Pixel", "termName": "tpcloud", "termMeta": "tpcloud",
    }
    USER_AGENT = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel Build/UP1A)"

    def __init__(
        self,
        http: "CloudHttp",
        base_url: str,
        *,
        timeout: float,
        clock: Callable[[], float],
        app_url: str | None = None,
        nonce: Callable[[], str] = lambda: str(uuid.uuid4()),
        log: Callable[[str], None] | None = None,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        super().__init__(http, base_url, timeout=timeout, log=log, retries=retries, backoff=backoff)
        # The account's regional server: where account calls and the device list go.
        self.app_url = (app_url or base_url).rstrip("/")
        self._clock = clock
        self._nonce = nonce

    # -- the wire ---------------------------------------------------------------------------

    def _headers(self, url: str, content: bytes) -> list[tuple[str, str]]:
        stamp = str(int(self._clock()))
        signed = signature_headers(content, urlsplit(url).path or "/", timestamp=stamp, nonce=self._nonce())
        return [("Content-Type", "application/json;charset=UTF-8"), ("User-Agent", self.USER_AGENT), *signed.items()]

    def _parse_reply(self, reply: Reply, what: str) -> dict[str, Any]:
        """The result; an error in either shape the cloud uses is raised as the same error.

        The real cloud often answers account calls with ``error_code`` 0 and the failure inside:
        ``result.errorCode`` (a string or a number) and ``errorMsg`` (piekstra/tplink-cloud-cli
        023b004 ``client.rs``; dimme/tapo-cli#3 shows ``"-20212"`` with ``appServerUrl``), and
        asks for a 2-step code with ``result.MFAProcessId`` alone (ioBroker.tapo, tapo-cli).
        """
        document = _unnested(document_of(reply, what))
        result = document.get("result")
        if isinstance(result, dict):
            code = document["error_code"]
            if code == _WRONG_REGION and isinstance(result.get("appServerUrl"), str):
                raise _WrongRegion(what, result["appServerUrl"])
            if code == _MFA_CODE or (code == 0 and result.get("MFAProcessId") and not result.get("token")):
                raise _mfa_required(result)
        return result_of(document, what)

    async def request(self, url: str, body: dict[str, Any], *, token: str | None, what: str) -> dict[str, Any]:
        """POST BODY to URL, following one region redirect (-20212) to a trusted host."""
        check_token_destination(url, self.base_url)  # the password, too, goes nowhere else
        try:
            return await super().request(url, body, token=token, what=what)
        except _WrongRegion as moved:
            check_token_destination(moved.url, self.base_url)
            self.app_url = moved.url.rstrip("/")
            return await super().request(self.app_url + urlsplit(url).path, body, token=token, what=what)

    async def _account(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        return await self.request(self.app_url + path, {"appType": APP_TYPE, **params}, token=None, what=what)

    # -- the account ------------------------------------------------------------------------

    async def login(self, username: str, password: str, terminal_uuid: str) -> dict[str, Any]:
        """Find the account's region, then log in there; raises MfaRequired when a code is needed."""
        status = await self.request(
            self.base_url + ACCOUNT_STATUS, {"appType": APP_TYPE, "cloudUserName": username},
            token=None, what="getAccountStatusAndUrl",
        )
        regional = status.get("appServerUrl")
        if isinstance(regional, str) and regional:
            check_token_destination(regional, self.base_url)
            self.app_url = regional.rstrip("/")
        return await self._account(
            LOGIN,
            {
                "appVersion": APP_VERSION,
                "cloudUserName": username,
                "cloudPassword": password,
                "platform": "Android",
                "refreshTokenNeeded": True,
                "terminalUUID": terminal_uuid,
                "terminalName": "tpcloud",
                "terminalMeta": "tpcloud",
            },
            "login",
        )

    async def send_mfa_code(
        self, username: str, password: str, terminal_uuid: str, process_id: str | None, mfa_type: int
    ) -> None:
        """Ask the cloud to send a verification code by MFA_TYPE (e-mail or app push)."""
        params: dict[str, Any] = {"cloudUserName": username, "cloudPassword": password, "terminalUUID": terminal_uuid}
        if process_id:
            params["MFAProcessId"] = process_id
        await self._account(_MFA_SEND[mfa_type], params, _MFA_SEND[mfa_type].rsplit("/", 1)[-1])

    async def check_mfa_code(
        self, username: str, code: str, terminal_uuid: str, process_id: str | None, mfa_type: int,
        *, password: str | None = None,
    ) -> dict[str, Any]:
        """Finish a login with the code; binds this terminal, so later logins need no code.

        Both kinds of server the peers met are answered at once: one wants ``MFAType`` and
        ``terminalBindEnabled`` with the process id (ioBroker.tapo, tapo-cli), another the
        account's ``cloudPassword`` with the terminal (piekstra's tplc); each ignores the other's.
        """
        params: dict[str, Any] = {
            "cloudUserName": username, "code": code, "MFAType": mfa_type,
            "terminalBindEnabled": True, "terminalUUID": terminal_uuid, "refreshTokenNeeded": True,
        }
        if process_id:
            params["MFAProcessId"] = process_id
        if password:
            params["cloudPassword"] = password
        return await self._account(MFA_CHECK, params, "checkMFACodeAndLogin")

    async def refresh(self, refresh_token: str, terminal_uuid: str) -> dict[str, Any]:
        return await self._account(REFRESH, {"refreshToken": refresh_token, "terminalUUID": terminal_uuid}, "refreshToken")

    # -- devices ----------------------------------------------------------------------------

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, url: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """A V1-style method, signed, on the account's regional server (or URL: a device's own).

        The device list is ``{"method": "getDeviceList"}`` posted there, as the peer that verified
        V2 against the real Kasa cloud sends it (piekstra/tplink-cloud-api 5.x, its issues #84 and
        #88); ``getDeviceListByPage`` is seen only with the Tapo app's keys on ``-gw`` hosts.
        """
        body: dict[str, Any] = {"method": method, **({"params": params} if params is not None else {})}
        return await self.request(url or self.app_url, body, token=token, what=method)
