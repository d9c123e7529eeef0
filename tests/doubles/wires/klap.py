"""Wire layer: KLAP over HTTP: v1 (newer Kasa, usually serving an IotDevice) or v2 (Tapo, a SmartDevice).

    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    with KlapServer(dev, host="127.0.0.3", username="me@example.com", password="pw") as srv:
        ... POST http://127.0.0.3:<srv.port>/app/handshake1 ...

Endpoints (all POST): ``/app/handshake1`` (16-byte local seed -> remote seed + server hash, sets
``TP_SESSIONID=<id>;TIMEOUT=<s>``), ``/app/handshake2`` (client hash; 200 or 403),
``/app/request?seq=N`` (signed, encrypted JSON; the reply is signed and encrypted the same way with
the same seq).

Which credentials the device currently accepts: ``accepts`` is one of ``"user"`` (the
``username``/``password`` given), ``"kasa"`` (kasa@tp-link.net / kasaSetup), ``"test"``
(test@tp-link.net / test) or ``"blank"`` ("" / "").  ``reject_all_auth = True`` makes handshake1
answer with a hash no credentials can match (and handshake2 then gets 403).

Fault modes (``fault=`` or the ``fault`` attribute, changed at any time), for a device that
misbehaves where the protocol leaves no room for it:
- ``None``: as described above.
- ``"short_handshake1"``: handshake1 answers 200 with a body one byte short of seed + hash (47).
- ``"reject_handshake2"``: handshake2 answers 403 even to the right client hash.
- ``"forbidden"``: /app/request answers 403 even within a live, confirmed session (the request
  is not executed).
- ``"tampered_reply"``: the reply to /app/request has the last byte of its ciphertext flipped
  (the request is executed).

Status codes: 400 malformed (seed length, seq not an integer, bad signature, seq not above the last
one used, undecryptable or non-JSON payload); 403 no / unknown / unconfirmed / expired session
(``expire_sessions()`` drops them all); ``/app`` (an AES handshake) JSON error 1003, as firmware
that moved from AES to KLAP answers it; 404 other paths.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

from ._http import HttpEmulator, HttpRequest, HttpResponse
from .crypto import (KlapCipher, KlapSignatureError, klap_auth_hash, klap_client_hash,
                     klap_server_hash)

FAULTS = (None, "short_handshake1", "reject_handshake2", "forbidden", "tampered_reply")

class KlapSession:
    def __init__(self, sid: str, local_seed: bytes, remote_seed: bytes, auth: bytes,
                 timeout: int):
        self.sid = sid
        self.local_seed = local_seed
        self.remote_seed = remote_seed
        self.auth = auth
        self.confirmed = False
        self.created = time.monotonic()
        self.expires = self.created + timeout
        self.cipher = KlapCipher(local_seed, remote_seed, auth)
        self.last_seq = self.cipher.initial_seq
        self.requests = 0


def _is_smart(device) -> bool:
    return getattr(device, "dialect", None) == "smart"


class KlapServer(HttpEmulator):
    def __init__(self, device, host: str = "127.0.0.2", port: int = 0, *,
                 version: int | None = None, username: str = "user@example.com",
                 password: str = "password", accepts: str = "user",
                 session_timeout: int = 86400, cookie_style: str = "single",
                 fault: str | None = None):
        super().__init__(host, port, device=device, username=username, password=password, accepts=accepts,
                         session_timeout=session_timeout)
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.fault = fault
        # Firmware that advertises TPAP answers KLAP only while the Tapo app's "Third-Party
        # Compatibility" is on; off, handshake1 gets 403 (go-tapo-exporter#5, a P304M on 1.4.0).
        self.third_party_compatibility = True
        self.version = version if version is not None else (2 if _is_smart(device) else 1)
        if self.version not in (1, 2):
            raise ValueError("KLAP version is 1 or 2")
        if cookie_style not in ("single", "separate"):
            raise ValueError("cookie_style is 'single' or 'separate'")
        self.cookie_style = cookie_style
        self.next_remote_seed: bytes | None = None  # fix the next handshake1's seed (tests)
        self.sessions: dict[str, KlapSession] = {}
        self._lock = threading.Lock()
        self.handshake1_count = 0
        self.handshake2_count = 0
        self.request_count = 0  # /app/request calls, answered or not
        self.rejected_count = 0  # non-200 answers of any kind

    # ---------------------------------------------------------------- controls

    def expire_sessions(self) -> None:
        """Forget every session: the next request gets HTTP 403."""
        with self._lock:
            self.sessions.clear()

    @property
    def stats(self) -> dict[str, int]:
        return {"handshake1": self.handshake1_count, "handshake2": self.handshake2_count,
                "requests": self.request_count, "rejected": self.rejected_count}

    @property
    def requests(self) -> list:
        """Decoded requests that reached the device, in order."""
        return [e["request"] for e in self.entries("request")]

    # ---------------------------------------------------------------- HTTP

    def _reject(self, status: int, path: str, reason: str) -> HttpResponse:
        self.rejected_count += 1
        self._record("rejected", path=path, status=status, reason=reason)
        return HttpResponse(status, b"")

    def _session_cookie(self, sid: str) -> list[tuple[str, str]]:
        if self.cookie_style == "single":
            return [("Set-Cookie", f"TP_SESSIONID={sid};TIMEOUT={self.session_timeout}")]
        return [("Set-Cookie", f"TP_SESSIONID={sid}"),
                ("Set-Cookie", f"TIMEOUT={self.session_timeout}")]

    def _find_session(self, req: HttpRequest) -> KlapSession | None:
        sid = req.cookies.get("TP_SESSIONID") or req.cookies.get("SESSIONID")
        with self._lock:
            sess = self.sessions.get(sid or "")
            if sess is not None and time.monotonic() > sess.expires:
                del self.sessions[sess.sid]
                return None
            return sess

    def _handle_http(self, req: HttpRequest) -> HttpResponse:
        if req.method != "POST":
            return self._reject(405, req.path, "not POST")
        if req.path == "/app/handshake1":
            return self._handshake1(req)
        if req.path == "/app/handshake2":
            return self._handshake2(req)
        if req.path == "/app/request":
            return self._request(req)
        if req.path == "/app":
            return self._aes_attempt(req)
        return self._reject(404, req.path, "unknown path")

    def _aes_attempt(self, req: HttpRequest) -> HttpResponse:
        """An AES client's handshake, from a client that knew this device before its firmware
        moved it to KLAP: real firmware answers error 1003 (python-kasa's SmartErrorCode,
        "seen after an encryption-changing fw upgrade")."""
        self._record("rejected", path=req.path, status=200, reason="AES handshake to a KLAP device: 1003")
        return HttpResponse(200, json.dumps({"error_code": 1003}).encode(), [("Content-Type", "application/json")])

    def _handshake1(self, req: HttpRequest) -> HttpResponse:
        self.handshake1_count += 1
        if not self.third_party_compatibility:
            return self._reject(403, req.path, "TPAP firmware, Third-Party Compatibility off")
        if len(req.body) != 16:
            return self._reject(400, req.path, f"local seed of {len(req.body)} bytes")
        local_seed = req.body
        remote_seed = self.next_remote_seed or os.urandom(16)
        self.next_remote_seed = None
        if self.reject_all_auth:
            auth = os.urandom(16 if self.version == 1 else 32)
        else:
            auth = klap_auth_hash(self.version, *self.credentials())
        sid = uuid.uuid4().hex.upper()
        with self._lock:
            self.sessions[sid] = KlapSession(sid, local_seed, remote_seed, auth,
                                             self.session_timeout)
        server_hash = klap_server_hash(self.version, local_seed, remote_seed, auth)
        self._record("handshake1", session=sid, local_seed=local_seed, remote_seed=remote_seed,
                     accepts=None if self.reject_all_auth else self.accepts)
        body = remote_seed + server_hash
        if self.fault == "short_handshake1":
            body = body[:-1]
        return HttpResponse(200, body, self._session_cookie(sid))

    def _handshake2(self, req: HttpRequest) -> HttpResponse:
        self.handshake2_count += 1
        sess = self._find_session(req)
        if sess is None:
            return self._reject(403, req.path, "no session")
        if self.fault == "reject_handshake2":
            return self._reject(403, req.path, "fault: reject_handshake2")
        expected = klap_client_hash(self.version, sess.local_seed, sess.remote_seed, sess.auth)
        if req.body != expected:
            with self._lock:
                self.sessions.pop(sess.sid, None)
            return self._reject(403, req.path, "client hash mismatch")
        sess.confirmed = True
        self._record("handshake2", session=sess.sid)
        return HttpResponse(200, b"")

    def _request(self, req: HttpRequest) -> HttpResponse:
        self.request_count += 1
        sess = self._find_session(req)
        if sess is None or not sess.confirmed:
            return self._reject(403, req.path, "no confirmed session")
        if self.fault == "forbidden":
            return self._reject(403, req.path, "fault: forbidden")
        try:
            seq = int(req.query["seq"])
        except (KeyError, ValueError):
            return self._reject(400, req.path, "seq missing or not an integer")
        if not -(2 ** 31) <= seq < 2 ** 31:
            return self._reject(400, req.path, "seq outside int32")
        try:
            plain = sess.cipher.open(seq, req.body)
        except KlapSignatureError as exc:
            return self._reject(400, req.path, f"signature: {exc}")
        except ValueError as exc:
            return self._reject(400, req.path, f"decrypt: {exc}")
        if seq <= sess.last_seq:
            return self._reject(400, req.path, f"seq {seq} not above {sess.last_seq}")
        try:
            request = json.loads(plain)
        except ValueError:
            return self._reject(400, req.path, "payload is not JSON")
        sess.last_seq = seq
        sess.requests += 1
        response = self.device.handle(request)
        self._record("request", session=sess.sid, seq=seq, request=request, response=response)
        body = sess.cipher.seal(seq, json.dumps(response, separators=(",", ":")).encode())
        if self.fault == "tampered_reply":
            body = body[:-1] + bytes([body[-1] ^ 1])
        return HttpResponse(200, body, [("Content-Type", "application/octet-stream")])
