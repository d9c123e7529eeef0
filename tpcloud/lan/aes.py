"""Tapo AES "securePassthrough" wire (SMART dialect), used by Tapo firmware that predates KLAP.

An RSA-1024 handshake delivers an AES-128-CBC key and IV for the whole session; every request is
then wrapped as ``securePassthrough`` and, after ``login_device``, carries a token in the URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from tpcloud.dialects.smart import envelope, error_code
from tpcloud.errors import AuthError, DeviceError, HandshakeRefused, ProtocolError
from tpcloud.lan.http import DeviceHttp, Reply
from tpcloud.lan.transport import AUTH_HINT, HANDSHAKE_REFUSED, json_object, session_cookie

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

DEFAULT_ACCOUNT = ("test@tp-link.net", "test")
SESSION_EXPIRED_CODES = frozenset({9999, -40401})
# What firmware that changed its encryption answers the AES handshake (python-kasa's
# SmartErrorCode: "seen after an encryption-changing fw upgrade").
WIRE_CHANGED_CODE = 1003
# -1501 is the documented refusal; 1111 ("login failed") is the same answer from other firmware.
LOGIN_REFUSED_CODES = frozenset({-1501, 1111})
_JSON = "application/json"


class AesCipher:
    """AES-128-CBC with PKCS7 padding; the wire carries ciphertext as base64 text."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != 16 or len(iv) != 16:
            raise ValueError("AES-128 needs a 16-byte key and a 16-byte IV")
        self.key = key
        self.iv = iv

    def _cipher(self) -> Any:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    def encrypt(self, plain: bytes) -> str:
        from cryptography.hazmat.primitives import padding

        padder = padding.PKCS7(128).padder()
        encryptor = self._cipher().encryptor()
        data = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        return base64.b64encode(data).decode("ascii")

    def decrypt(self, data: str) -> bytes:
        """Decrypt a base64 ciphertext; anything malformed is a ProtocolError."""
        from cryptography.hazmat.primitives import padding

        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ProtocolError("AES reply is not valid base64") from None
        if not raw or len(raw) % 16:
            raise ProtocolError(f"AES reply has an impossible length ({len(raw)} bytes)")
        decryptor = self._cipher().decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            padded = decryptor.update(raw) + decryptor.finalize()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise ProtocolError("AES reply does not decrypt with the session key") from None


def new_rsa_key() -> RSAPrivateKey:
    """A fresh RSA-1024 (e=65537) key per handshake: the size the devices accept."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def public_key_pem(private_key: RSAPrivateKey) -> str:
    """SubjectPublicKeyInfo PEM with the base64 on one line, as the devices expect (not 64-column)."""
    from cryptography.hazmat.primitives import serialization

    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"-----BEGIN PUBLIC KEY-----\n{base64.b64encode(der).decode('ascii')}\n-----END PUBLIC KEY-----\n"


def decode_handshake_key(key_b64: str, private_key: RSAPrivateKey) -> tuple[bytes, bytes]:
    """Unwrap the handshake reply's ``result.key``: 32 bytes, AES key then IV."""
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        wrapped = base64.b64decode(key_b64, validate=True)
        secret = private_key.decrypt(wrapped, padding.PKCS1v15())
    except (binascii.Error, ValueError, TypeError):
        raise ProtocolError("AES handshake key does not decrypt with our RSA key") from None
    if len(secret) != 32:
        raise ProtocolError(f"AES handshake key is {len(secret)} bytes, expected 32")
    return secret[:16], secret[16:]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def login_params(username: str, password: str, version: int = 1) -> dict[str, str]:
    """``login_device`` params; login version 2 sends a SHA-1 of the password as ``password2``."""
    params = {"username": _b64(hashlib.sha1(username.encode()).hexdigest())}
    if version == 2:
        params["password2"] = _b64(hashlib.sha1(password.encode()).hexdigest())
    elif version == 1:
        params["password"] = _b64(password)
    else:
        raise ValueError(f"unknown AES login version {version}")
    return params


