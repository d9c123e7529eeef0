"""Wire layer: Tapo "securePassthrough" over HTTP (``POST /app``), serving a SmartDevice.

    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    with AesServer(dev, host="127.0.0.4", username="me@example.com", password="pw",
                   login_version=2) as srv:
        ...

Outer requests (JSON, exact Content-Length required, else HTTP 411):
- ``{"method":"handshake","params":{"key":PEM}}`` -> ``result.key`` = base64(RSA-PKCS#1 v1.5(key16
  + iv16)) and ``Set-Cookie: TP_SESSIONID=<id>;TIMEOUT=<s>``; a key that is not an RSA public key
  PEM -> ``-1010``.
- ``{"method":"securePassthrough","params":{"request":base64(AES-CBC(inner JSON))}}`` ->
  ``result.response`` = base64(AES-CBC(inner reply)).  No / unknown / expired session cookie ->
  outer ``error_code`` = ``expired_code`` (9999 unless ``expire_session(code)`` said otherwise);
  undecryptable -> outer -1005; inner not JSON -> outer -1003.
- any other outer method -> -1002.

Inner requests: ``login_device`` checks the credentials for ``login_version`` (1: ``password`` =
base64(password); 2: ``password2`` = base64(sha1(password).hexdigest()); ``username`` =
base64(sha1(email).hexdigest()) in both; the other version's form is refused) against the
account in ``accepts`` ("user", "test", "kasa" or "blank"); wrong -> inner -1501 and the session
is gone (the next request in it gets 9999: python-kasa ``aestransport.py``, "After a login failure
handshake needs to be redone or a 9999 error is received"), right -> ``result.token``.  Every other inner request needs ``?token=<that token>`` on the URL, else inner
-1501; then it goes to ``device.handle``.

Fault modes (``fault=`` or the ``fault`` attribute, changed at any time) change the answer to a
request that would reach the device (logged in, right token); handshake and ``login_device`` are
untouched, and the request is not executed:
- ``None``: as described above.
- ``"outer_error"``: the outer reply is ``{"error_code": fault_code}`` though the session lives.
- ``"inner_error"``: the encrypted inner reply is ``{"error_code": fault_code}``.
- ``"not_json"``: the HTTP body is an HTML page, not JSON.
- ``"undecryptable"``: ``result.response`` is not base64 of anything the session key decrypts.
- ``"no_response"``: the outer reply is ``{"error_code": 0}`` with no ``result``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._http import HttpEmulator, HttpRequest, HttpResponse
from .crypto import (aes_cbc_decrypt, aes_cbc_encrypt, aes_login_password_v1,
                     aes_login_password_v2, aes_login_username, rsa_encrypt_for_client)

LOGIN_ERROR = -1501
AES_DECODE_FAIL = -1005
JSON_DECODE_FAIL = -1003
UNKNOWN_METHOD = -1002
INVALID_PUBLIC_KEY = -1010
SESSION_TIMEOUT = 9999
SESSION_EXPIRED = -40401
FAULTS = (None, "outer_error", "inner_error", "not_json", "undecryptable", "no_response")


class AesSession:
    def __init__(self, sid: str, key: bytes, iv: bytes, timeout: int):
        self.sid = sid
        self.key = key
        self.iv = iv
        self.token: str | None = None
        self.expires = time.monotonic() + timeout


class AesServer(HttpEmulator):
    def __init__(self, device, host: str = "127.0.0.2", port: int = 0, *,
                 username: str = "user@example.com", password: str = "password",
                 login_version: int = 2, accepts: str = "user", session_timeout: int = 86400,
                 cookie_style: str = "single", fault: str | None = None, fault_code: int = -1008):
        super().__init__(host, port, device=device, username=username, password=password, accepts=accepts,
                         session_timeout=session_timeout)
        if login_version not in (1, 2):
            raise ValueError("login_version is 1 or 2")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.fault = fault
        self.fault_code = fault_code
        self.login_version = login_version
        self.cookie_style = cookie_style  # "single", "split" (two headers) or "none"
        self._cookieless_sid = ""
        # Inner replies in plain JSON instead of encrypted, as some firmware answers.
        self.plain_replies = False
        self.expired_code = SESSION_TIMEOUT
        self.next_key_iv: bytes | None = None  # fix the next handshake's 32 bytes (tests)
        self.sessions: dict[str, AesSession] = {}
        self._lock = threading.Lock()
        self.handshake_count = 0
        self.login_count = 0  # login_device attempts
        self.login_failures = 0
        self.request_count = 0  # securePassthrough calls
        self.rejected_count = 0  # answers with a non-zero error code (outer or inner)

    # ---------------------------------------------------------------- controls

    def expire_session(self, code: int = SESSION_TIMEOUT) -> None:
        """Drop every session; later securePassthrough calls answer ``code`` (9999 / -40401)."""
        with self._lock:
            self.sessions.clear()
            self.expired_code = code

    @property
    def stats(self) -> dict[str, int]:
        return {"handshakes": self.handshake_count, "logins": self.login_count,
                "login_failures": self.login_failures, "requests": self.request_count,
                "rejected": self.rejected_count}

    @property
    def requests(self) -> list:
        """Decoded inner requests that reached the device, in order."""
        return [e["request"] for e in self.entries("request")]

    # ---------------------------------------------------------------- HTTP

    @staticmethod
    def _json(obj: dict, headers: list | None = None) -> HttpResponse:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return HttpResponse(200, body, [("Content-Type", "application/json;charset=UTF-8")]
                            + (headers or []))

    def _error(self, code: int, reason: str, path: str = "/app") -> HttpResponse:
        self.rejected_count += 1
        self._record("rejected", path=path, error_code=code, reason=reason)
        return self._json({"error_code": code})

    def _handle_http(self, req: HttpRequest) -> HttpResponse:
        if req.method != "POST" or req.path != "/app":
            self.rejected_count += 1
            self._record("rejected", path=req.path, status=404, reason="unknown path")
            return HttpResponse(404, b"")
        try:
            outer = json.loads(req.body)
            method = outer["method"]
        except (ValueError, KeyError, TypeError):
            return self._error(JSON_DECODE_FAIL, "outer body is not a JSON request")
        params = outer.get("params") or {}
        if method == "handshake":
            return self._handshake(params)
        if method == "securePassthrough":
            return self._passthrough(req, params)
        return self._error(UNKNOWN_METHOD, f"outer method {method!r}")

    def _handshake(self, params: dict) -> HttpResponse:
        self.handshake_count += 1
        pem = params.get("key") if isinstance(params, dict) else None
        try:
            key = serialization.load_pem_public_key(str(pem).encode("ascii"))
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("not RSA")
        except (ValueError, TypeError, UnicodeError):
            return self._error(INVALID_PUBLIC_KEY, "bad public key")
        key_iv = self.next_key_iv or os.urandom(32)
        self.next_key_iv = None
        sid = uuid.uuid4().hex.upper()
        with self._lock:
            self.sessions[sid] = AesSession(sid, key_iv[:16], key_iv[16:], self.session_timeout)
        encrypted = rsa_encrypt_for_client(str(pem), key_iv)
        self._record("handshake", session=sid, key_size=key.key_size)
        if self.cookie_style == "none":  # firmware that sets no cookie: its one session is the latest
            self._cookieless_sid = sid
            cookies = []
        elif self.cookie_style == "single":
            cookies = [("Set-Cookie", f"TP_SESSIONID={sid};TIMEOUT={self.session_timeout}")]
        else:
            cookies = [("Set-Cookie", f"TP_SESSIONID={sid}"),
                       ("Set-Cookie", f"TIMEOUT={self.session_timeout}")]
        return self._json({"error_code": 0,
                           "result": {"key": base64.b64encode(encrypted).decode()}}, cookies)

    def _passthrough(self, req: HttpRequest, params: dict) -> HttpResponse:
        self.request_count += 1
        sid = req.cookies.get("TP_SESSIONID") or req.cookies.get("SESSIONID") or ""
        if self.cookie_style == "none":
            sid = sid or self._cookieless_sid
        with self._lock:
            sess = self.sessions.get(sid)
            if sess is not None and time.monotonic() > sess.expires:
                del self.sessions[sid]
                sess = None
        if sess is None:
            return self._error(self.expired_code, "no live session")
        try:
            cipher = base64.b64decode(params["request"], validate=True)
            plain = aes_cbc_decrypt(sess.key, sess.iv, cipher)
        except (KeyError, TypeError, ValueError):
            return self._error(AES_DECODE_FAIL, "cannot decrypt request")
        try:
            inner = json.loads(plain)
            inner_method = inner["method"]
        except (ValueError, KeyError, TypeError):
            return self._error(JSON_DECODE_FAIL, "inner request is not JSON")
        if inner_method == "login_device":
            reply = self._login(sess, inner.get("params") or {})
        elif sess.token is None or req.query.get("token") != sess.token:
            self.rejected_count += 1
            self._record("rejected", path=req.path, error_code=LOGIN_ERROR,
                         reason="missing or wrong token", request=inner)
            reply = {"error_code": LOGIN_ERROR}
        elif self.fault is not None:
            self._record("fault", session=sid, fault=self.fault, request=inner)
            faulty = self._faulty_answer()
            if faulty is not None:
                return faulty
            reply = {"error_code": self.fault_code}
        else:
            reply = self.device.handle(inner)
            self._record("request", session=sid, request=inner, response=reply)
        text = json.dumps(reply, separators=(",", ":"))
        if self.plain_replies:  # firmware that answers unencrypted (python-kasa aestransport.py)
            return self._json({"error_code": 0, "result": {"response": text}})
        out = aes_cbc_encrypt(sess.key, sess.iv, text.encode())
        return self._json({"error_code": 0,
                           "result": {"response": base64.b64encode(out).decode()}})

    def _faulty_answer(self) -> HttpResponse | None:
        """The whole HTTP answer for ``self.fault``, or None when the fault is the inner reply."""
        if self.fault == "outer_error":
            return self._error(self.fault_code, "fault: outer_error")
        if self.fault == "not_json":
            return HttpResponse(200, b"<html><body>500 Internal Error</body></html>",
                                [("Content-Type", "text/html")])
        if self.fault == "undecryptable":
            return self._json({"error_code": 0, "result": {"response": "@@@"}})
        if self.fault == "no_response":
            return self._json({"error_code": 0})
        return None

    def _login(self, sess: AesSession, params: dict) -> dict:
        self.login_count += 1
        email, password = self.credentials()
        ok = not self.reject_all_auth and isinstance(params, dict) \
            and params.get("username") == aes_login_username(email)
        if self.login_version == 1:
            ok = ok and "password2" not in params \
                and params.get("password") == aes_login_password_v1(password)
        else:
            ok = ok and "password" not in params \
                and params.get("password2") == aes_login_password_v2(password)
        if not ok:
            self.login_failures += 1
            self.rejected_count += 1
            self._record("login", session=sess.sid, ok=False, params=params)
            with self._lock:  # the session dies with the refusal: the next try handshakes again
                self.sessions.pop(sess.sid, None)
            return {"error_code": LOGIN_ERROR}
        sess.token = uuid.uuid4().hex.upper()
        self._record("login", session=sess.sid, ok=True, params=params)
        return {"error_code": 0, "result": {"token": sess.token}}
