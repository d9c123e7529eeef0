"""Cloud layer: a fake TP-Link cloud (V1 API) served over real HTTP on 127.0.0.1.

It holds the account and its devices (device-layer doubles from tests/doubles/devices/, run for
``passthrough``); the V2 cloud (v2.py) fronts the same state.

Two ``ThreadingHTTPServer`` instances on ephemeral ports, in daemon threads:

- the **login host** ``cloud.url`` (what a client puts in ``TPCLOUD_CLOUD_URL``);
- a **regional app server** ``cloud.regional_url`` (what ``https://eu-wap.tplinkcloud.com`` is).

Both answer ``POST /`` only (other paths: HTTP 404; other verbs: HTTP 405) with a JSON body
``{"method": M, "params": {...}}`` and the token as ``?token=`` once logged in. Replies are
HTTP 200 ``{"error_code": 0, "result": {...}}`` or ``{"error_code": N, "msg": "..."}``.

Errors the fake gives (see ``protocols.md`` section 3):

=========  ==============================================  ====================================
code       message                                          when
=========  ==============================================  ====================================
-10100     JSON format error                                body (or passthrough requestData)
                                                            is not JSON / not an object
-10101     Request body is empty                            empty body
-20103     Method not found                                 unknown or missing ``method``
-20104     Parameter doesn't exist                          ``params`` or a required key missing
-20105     Parameter type error                             ``requestData`` not a string, etc.
-20600     Account not found                                unknown ``cloudUserName``
-20601     Incorrect email or password                      wrong password
-23003     App version is too old                           ``FakeCloud(mfa_required=True)``
-20651     Token expired                                    token expired (``expire_tokens()``)
-20652     Token incorrect                                  token missing or unknown
-20655     Refresh token expired                            after ``expire_refresh_tokens()``
-20656     Refresh token incorrect                          unknown, or other terminalUUID
-20501     Device id not found                              unknown deviceId, **and** a
                                                            passthrough sent to the wrong host
                                                            (not the device's appServerUrl);
                                                            change ``wrong_server_error``
-20580     Account is not binded to the device              passthrough to a strip *child* id
-20571     Device is offline                                Kasa ``online=False``; every Tapo
=========  ==============================================  ====================================

Tokens are valid on both servers. ``refreshToken`` issues a new token and a new refresh token;
the used refresh token stays valid unless ``FakeCloud(invalidate_used_refresh_tokens=True)``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets as _secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.doubles.devices.iot import IotDevice, load_fixture, resolve_fixture

ERROR_MESSAGES = {
    -10100: "JSON format error",
    -10101: "Request body is empty",
    -20103: "Method not found",
    -20104: "Parameter doesn't exist",
    -20105: "Parameter type error",
    -20501: "Device id not found",
    -20571: "Device is offline",
    -20580: "Account is not binded to the device",
    -20600: "Account not found",
    -20601: "Incorrect email or password",
    -20651: "Token expired",
    -20652: "Token incorrect",
    -20655: "Refresh token expired",
    -20656: "Refresh token incorrect",
    -20002: "Request timeout",
    -20003: "Server busy",
    -23003: "App version is too old",
}

REGION_NAMES = {"login": "us-east-1", "regional": "eu-west-1"}


class CloudError(Exception):
    def __init__(self, code: int, msg: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg if msg is not None else ERROR_MESSAGES.get(code, "Unknown error")


@dataclass
class RequestRecord:
    """One HTTP request the fake received (in arrival order)."""

    server: str  # "login" or "regional"
    path: str
    http_method: str
    method: str | None  # cloud method from the JSON body, None if unreadable
    params: dict | None
    token: str | None  # the ?token= query value
    query: dict  # every query parameter (first value each)
    headers: dict
    body: bytes
    time: float = field(default_factory=time.time)
    status: int | None = None  # HTTP status sent (None: connection dropped)
    reply: Any = None  # the decoded JSON reply, or raw bytes for injected HTTP faults

    @property
    def error_code(self) -> int | None:
        return self.reply.get("error_code") if isinstance(self.reply, dict) else None


@dataclass
class CloudDevice:
    """A device bound to the fake account."""

    device_id: str
    region: str  # "login" | "regional"
    kind: str  # "iot" | "smart"
    iot: IotDevice | None = None
    entry: dict = field(default_factory=dict)  # static list fields (smart devices)
    online: bool = True
    response_as_object: bool = False
    app_server_url: str | None = None  # listed instead of the region's server (hostile lists)


@dataclass
class _Fault:
    method: str | None
    server: str | None
    times: int
    kind: str  # "cloud" | "http" | "disconnect"
    error_code: int = 0
    msg: str = ""
    status: int = 500
    body: bytes = b""
    content_type: str = "text/html"


class FakeCloud:
    """Fake V1 cloud with one account. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        username: str = "user@example.com",
        password: str = "hunter2-Secret!",
        *,
        nickname: str = "Test User",
        country_code: str = "US",
        account_id: str = "12345678",
        mfa_required: bool = False,
        invalidate_used_refresh_tokens: bool = False,
    ) -> None:
        self.username = username
        self.password = password
        self.nickname = nickname
        self.country_code = country_code
        self.account_id = account_id
        self.mfa_required = mfa_required
        self.invalidate_used_refresh_tokens = invalidate_used_refresh_tokens
        self.delay: float = 0.0  # seconds to wait before answering any request
        self.delays: dict[str, float] = {}  # per cloud method, added to ``delay``
        self.wrong_server_error: tuple[int, str] = (-20501, ERROR_MESSAGES[-20501])

        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._requests: list[RequestRecord] = []
        self._tokens: dict[str, dict] = {}  # token -> {"expired", "terminal"}
        self._refresh: dict[str, dict] = {}  # refresh token -> {"expired", "terminal", "valid"}
        self._terminals: list[str] = []
        self._devices: dict[str, CloudDevice] = {}
        self.by_alias: dict[str, IotDevice | CloudDevice] = {}  # alias given to add_* -> device
        self._faults: list[_Fault] = []
        self._counter = 0
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeCloud":
        if self._servers:
            return self
        self._stop_event.clear()
        for name in ("login", "regional"):
            server = _QuietServer(("127.0.0.1", 0), _make_handler(self, name))
            server.daemon_threads = True
            server.block_on_close = False
            self._servers[name] = server
            t = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01},
                name=f"fakecloud-{name}", daemon=True,
            )
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop_event.set()
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> "FakeCloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _base_url(self, name: str) -> str:
        if name not in self._servers:
            raise RuntimeError("FakeCloud is not started")
        host, port = self._servers[name].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The login host's base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        return self._base_url("login")

    @property
    def regional_url(self) -> str:
        """The regional app server's base URL (the ``appServerUrl`` of regional devices)."""
        return self._base_url("regional")

    def server_url(self, region: str) -> str:
        return self._base_url(region)

    # ------------------------------------------------------------------ devices
    def _next_ids(self, oui: str) -> tuple[str, str]:
        with self._lock:
            self._counter += 1
            n = self._counter
        device_id = hashlib.sha1(f"tpcloud-fake-device-{n}".encode()).hexdigest().upper()
        mac = f"{oui}{n:06X}"
        return device_id, mac

    def add_iot_device(
        self,
        fixture: str | Path,
        alias: str,
        *,
        region: str = "regional",
        online: bool = True,
        response_as_object: bool = False,
        device_id: str | None = None,
        mac: str | None = None,
        child_aliases: list[str] | None = None,
    ) -> IotDevice:
        """Bind a Kasa device seeded from an ``iot/`` fixture; returns its emulator."""
        if region not in REGION_NAMES:
            raise ValueError("region must be 'login' or 'regional'")
        data = load_fixture(fixture, "iot")
        sysinfo = data["system"]["get_sysinfo"]
        oui = (sysinfo.get("mac") or sysinfo.get("mic_mac") or "").replace(":", "").upper()[:6]
        auto_id, auto_mac = self._next_ids(oui if oui and oui != "000000" else "50C7BF")
        dev = IotDevice(
            data,
            name=resolve_fixture(fixture, "iot").name,
            alias=alias,
            device_id=device_id or auto_id,
            mac=mac or auto_mac,
            child_aliases=child_aliases,
        )
        with self._lock:
            if dev.device_id in self._devices:
                raise ValueError(f"duplicate deviceId {dev.device_id}")
            self._devices[dev.device_id] = CloudDevice(
                device_id=dev.device_id, region=region, kind="iot", iot=dev,
                online=online, response_as_object=response_as_object,
            )
            self.by_alias[alias] = dev
        return dev

    def add_smart_device(
        self,
        fixture: str | Path,
        alias: str,
        *,
        region: str = "regional",
        device_id: str | None = None,
        mac: str | None = None,
    ) -> CloudDevice:
        """List a Tapo/SMART device from a ``smart/`` fixture (alias base64); passthrough -> -20571."""
        if region not in REGION_NAMES:
            raise ValueError("region must be 'login' or 'regional'")
        data = load_fixture(fixture, "smart")
        info = data.get("get_device_info", {})
        disco = (data.get("discovery_result") or {}).get("result", {})
        oui = str(info.get("mac", "")).replace("-", "").replace(":", "").upper()[:6]
        auto_id, auto_mac = self._next_ids(oui if oui and oui != "000000" else "5CE931")
        device_id = (device_id or auto_id).upper()
        mac12 = (mac or auto_mac).replace(":", "").replace("-", "").upper()
        model = disco.get("device_model") or info.get("model", "")
        entry = {
            "deviceType": info.get("type") or disco.get("device_type", "SMART.TAPOPLUG"),
            "role": 0,
            "fwVer": info.get("fw_ver", ""),
            "deviceName": info.get("model", model),
            "status": 0,
            "alias": base64.b64encode(alias.encode("utf-8")).decode("ascii"),
            "deviceModel": model,
            "deviceHwVer": info.get("hw_ver", ""),
            "deviceMac": mac12,
            "oemId": str(info.get("oem_id", "0" * 32)).upper(),
            "hwId": str(info.get("hw_id", "0" * 32)).upper(),
            "fwId": str(info.get("fw_id", "0" * 32)).upper(),
            "deviceId": device_id,
        }
        cd = CloudDevice(device_id=device_id, region=region, kind="smart", entry=entry, online=True)
        with self._lock:
            if device_id in self._devices:
                raise ValueError(f"duplicate deviceId {device_id}")
            self._devices[device_id] = cd
            self.by_alias[alias] = cd
        return cd

    def remove_device(self, device: IotDevice | CloudDevice | str) -> None:
        with self._lock:
            self._devices.pop(_device_id_of(device), None)

    def set_online(self, device: IotDevice | CloudDevice | str, online: bool) -> None:
        with self._lock:
            self._devices[_device_id_of(device)].online = online

    def cloud_device(self, device: IotDevice | CloudDevice | str) -> CloudDevice:
        with self._lock:
            return self._devices[_device_id_of(device)]

    @property
    def devices(self) -> list[CloudDevice]:
        with self._lock:
            return list(self._devices.values())

    def device_list(self) -> list[dict]:
        """The ``deviceList`` entries ``getDeviceList`` answers right now."""
        with self._lock:
            return [self._list_entry(cd) for cd in self._devices.values()]

    def _list_entry(self, cd: CloudDevice) -> dict:
        url = cd.app_server_url or self._base_url(cd.region)
        common = {
            "appServerUrl": url,
            "deviceRegion": REGION_NAMES[cd.region],
            "isSameRegion": cd.region == "login",
        }
        if cd.kind == "smart":
            return {**cd.entry, **common}
        dev = cd.iot
        assert dev is not None
        si = dev.sysinfo
        return {
            "deviceType": dev.device_type,
            "role": 0,
            "fwVer": si.get("sw_ver", ""),
            "deviceName": si.get("dev_name") or si.get("description") or dev.model,
            "status": 1 if cd.online else 0,
            "alias": dev.alias,
            "deviceModel": dev.model,
            "deviceHwVer": si.get("hw_ver", ""),
            "deviceMac": dev.mac,
            "oemId": si.get("oemId", "0" * 32),
            "hwId": si.get("hwId", "0" * 32),
            "fwId": si.get("fwId", "0" * 32),
            "deviceId": dev.device_id,
            **common,
        }

    # ------------------------------------------------------------------ test controls
    def expire_tokens(self) -> None:
        """Every token issued so far answers -20651 from now on (new logins work)."""
        with self._lock:
            for info in self._tokens.values():
                info["expired"] = True

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far answers -20655 from now on."""
        with self._lock:
            for info in self._refresh.values():
                info["expired"] = True

    def fail_next(
        self,
        method: str | None,
        error_code: int,
        msg: str | None = None,
        times: int = 1,
        *,
        server: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (None: any) answer ``{"error_code": N, "msg"}``."""
        with self._lock:
            self._faults.append(_Fault(
                method=method, server=server, times=times, kind="cloud", error_code=error_code,
                msg=msg if msg is not None else ERROR_MESSAGES.get(error_code, "Unknown error"),
            ))

    def fail_next_http(
        self,
        method: str | None,
        status: int = 500,
        body: bytes = b"<html><body><h1>500 Internal Server Error</h1></body></html>",
        content_type: str = "text/html",
        times: int = 1,
        *,
        server: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` get a raw HTTP reply (status, body, type)."""
        with self._lock:
            self._faults.append(_Fault(
                method=method, server=server, times=times, kind="http", status=status,
                body=body, content_type=content_type,
            ))

    def fail_next_disconnect(
        self, method: str | None, times: int = 1, *, server: str | None = None
    ) -> None:
        """The next ``times`` calls of ``method`` get the connection closed without a reply."""
        with self._lock:
            self._faults.append(_Fault(method=method, server=server, times=times, kind="disconnect"))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str | None, server: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if (f.method is None or f.method == method) and (f.server in (None, server)):
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f
        return None

    # ------------------------------------------------------------------ inspection
    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received, in order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def calls(self, method: str | None = None, server: str | None = None) -> list[RequestRecord]:
        return [
            r for r in self.requests
            if (method is None or r.method == method) and (server is None or r.server == server)
        ]

    def count(self, method: str | None = None, server: str | None = None) -> int:
        return len(self.calls(method, server))

    def last(self, method: str | None = None, server: str | None = None) -> RequestRecord | None:
        found = self.calls(method, server)
        return found[-1] if found else None

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    @property
    def issued_refresh_tokens(self) -> list[str]:
        with self._lock:
            return list(self._refresh)

    @property
    def terminal_uuids(self) -> list[str]:
        """terminalUUIDs seen in successful logins, in order (duplicates removed)."""
        with self._lock:
            return list(self._terminals)

    def secrets(self) -> list[str]:
        """Every secret a client could leak: the password, all tokens and refresh tokens."""
        return [self.password, *self.issued_tokens, *self.issued_refresh_tokens]

    def assert_no_secrets(self, text: str) -> None:
        for s in self.secrets():
            assert s not in text, "a secret (password or token) appears in the text"

    # ------------------------------------------------------------------ protocol
    def _issue(self, terminal: str) -> tuple[str, str]:
        token = f"{self.account_id[:4]}-{_secrets.token_urlsafe(24)}"
        refresh = _secrets.token_hex(24).upper()
        self._tokens[token] = {"expired": False, "terminal": terminal}
        self._refresh[refresh] = {"expired": False, "terminal": terminal, "valid": True}
        return token, refresh

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise CloudError(-20652)
        info = self._tokens.get(token)
        if info is None:
            raise CloudError(-20652)
        if info["expired"]:
            raise CloudError(-20651)

    def dispatch(self, server: str, method: Any, params: Any, token: str | None) -> dict:
        """Answer one decoded call; returns the reply object (``error_code`` etc.)."""
        try:
            result = self._dispatch(server, method, params, token)
        except CloudError as e:
            return {"error_code": e.code, "msg": e.msg}
        return {"error_code": 0, "result": result}

    def _dispatch(self, server: str, method: Any, params: Any, token: str | None) -> dict:
        handlers = {
            "login": self._login,
            "refreshToken": self._refresh_token,
            "getDeviceList": self._get_device_list,
            "passthrough": self._passthrough,
        }
        if not isinstance(method, str) or method not in handlers:
            raise CloudError(-20103)
        if params is None and method != "getDeviceList":
            raise CloudError(-20104)
        if params is not None and not isinstance(params, dict):
            raise CloudError(-20105)
        return handlers[method](server, params or {}, token)

    @staticmethod
    def _require(params: dict, *keys: str) -> None:
        for k in keys:
            v = params.get(k)
            if v is None or v == "":
                raise CloudError(-20104)
            if not isinstance(v, str):
                raise CloudError(-20105)

    def _login(self, server: str, params: dict, token: str | None) -> dict:
        self._require(params, "appType", "cloudUserName", "cloudPassword", "terminalUUID")
        if params["cloudUserName"].casefold() != self.username.casefold():
            raise CloudError(-20600)
        if params["cloudPassword"] != self.password:
            raise CloudError(-20601)
        if self.mfa_required:
            raise CloudError(-23003)
        terminal = params["terminalUUID"]
        with self._lock:
            tok, refresh = self._issue(terminal)
            if terminal not in self._terminals:
                self._terminals.append(terminal)
        result = {
            "accountId": self.account_id,
            "regTime": "2019-06-01 12:00:00",
            "countryCode": self.country_code,
            "riskDetected": 0,
            "nickname": self.nickname,
            "email": self.username,
            "token": tok,
        }
        if params.get("refreshTokenNeeded") is True:
            result["refreshToken"] = refresh
        else:
            with self._lock:
                self._refresh.pop(refresh, None)
        return result

    def _refresh_token(self, server: str, params: dict, token: str | None) -> dict:
        self._require(params, "appType", "terminalUUID", "refreshToken")
        with self._lock:
            info = self._refresh.get(params["refreshToken"])
            if info is None or not info["valid"] or info["terminal"] != params["terminalUUID"]:
                raise CloudError(-20656)
            if info["expired"]:
                raise CloudError(-20655)
            if self.invalidate_used_refresh_tokens:
                info["valid"] = False
            tok, refresh = self._issue(params["terminalUUID"])
        return {"token": tok, "refreshToken": refresh}

    def _get_device_list(self, server: str, params: dict, token: str | None) -> dict:
        with self._lock:
            self._check_token(token)
            return {"deviceList": self.device_list()}

    def _passthrough(self, server: str, params: dict, token: str | None) -> dict:
        with self._lock:
            self._check_token(token)
            device_id = params.get("deviceId")
            request_data = params.get("requestData")
            if device_id in (None, "") or request_data is None:
                raise CloudError(-20104)
            if not isinstance(device_id, str) or not isinstance(request_data, str):
                raise CloudError(-20105)
            cd = self._devices.get(device_id.upper())
            if cd is None:
                for other in self._devices.values():
                    if other.iot is not None and device_id.upper() in (
                        c.upper() for c in other.iot.child_ids
                    ):
                        raise CloudError(-20580)
                raise CloudError(-20501)
            if cd.region != server:
                raise CloudError(*self.wrong_server_error)
            if cd.kind == "smart" or not cd.online:
                raise CloudError(-20571)
            try:
                request = json.loads(request_data)
            except ValueError:
                raise CloudError(-10100) from None
            if not isinstance(request, dict):
                raise CloudError(-10100)
            response_as_object = cd.response_as_object
            dev = cd.iot
        assert dev is not None
        reply = dev.handle(request)
        if response_as_object:
            return {"responseData": reply}
        return {"responseData": json.dumps(reply, separators=(",", ":"))}

    # ------------------------------------------------------------------ HTTP plumbing
    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._requests.append(rec)

    def _sleep(self, method: str | None) -> None:
        seconds = self.delay + self.delays.get(method or "", 0.0)
        if seconds > 0:
            self._stop_event.wait(seconds)


class _QuietServer(ThreadingHTTPServer):
    """No tracebacks on stderr when a client hangs up (timeouts, fault tests)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _device_id_of(device: IotDevice | CloudDevice | str) -> str:
    if isinstance(device, str):
        return device.upper()
    return device.device_id


def _make_handler(cloud: FakeCloud, server_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body writes cost a 40 ms delayed ACK
        server_version = "FakeTPLinkCloud/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _read_body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if length is not None:
                try:
                    n = int(length)
                except ValueError:
                    n = 0
                return self.rfile.read(n) if n > 0 else b""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            return b""

        def _send(self, status: int, body: bytes, content_type: str, rec: RequestRecord,
                  reply: Any) -> None:
            rec.status = status
            rec.reply = reply
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_json(self, reply: dict, rec: RequestRecord) -> None:
            body = json.dumps(reply).encode("utf-8")
            self._send(200, body, "application/json;charset=UTF-8", rec, reply)

        def _new_record(self, body: bytes) -> RequestRecord:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            return RequestRecord(
                server=server_name, path=parts.path, http_method=self.command,
                method=None, params=None, token=query.get("token"), query=query,
                headers=dict(self.headers.items()), body=body,
            )

        def _not_allowed(self) -> None:
            body = self._read_body()
            rec = self._new_record(body)
            cloud._record(rec)
            self._send(405, b"Method Not Allowed", "text/plain", rec, b"Method Not Allowed")

        do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed

        def do_POST(self) -> None:
            body = self._read_body()
            rec = self._new_record(body)
            cloud._record(rec)
            decoded: Any = None
            parse_error: int | None = None
            if not body.strip():
                parse_error = -10101
            else:
                try:
                    decoded = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    parse_error = -10100
                else:
                    if not isinstance(decoded, dict):
                        parse_error = -10100
            if isinstance(decoded, dict):
                m = decoded.get("method")
                rec.method = m if isinstance(m, str) else None
                p = decoded.get("params")
                rec.params = copy.deepcopy(p) if isinstance(p, dict) else None
            if rec.path != "/":
                self._send(404, b"<html><body>404 Not Found</body></html>", "text/html", rec,
                           b"404 Not Found")
                return

            cloud._sleep(rec.method)
            if cloud._stop_event.is_set():
                self.close_connection = True
                return
            fault = cloud._take_fault(rec.method, server_name)
            if fault is not None:
                if fault.kind == "disconnect":
                    self.close_connection = True
                    return
                if fault.kind == "http":
                    self._send(fault.status, fault.body, fault.content_type, rec, fault.body)
                    return
                self._send_json({"error_code": fault.error_code, "msg": fault.msg}, rec)
                return
            if parse_error is not None:
                self._send_json(
                    {"error_code": parse_error, "msg": ERROR_MESSAGES[parse_error]}, rec
                )
                return
            assert isinstance(decoded, dict)
            reply = cloud.dispatch(server_name, decoded.get("method"), decoded.get("params"),
                                   rec.token)
            self._send_json(reply, rec)

    return Handler
