"""Cloud layer: a fake signed V2 TP-Link cloud, served over real HTTP (or TLS) on 127.0.0.1.

It fronts a ``FakeCloud`` (tests/doubles/cloud/v1.py) and shares its account, tokens and devices, so
a V1 login and a V2 login see the same home. Two servers, as in the real cloud:

- the **root** ``url`` (what ``TPCLOUD_CLOUD_V2_URL`` points at; n-wap.tplinkcloud.com), where
  ``getAccountStatusAndUrl`` names the account's regional server;
- the **regional** server ``regional_url``, where the account logs in, refreshes and lists its
  devices, and where the devices of the "regional" region take passthrough.

Every request is checked as the cloud checks it, written here apart from the client's code:
``Content-MD5`` must be base64(MD5(body)), and ``X-Authorization`` must carry the app's
AccessKey, a numeric Timestamp, a Nonce never used before and the hex HMAC-SHA1 of
``md5 \\n timestamp \\n nonce \\n path`` under the app's secret. A request that fails answers
``{"error_code": -10000, "msg": "Signature verification failed"}`` (the real cloud's code for
this is not known; the client treats every unknown code alike).

Paths: ``/api/v2/account/{getAccountStatusAndUrl, login, getEmailVC4TerminalMFA,
getPushVC4TerminalMFA, checkMFACodeAndLogin, refreshToken}``, and ``/`` for the V1-style
``getDeviceList`` and ``passthrough`` (the form piekstra/tplink-cloud-api verified on the real
Kasa cloud). A login on a server other than the account's answers ``-20212`` with
the right ``appServerUrl`` (``redirect_to`` overrides it, for a hostile redirect).

``errors="nested"`` answers every failed account call as the real cloud often does: HTTP 200,
``error_code 0``, and the failure in ``result.errorCode`` (a string) and ``result.errorMsg``, next
to whatever the result carried (``appServerUrl`` for -20212).

2-step verification (``mfa="nested"``: HTTP 200, ``error_code 0``, ``result.errorCode "-20677"``
with ``MFAProcessId`` and ``supportedMFATypes``; ``mfa="process_id"``: ``error_code 0`` and only
``MFAProcessId`` and ``supportedMFATypes``; ``mfa="top"``: ``error_code -20677`` with
``result.mfaType``) is asked of every terminalUUID not yet bound. A code request "sends" a
6-digit code (``codes_sent``, the mailbox) bound to that terminalUUID (and process id); a right
``checkMFACodeAndLogin`` with ``terminalBindEnabled`` binds the terminal and logs it in. A wrong
code answers ``-20999`` ("Verification code incorrect"; again the fake's own choice).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets as _secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .v1 import CloudError, FakeCloud, _QuietServer

ACCESS_KEY = "e37525375f8845999bcc56d5e6faa76d"
SECRET_KEY = "314bc6700b3140ca80bc655e527cb062"
BAD_SIGNATURE = -10000
WRONG_CODE = -20999


@dataclass
class V2Request:
    """One request the fake received, and whether its signature held."""

    server: str  # "login" (the root) or "regional"
    path: str
    body: Any
    token: str | None
    headers: dict
    signed: bool
    query: dict = field(default_factory=dict)
    reply: dict = field(default_factory=dict)


class FakeCloudV2:
    """The V2 face of a FakeCloud's account. Use as a context manager."""

    def __init__(
        self,
        cloud: FakeCloud,
        *,
        mfa: str | None = None,
        mfa_types: tuple[int, ...] = (1, 2),
        errors: str = "top",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.cloud = cloud
        self.mfa = mfa
        self.mfa_types = mfa_types
        if errors not in ("top", "nested"):
            raise ValueError("errors is 'top' or 'nested'")
        self.errors = errors
        self.tls = tls
        self.secret_key = SECRET_KEY  # change it to make every signature wrong
        self.status_points_to = "regional"  # "login" makes the client meet -20212
        self.refuse_login: tuple[int, str] | None = None  # e.g. (-20661, "Account is locked")
        # What checkMFACodeAndLogin insists on: "bind" (MFAType + terminalBindEnabled, as
        # ioBroker.tapo and tapo-cli send) or "password" (cloudPassword, as piekstra's tplc sends).
        self.code_check = "bind"
        self.redirect_to: str | None = None
        self.codes_sent: list[tuple[int, str]] = []
        self.bound_terminals: set[str] = set()
        self._pending: dict[str, dict] = {}  # terminalUUID -> {"process_id", "code", "type"}
        self._nonces: set[str] = set()
        self._requests: list[V2Request] = []
        self._lock = threading.RLock()
        self._servers: dict[str, _QuietServer] = {}
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "FakeCloudV2":
        for name in ("login", "regional"):
            server = _QuietServer(("127.0.0.1", 0), _handler(self, name))
            if self.tls is not None:
                server.socket = self.tls.wrap_socket(server.socket, server_side=True)
            server.daemon_threads = True
            self._servers[name] = server
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: Any) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def server_url(self, name: str) -> str:
        host, port = self._servers[name].server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def url(self) -> str:
        return self.server_url("login")

    @property
    def regional_url(self) -> str:
        return self.server_url("regional")

    # -- inspection --------------------------------------------------------------------------
    @property
    def requests(self) -> list[V2Request]:
        with self._lock:
            return list(self._requests)

    def calls(self, path_end: str) -> list[V2Request]:
        return [r for r in self.requests if r.path.endswith(path_end)]

    def last_code(self) -> str:
        return self.codes_sent[-1][1]

    # -- signature ---------------------------------------------------------------------------
    def signature_ok(self, path: str, body: bytes, headers: dict) -> bool:
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        if headers.get("Content-MD5") != md5:
            return False
        fields = dict(
            part.strip().split("=", 1) for part in headers.get("X-Authorization", "").split(",") if "=" in part
        )
        nonce, stamp = fields.get("Nonce", ""), fields.get("Timestamp", "")
        if fields.get("AccessKey") != ACCESS_KEY or not stamp.isdigit() or not nonce:
            return False
        expected = hmac.new(self.secret_key.encode(), f"{md5}\n{stamp}\n{nonce}\n{path}".encode(), hashlib.sha1)
        with self._lock:
            if nonce in self._nonces:  # a replayed request
                return False
            self._nonces.add(nonce)
        return hmac.compare_digest(expected.hexdigest(), fields.get("Signature", ""))

    # -- the API -----------------------------------------------------------------------------
    def answer(self, server: str, path: str, body: Any, token: str | None) -> dict:
        reply = self._answer(server, path, body, token)
        if self.errors == "nested" and path.startswith("/api/v2/account/") and reply["error_code"] != 0:
            # As the real cloud answers account calls: HTTP 200, error_code 0, the failure inside.
            result = {**(reply.get("result") or {}), "errorCode": str(reply["error_code"]), "errorMsg": reply.get("msg", "")}
            reply = {"error_code": 0, "result": result}
        return reply

    def _answer(self, server: str, path: str, body: Any, token: str | None) -> dict:
        handlers = {
            "/api/v2/account/getAccountStatusAndUrl": self._status,
            "/api/v2/account/login": self._login,
            "/api/v2/account/getEmailVC4TerminalMFA": lambda s, p: self._send_code(s, p, 2),
            "/api/v2/account/getPushVC4TerminalMFA": lambda s, p: self._send_code(s, p, 1),
            "/api/v2/account/checkMFACodeAndLogin": self._check_code,
            "/api/v2/account/refreshToken": self._refresh,
        }
        try:
            if not isinstance(body, dict):
                raise CloudError(-10100)
            if path == "/":
                return self._v1_style(server, body, token)
            if path not in handlers:
                raise CloudError(-20103)
            return handlers[path](server, body)
        except CloudError as exc:
            return {"error_code": exc.code, "msg": exc.msg}

    def _account(self, params: dict, *, password: bool = True) -> None:
        FakeCloud._require(params, "appType", "cloudUserName", *(["cloudPassword"] if password else []))
        if params["cloudUserName"].casefold() != self.cloud.username.casefold():
            raise CloudError(-20600)
        if password and params["cloudPassword"] != self.cloud.password:
            raise CloudError(-20601)

    def _status(self, server: str, params: dict) -> dict:
        self._account(params, password=False)
        return {"error_code": 0, "result": {"appServerUrl": self.server_url(self.status_points_to)}}

    def _login(self, server: str, params: dict) -> dict:
        if server != "regional":
            return {"error_code": -20212, "msg": "Account is in another region",
                    "result": {"appServerUrl": self.redirect_to or self.regional_url}}
        self._account(params)
        if self.refuse_login is not None:
            raise CloudError(*self.refuse_login)
        FakeCloud._require(params, "terminalUUID")
        terminal = params["terminalUUID"]
        if self.mfa and terminal not in self.bound_terminals:
            return self._mfa_signal(terminal)
        return {"error_code": 0, "result": self._logged_in(terminal)}

    def _mfa_signal(self, terminal: str) -> dict:
        process_id = _secrets.token_hex(16) if self.mfa in ("nested", "process_id") else None
        with self._lock:
            self._pending[terminal] = {"process_id": process_id, "code": None, "type": None}
        if self.mfa == "process_id":  # nothing but the process id says a code is wanted
            return {"error_code": 0, "result": {"MFAProcessId": process_id, "supportedMFATypes": list(self.mfa_types)}}
        if self.mfa == "nested":
            return {"error_code": 0, "result": {
                "errorCode": "-20677", "errorMsg": "Login needs MFA", "MFAProcessId": process_id,
                "supportedMFATypes": list(self.mfa_types), "email": self.cloud.username,
            }}
        return {"error_code": -20677, "msg": "Login needs MFA", "result": {"mfaType": self.mfa_types[-1]}}

    def _pending_for(self, params: dict) -> dict:
        with self._lock:
            pending = self._pending.get(str(params.get("terminalUUID")))
        if pending is None or pending["process_id"] != params.get("MFAProcessId"):
            raise CloudError(-20104, "No MFA process for this terminal")
        return pending

    def _send_code(self, server: str, params: dict, mfa_type: int) -> dict:
        self._account(params)
        pending = self._pending_for(params)
        if mfa_type not in self.mfa_types:
            raise CloudError(-20105, "MFA type not supported")
        code = f"{_secrets.randbelow(10**6):06d}"
        with self._lock:
            pending.update(code=code, type=mfa_type)
            self.codes_sent.append((mfa_type, code))
        return {"error_code": 0, "result": {}}

    def _check_code(self, server: str, params: dict) -> dict:
        self._account(params, password=False)
        pending = self._pending_for(params)
        if self.code_check == "password":  # piekstra's tplc: the password goes with the code
            if params.get("cloudPassword") != self.cloud.password:
                raise CloudError(-20601)
        elif params.get("terminalBindEnabled") is not True or params.get("MFAType") != pending["type"]:
            raise CloudError(-20105)
        if pending["code"] is None or params.get("code") != pending["code"]:
            raise CloudError(WRONG_CODE, "Verification code incorrect")
        terminal = params["terminalUUID"]
        with self._lock:
            self._pending.pop(terminal)
            self.bound_terminals.add(terminal)
        return {"error_code": 0, "result": self._logged_in(terminal)}

    def _logged_in(self, terminal: str) -> dict:
        with self.cloud._lock:
            token, refresh = self.cloud._issue(terminal)
        return {"accountId": self.cloud.account_id, "email": self.cloud.username, "nickname": self.cloud.nickname,
                "token": token, "refreshToken": refresh}

    def _refresh(self, server: str, params: dict) -> dict:
        return {"error_code": 0, "result": self.cloud._refresh_token(server, params, None)}

    def _devices(self, token: str | None) -> list[dict]:
        with self.cloud._lock:
            self.cloud._check_token(token)
        entries = self.cloud.device_list()
        for entry in entries:  # each device is reached through the V2 server of its region
            entry["appServerUrl"] = self.server_url("regional" if entry["deviceRegion"] == "eu-west-1" else "login")
        return entries

    def _v1_style(self, server: str, body: dict, token: str | None) -> dict:
        if body.get("method") == "getDeviceList":  # as piekstra's V2 client lists devices
            return {"error_code": 0, "result": {"deviceList": self._devices(token)}}
        if body.get("method") != "passthrough":
            raise CloudError(-20103)
        return self.cloud.dispatch(server, "passthrough", body.get("params"), token)


def _handler(fake: FakeCloudV2, server_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            token = (parse_qs(parts.query).get("token") or [None])[0]
            headers = dict(self.headers.items())
            signed = fake.signature_ok(parts.path, body, headers)
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            record = V2Request(server_name, parts.path, decoded, token, headers, signed, query=query)
            if signed:
                record.reply = fake.answer(server_name, parts.path, decoded, token)
            else:
                record.reply = {"error_code": BAD_SIGNATURE, "msg": "Signature verification failed"}
            with fake._lock:
                fake._requests.append(record)
            out = json.dumps(record.reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler


def loopback_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A test CA and a server certificate for 127.0.0.1 it signed: (server context, CA file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tpcloud test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "test-ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file