class _SessionExpired(DeviceError):
    """The device dropped our session (9999, -40401): worth one fresh handshake."""

    def __init__(self, code: int) -> None:
        super().__init__(f"device session expired (error {code})", code=code)


class AesTransport:
    """Carries SMART JSON to one Tapo device over securePassthrough, logging in as needed."""

    def __init__(
        self,
        host: str,
        port: int = 80,
        *,
        credentials: tuple[str, str] | None,
        login_version: int = 1,
        timeout: float,
    ) -> None:
        if login_version not in (1, 2):
            raise ValueError(f"unknown AES login version {login_version}")
        self.host = host
        self.port = port
        self.login_version = login_version
        self.timeout = timeout
        self.matched_default_account = False
        self._credentials = credentials
        self._http = DeviceHttp(host, port)
        self._cipher: AesCipher | None = None
        self._cookie: tuple[str, str] | None = None
        self._token: str | None = None
        self._expires_at = 0.0

    async def send(self, payload: bytes) -> bytes:
        """Send ``payload`` and return the inner JSON reply; re-handshake once if the session expired."""
        retried = False
        if self._token is None or time.time() >= self._expires_at:
            await self._establish()
            retried = True
        while True:
            try:
                return await self._passthrough(payload, self._token)
            except _SessionExpired as exc:
                if retried:
                    raise DeviceError(
                        f"{self.host} keeps reporting its session expired (error {exc.code})", code=exc.code
                    ) from None
                retried = True
                await self._establish()

    async def _post(self, body: bytes, token: str | None) -> dict[str, Any]:
        response = await self._http_post(body, token)
        if response.status != 200:
            raise ProtocolError(f"{self.host} answered HTTP {response.status} on /app")
        return json_object(response.body, f"reply from {self.host}")

    async def _http_post(self, body: bytes, token: str | None = None) -> Reply:
        """POST BODY to /app with the session's cookie (none before a handshake) and TOKEN."""
        params = {"token": token} if token else None
        return await self._http.post(
            "/app", body, timeout=self.timeout, cookie=self._cookie, params=params, content_type=_JSON
        )

    async def _passthrough(self, inner: bytes, token: str | None) -> bytes:
        assert self._cipher is not None
        body = {"method": "securePassthrough", "params": {"request": self._cipher.encrypt(inner)}}
        outer = await self._post(json.dumps(body).encode(), token)
        code = error_code(outer)
        if code in SESSION_EXPIRED_CODES:
            raise _SessionExpired(code)
        if code:
            raise DeviceError(f"{self.host} refused securePassthrough (error {code})", code=code)
        result = outer.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("response"), str):
            raise ProtocolError(f"securePassthrough reply from {self.host} has no response")
        reply = self._inner_reply(result["response"])
        code = error_code(json_object(reply, f"securePassthrough reply from {self.host}"))
        if code in SESSION_EXPIRED_CODES:
            raise _SessionExpired(code)
        return reply

    def _inner_reply(self, response: str) -> bytes:
        """The decrypted reply; some firmware answers in plain JSON instead, which is taken as it
        is (python-kasa aestransport.py: "Received unencrypted response over secure passthrough")."""
        assert self._cipher is not None
        try:
            return self._cipher.decrypt(response)
        except ProtocolError:
            plain = response.encode()
            try:
                json_object(plain, "")
            except ProtocolError:
                raise ProtocolError(f"securePassthrough reply from {self.host} does not decrypt with the session key") from None
            return plain

    async def _handshake(self) -> None:
        private_key = new_rsa_key()
        body = {"method": "handshake", "params": {"key": public_key_pem(private_key)}}
        self._cookie = None
        response = await self._http_post(json.dumps(body).encode())
        if response.status in HANDSHAKE_REFUSED:
            raise HandshakeRefused(f"{self.host} refused the AES handshake (HTTP {response.status})")
        if response.status != 200:
            raise ProtocolError(f"{self.host} answered the AES handshake with HTTP {response.status}")
        reply = json_object(response.body, f"handshake reply from {self.host}")
        code = error_code(reply)
        if code == WIRE_CHANGED_CODE:
            raise HandshakeRefused(f"{self.host} refused the AES handshake (error {code})")
        if code:
            raise DeviceError(f"{self.host} refused the AES handshake (error {code})", code=code)
        result = reply.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("key"), str):
            raise ProtocolError(f"handshake reply from {self.host} has no key")
        # Some firmware sets no cookie: then none is sent.
        cookie, expires_at = session_cookie(response.get_all("set-cookie"))
        self._cipher = AesCipher(*decode_handshake_key(result["key"], private_key))
        self._cookie = cookie
        self._expires_at = expires_at

    async def _establish(self) -> None:
        """Log in: the user's account first, the default account once on refusal, each after a
        handshake of its own (a device drops the session that a login failed in: python-kasa
        ``aestransport.py``, "After a login failure handshake needs to be redone or a 9999 error
        is received")."""
        self._token = None
        candidates = [(DEFAULT_ACCOUNT, True)]
        if self._credentials is not None and tuple(self._credentials) != DEFAULT_ACCOUNT:
            candidates.insert(0, (self._credentials, False))
        code = 0
        for (username, password), is_default in candidates:
            await self._handshake()
            login = _compact(envelope({"method": "login_device", "params": login_params(username, password, self.login_version)}))
            try:
                reply = json_object(await self._passthrough(login, None), f"login reply from {self.host}")
                code = error_code(reply)
            except DeviceError as exc:
                if exc.code not in LOGIN_REFUSED_CODES:
                    raise
                code = exc.code
            if code == 0:
                result = reply.get("result")
                token = result.get("token") if isinstance(result, dict) else None
                if not isinstance(token, str) or not token:
                    raise ProtocolError(f"login reply from {self.host} has no token")
                self._token = token
                self.matched_default_account = is_default
                return
            if code not in LOGIN_REFUSED_CODES:
                raise DeviceError(f"{self.host} failed login_device (error {code})", code=code)
        raise AuthError(f"{self.host} refused the credentials (error {code})", hint=AUTH_HINT)

    def export_session(self) -> dict[str, Any] | None:
        """The logged-in session as plain data, so a later command can skip handshake and login."""
        if self._cipher is None or self._token is None:
            return None
        if time.time() >= self._expires_at:
            return None
        return {
            "wire": "aes",
            "host": self.host,
            "port": self.port,
            "login_version": self.login_version,
            "key": self._cipher.key.hex(),
            "iv": self._cipher.iv.hex(),
            "cookie": list(self._cookie) if self._cookie else None,
            "token": self._token,
            "expires_at": int(self._expires_at),
            "matched_default_account": self.matched_default_account,
        }

    def restore_session(self, state: dict[str, Any]) -> bool:
        """Adopt a session from :meth:`export_session`; False (and no change) if unusable or stale."""
        try:
            if (state["wire"], state["host"], state["port"], state["login_version"]) != (
                "aes", self.host, self.port, self.login_version
            ):
                return False
            cipher = AesCipher(bytes.fromhex(state["key"]), bytes.fromhex(state["iv"]))
            cookie = (str(state["cookie"][0]), str(state["cookie"][1])) if state["cookie"] else None
            token = state["token"]
            expires_at = float(state["expires_at"])
            is_default = bool(state["matched_default_account"])
        except (KeyError, TypeError, ValueError):
            return False
        if not isinstance(token, str) or not token or time.time() >= expires_at:
            return False
        self._cipher, self._cookie, self._token = cipher, cookie, token
        self._expires_at = expires_at
        self.matched_default_account = is_default
        return True

    async def close(self) -> None:
        """Forget the session and close the connection."""
        self._cipher = self._token = None
        await self._http.close()


def _compact(request: dict[str, Any]) -> bytes:
    return json.dumps(request, separators=(",", ":")).encode()
