"""Wire layer: device-side cryptography for the LAN emulators.

Written independently of ``tpcloud`` on purpose: the emulators must not share a misunderstanding
with the client they test.  Everything here is checked against tests/fixtures/protocol-vectors.json
in tests/test_emulators.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import zlib

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# --------------------------------------------------------------------------------------------
# Legacy Kasa autokey XOR (TCP and UDP 9999)
# --------------------------------------------------------------------------------------------

XOR_INITIAL_KEY = 171


def xor_encrypt(plain: bytes) -> bytes:
    """Autokey cipher: each ciphertext byte becomes the key for the next one."""
    key = XOR_INITIAL_KEY
    out = bytearray(len(plain))
    for i, p in enumerate(plain):
        key ^= p
        out[i] = key
    return bytes(out)


def xor_decrypt(cipher: bytes) -> bytes:
    key = XOR_INITIAL_KEY
    out = bytearray(len(cipher))
    for i, c in enumerate(cipher):
        out[i] = key ^ c
        key = c
    return bytes(out)


def xor_frame(plain: bytes) -> bytes:
    """TCP frame: 4-byte big-endian plaintext length, then the ciphertext."""
    return struct.pack(">I", len(plain)) + xor_encrypt(plain)


# --------------------------------------------------------------------------------------------
# AES-128-CBC with PKCS#7 (securePassthrough and KLAP payloads)
# --------------------------------------------------------------------------------------------


def aes_cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, cipher: bytes) -> bytes:
    """Raises ValueError on a bad length or bad padding."""
    if not cipher or len(cipher) % 16:
        raise ValueError("ciphertext is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(cipher) + dec.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


# --------------------------------------------------------------------------------------------
# Tapo securePassthrough
# --------------------------------------------------------------------------------------------


def rsa_encrypt_for_client(public_key_pem: str | bytes, data: bytes) -> bytes:
    """Encrypt ``data`` (the 32-byte key+IV) with the client's RSA public key, PKCS#1 v1.5."""
    if isinstance(public_key_pem, str):
        public_key_pem = public_key_pem.encode("ascii")
    key = serialization.load_pem_public_key(public_key_pem)
    return key.encrypt(data, asym_padding.PKCS1v15())  # type: ignore[union-attr]


def aes_login_username(email: str) -> str:
    return base64.b64encode(hashlib.sha1(email.encode()).hexdigest().encode()).decode()


def aes_login_password_v1(password: str) -> str:
    return base64.b64encode(password.encode()).decode()


def aes_login_password_v2(password: str) -> str:
    return base64.b64encode(hashlib.sha1(password.encode()).hexdigest().encode()).decode()


# --------------------------------------------------------------------------------------------
# KLAP
# --------------------------------------------------------------------------------------------


def klap_auth_hash(version: int, username: str, password: str) -> bytes:
    if version == 1:
        return hashlib.md5(
            hashlib.md5(username.encode()).digest() + hashlib.md5(password.encode()).digest()
        ).digest()
    if version == 2:
        return hashlib.sha256(
            hashlib.sha1(username.encode()).digest() + hashlib.sha1(password.encode()).digest()
        ).digest()
    raise ValueError(f"unknown KLAP version {version}")


def klap_server_hash(version: int, local_seed: bytes, remote_seed: bytes, auth: bytes) -> bytes:
    """What the device sends back in handshake1, after its remote_seed."""
    if version == 1:
        return hashlib.sha256(local_seed + auth).digest()
    return hashlib.sha256(local_seed + remote_seed + auth).digest()


def klap_client_hash(version: int, local_seed: bytes, remote_seed: bytes, auth: bytes) -> bytes:
    """What the device expects as the handshake2 body."""
    if version == 1:
        return hashlib.sha256(remote_seed + auth).digest()
    return hashlib.sha256(remote_seed + local_seed + auth).digest()


class KlapSignatureError(ValueError):
    pass


class KlapCipher:
    """The symmetric half of a KLAP session, seen from the device."""

    def __init__(self, local_seed: bytes, remote_seed: bytes, auth: bytes):
        material = local_seed + remote_seed + auth
        self.key = hashlib.sha256(b"lsk" + material).digest()[:16]
        iv_hash = hashlib.sha256(b"iv" + material).digest()
        self.iv_base = iv_hash[:12]
        self.initial_seq = struct.unpack(">i", iv_hash[28:32])[0]
        self.sig = hashlib.sha256(b"ldk" + material).digest()[:28]

    def iv_for(self, seq: int) -> bytes:
        return self.iv_base + struct.pack(">i", seq)

    def signature(self, seq: int, cipher: bytes) -> bytes:
        return hashlib.sha256(self.sig + struct.pack(">i", seq) + cipher).digest()

    def seal(self, seq: int, plain: bytes) -> bytes:
        """signature(32) + ciphertext: the body of a request or of the device's reply."""
        cipher = aes_cbc_encrypt(self.key, self.iv_for(seq), plain)
        return self.signature(seq, cipher) + cipher

    def open(self, seq: int, body: bytes) -> bytes:
        """Verify the signature of a request body and decrypt it."""
        if len(body) < 32 + 16:
            raise KlapSignatureError("body too short")
        sig, cipher = body[:32], body[32:]
        if not hmac.compare_digest(sig, self.signature(seq, cipher)):
            raise KlapSignatureError("signature mismatch")
        return aes_cbc_decrypt(self.key, self.iv_for(seq), cipher)


# --------------------------------------------------------------------------------------------
# UDP 20002 discovery header
# --------------------------------------------------------------------------------------------

DISCOVERY_CRC_SEED = 0x5A6B7C8D
DISCOVERY_HEADER_LEN = 16


def discovery_packet(payload: bytes, *, serial: bytes = b"\0\0\0\0", version: int = 2,
                     msg_type: int = 0, op_code: int = 1, flags: int = 0x11) -> bytes:
    """16-byte header + payload, with the CRC computed over the packet whose CRC field holds
    the fixed seed."""
    if len(serial) != 4:
        raise ValueError("serial must be 4 bytes")
    head = struct.pack(">BBHHBB", version, msg_type, op_code, len(payload), flags, 0) + serial
    packet = bytearray(head + struct.pack(">I", DISCOVERY_CRC_SEED) + payload)
    crc = zlib.crc32(bytes(packet)) & 0xFFFFFFFF
    packet[12:16] = struct.pack(">I", crc)
    return bytes(packet)


class DiscoveryHeaderError(ValueError):
    pass


def parse_discovery_packet(packet: bytes) -> tuple[dict, bytes]:
    """Check header fields and CRC; return (header fields, payload)."""
    if len(packet) < DISCOVERY_HEADER_LEN:
        raise DiscoveryHeaderError("shorter than the 16-byte header")
    version, msg_type, op_code, length, flags, zero = struct.unpack(">BBHHBB", packet[:8])
    serial = packet[8:12]
    (crc,) = struct.unpack(">I", packet[12:16])
    payload = packet[16:]
    if length != len(payload):
        raise DiscoveryHeaderError(f"length field {length} != payload {len(payload)}")
    check = bytearray(packet)
    check[12:16] = struct.pack(">I", DISCOVERY_CRC_SEED)
    if zlib.crc32(bytes(check)) & 0xFFFFFFFF != crc:
        raise DiscoveryHeaderError("bad CRC")
    header = {"version": version, "msg_type": msg_type, "op_code": op_code, "length": length,
              "flags": flags, "reserved": zero, "serial": serial, "crc": crc}
    return header, payload
