"""KLAP wire: seed handshake over HTTP, then AES-128-CBC requests with a running sequence number.

v1 serves newer Kasa firmware, v2 serves Tapo. The sans-io half (hashes, :class:`KlapSession`)
reproduces the recorded vectors without sockets; :class:`KlapTransport` adds the HTTP exchanges.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

from tpcloud.errors import AuthError, HandshakeRefused, ProtocolError
from tpcloud.lan.http import DeviceHttp, Reply
from tpcloud.lan.transport import AUTH_HINT, HANDSHAKE_REFUSED, json_object, session_cookie

DEFAULT_ACCOUNTS = (("kasa@tp-link.net", "kasaSetup"), ("test@tp-link.net", "test"), ("", ""))
# How a device refuses a session it no longer holds (403), or a sequence number it has already
# seen (400): a session saved by an earlier command that another command has since advanced.
_STALE_SESSION = (400, 403)
_SEED_LEN = 16
_SIG_LEN = 32
_BLOCK = 16


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def auth_hash(username: str, password: str, version: int) -> bytes:
    """The credential digest both sides prove knowledge of; raw digests are concatenated."""
    user, secret = username.encode(), password.encode()
    if version == 1:
        return hashlib.md5(hashlib.md5(user).digest() + hashlib.md5(secret).digest()).digest()
    if version == 2:
        return _sha256(hashlib.sha1(user).digest() + hashlib.sha1(secret).digest())
    raise ValueError(f"unknown KLAP version {version}")


def server_hash(local_seed: bytes, remote_seed: bytes, auth: bytes, version: int) -> bytes:
    """What handshake1 returns after the remote seed, if the device holds the same credentials."""
    return _sha256(local_seed + auth if version == 1 else local_seed + remote_seed + auth)


def client_hash(local_seed: bytes, remote_seed: bytes, auth: bytes, version: int) -> bytes:
    """What handshake2 sends to prove the client holds the credentials too."""
    return _sha256(remote_seed + auth if version == 1 else remote_seed + local_seed + auth)


def _wrap_int32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


class KlapSession:
    """Key, IV base, signing key and sequence number derived from one handshake."""

    def __init__(self, local_seed: bytes, remote_seed: bytes, auth: bytes) -> None:
        material = local_seed + remote_seed + auth
        self.key = _sha256(b"lsk" + material)[:16]
        iv_hash = _sha256(b"iv" + material)
        self.iv_base = iv_hash[:12]
        self.seq = int.from_bytes(iv_hash[-4:], "big", signed=True)
        self.sig = _sha256(b"ldk" + material)[:28]

    def _cipher(self, seq: int) -> Any:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        iv = self.iv_base + seq.to_bytes(4, "big", signed=True)
        return Cipher(algorithms.AES(self.key), modes.CBC(iv))

    def _signature(self, seq: int, ciphertext: bytes) -> bytes:
        return _sha256(self.sig + seq.to_bytes(4, "big", signed=True) + ciphertext)

    def encrypt(self, plain: bytes) -> tuple[int, bytes]:
        """Advance the sequence and return it with the signed ciphertext for ``?seq=``."""
        from cryptography.hazmat.primitives import padding

        self.seq = _wrap_int32(self.seq + 1)
        padder = padding.PKCS7(128).padder()
        encryptor = self._cipher(self.seq).encryptor()
        ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        return self.seq, self._signature(self.seq, ciphertext) + ciphertext

    def decrypt(self, seq: int, body: bytes) -> bytes:
        """Decrypt a reply encrypted under ``seq``.

        The reply's 32-byte signature is skipped, not checked, as the widely used public clients
        do: no source confirms that every firmware signs replies the way it signs requests, and
        a check that real devices fail would break every KLAP device. A wrong key or a damaged
        reply still fails here (padding) or in the JSON parser.
        """
        from cryptography.hazmat.primitives import padding

        ciphertext = body[_SIG_LEN:]
        if len(body) < _SIG_LEN + _BLOCK or len(ciphertext) % _BLOCK:
            raise ProtocolError(f"KLAP reply has an impossible length ({len(body)} bytes)")
        decryptor = self._cipher(seq).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            padded = decryptor.update(ciphertext) + decryptor.finalize()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise ProtocolError("KLAP reply has bad padding") from None

    def export(self) -> dict[str, Any]:
        """Key material as hex and ints, for a secret store."""
        return {"key": self.key.hex(), "iv_base": self.iv_base.hex(), "sig": self.sig.hex(), "seq": self.seq}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> KlapSession:
        """Rebuild a session from :meth:`export`; malformed state raises ValueError/KeyError/TypeError."""
        session = cls.__new__(cls)
        session.key = bytes.fromhex(state["key"])
        session.iv_base = bytes.fromhex(state["iv_base"])
        session.sig = bytes.fromhex(state["sig"])
        session.seq = int(state["seq"])
        if (len(session.key), len(session.iv_base), len(session.sig)) != (16, 12, 28):
            raise ValueError("KLAP session state has wrong key sizes")
        if session.seq != _wrap_int32(session.seq):
            raise ValueError("KLAP session sequence is out of range")
        return session


class KlapTransport:
    """Carries SMART/IOT JSON to one KLAP device, handshaking when the session is missing or stale."""

    def __init__(
        self,
        host: str,
        port: int = 80,
        *,
        credentials: tuple[str, str] | None,
        version: int,
        timeout: float,
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"unknown KLAP version {version}")
        self.host = host
        self.port = port
        self.version = version
        self.timeout = timeout
        self.matched_default_account = False
        self._credentials = credentials
        self._http = DeviceHttp(host, port)
        self._session: KlapSession | None = None
        self._cookie: tuple[str, str] | None = None
        self._expires_at = 0.0

    async def send(self, payload: bytes) -> bytes:
        """Send ``payload`` and return the device's JSON reply, re-handshaking once if the session died."""
        fresh = self._session is None or time.time() >= self._expires_at
        if fresh:
            await self._handshake()
        status, reply = await self._send(payload)
        if status in _STALE_SESSION and not fresh:
            await self._handshake()
            fresh = True
            status, reply = await self._send(payload)
        if status == 403:
            self._session = None
            raise AuthError(f"{self.host} refused the KLAP session (HTTP 403)", hint=AUTH_HINT)
        if status != 200:
            raise ProtocolError(f"{self.host} answered a KLAP request with HTTP {status}")
        json_object(reply, f"KLAP reply from {self.host}")
        return reply

    async def _send(self, payload: bytes) -> tuple[int, bytes]:
        """The HTTP status and the decrypted reply (empty unless the status is 200)."""
        assert self._session is not None
        seq, body = self._session.encrypt(payload)
        response = await self._post("request", body, cookie=self._cookie, params={"seq": str(seq)})
        if response.status != 200:
            return response.status, b""
        return response.status, self._session.decrypt(seq, response.body)

    async def _post(
        self, step: str, body: bytes, *, cookie: tuple[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        return await self._http.post(f"/app/{step}", body, timeout=self.timeout, cookie=cookie, params=params)

    async def _handshake(self) -> None:
        self._session = None
        local_seed = os.urandom(_SEED_LEN)
        response = await self._post("handshake1", local_seed)
        if response.status in HANDSHAKE_REFUSED:
            raise HandshakeRefused(f"{self.host} refused the KLAP handshake (HTTP {response.status})")
        if response.status != 200:
            raise ProtocolError(f"{self.host} answered KLAP handshake1 with HTTP {response.status}")
        reply = response.body
        if len(reply) != _SEED_LEN + 32:
            raise ProtocolError(f"KLAP handshake1 reply is {len(reply)} bytes, expected 48")
        remote_seed, expected = reply[:_SEED_LEN], reply[_SEED_LEN:]
        cookie, expires_at = session_cookie(response.get_all("set-cookie"))

        auth, is_default = self._match_credentials(local_seed, remote_seed, expected)
        response = await self._post("handshake2", client_hash(local_seed, remote_seed, auth, self.version), cookie=cookie)
        if response.status != 200:
            raise AuthError(f"{self.host} refused KLAP handshake2 (HTTP {response.status})", hint=AUTH_HINT)
        self._session = KlapSession(local_seed, remote_seed, auth)
        self._cookie = cookie
        self._expires_at = expires_at
        self.matched_default_account = is_default

    def _match_credentials(self, local_seed: bytes, remote_seed: bytes, expected: bytes) -> tuple[bytes, bool]:
        """Find which account the device hashed with: the user's first, then the factory defaults."""
        candidates = [(c, True) for c in DEFAULT_ACCOUNTS]
        if self._credentials is not None:
            candidates.insert(0, (self._credentials, False))
        for (username, password), is_default in candidates:
            auth = auth_hash(username, password, self.version)
            if hmac.compare_digest(server_hash(local_seed, remote_seed, auth, self.version), expected):
                return auth, is_default
        raise AuthError(f"{self.host} refused the credentials (KLAP v{self.version})", hint=AUTH_HINT)

    def export_session(self) -> dict[str, Any] | None:
        """The live session as plain data, so a later command can skip the handshake."""
        if self._session is None or time.time() >= self._expires_at:
            return None
        return {
            "wire": "klap",
            "host": self.host,
            "port": self.port,
            "version": self.version,
            "cookie": list(self._cookie) if self._cookie else None,
            "expires_at": int(self._expires_at),
            "matched_default_account": self.matched_default_account,
            **self._session.export(),
        }

    def restore_session(self, state: dict[str, Any]) -> bool:
        """Adopt a session from :meth:`export_session`; False (and no change) if unusable or stale."""
        try:
            if (state["wire"], state["host"], state["port"], state["version"]) != (
                "klap", self.host, self.port, self.version
            ):
                return False
            session = KlapSession.restore(state)
            cookie = (str(state["cookie"][0]), str(state["cookie"][1])) if state["cookie"] else None
            expires_at = float(state["expires_at"])
            is_default = bool(state["matched_default_account"])
        except (KeyError, TypeError, ValueError):
            return False
        if time.time() >= expires_at:
            return False
        self._session, self._cookie, self._expires_at = session, cookie, expires_at
        self.matched_default_account = is_default
        return True

    async def close(self) -> None:
        """Forget the session and close the connection."""
        self._session = None
        await self._http.close()

