"""LAN wire codecs, sans I/O, against the independent vectors (tests/fixtures/protocol-vectors.json).

The transports, over sockets, are in tests/test_lan_transports.py, against the device emulators.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from tests.conftest import protocol_vectors
from tpcloud.errors import DeviceError, ProtocolError
from tpcloud.dialects import smart
from tpcloud.lan import aes, klap, xor
from tpcloud.lan.links import new_terminal_uuid

VECTORS = protocol_vectors()


# --- XOR codec -------------------------------------------------------------------------------


def test_xor_tcp_frame_vector_both_ways():
    vec = VECTORS["xor_tcp"]
    framed = base64.b64decode(vec["frame_base64"])
    assert xor.frame(vec["plaintext"].encode()) == framed
    assert xor.unframe(framed) == vec["plaintext"].encode()


def test_xor_udp_datagram_vector_both_ways():
    vec = VECTORS["xor_udp"]
    datagram = base64.b64decode(vec["datagram_base64"])
    assert xor.discovery_datagram() == datagram
    assert xor.encrypt(vec["plaintext"].encode()) == datagram
    assert xor.parse_datagram(datagram) == json.loads(vec["plaintext"])


def test_xor_round_trip_all_byte_values():
    data = bytes(range(256)) * 3
    assert xor.decrypt(xor.encrypt(data)) == data
    assert xor.encrypt(b"") == xor.decrypt(b"") == b""


def test_xor_absurd_length_refused_before_reading():
    with pytest.raises(ProtocolError, match="limit"):
        xor.frame_length(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError):
        xor.unframe(b"\x7f\x00\x00\x00" + b"x")
    assert xor.frame_length((xor.MAX_FRAME).to_bytes(4, "big")) == xor.MAX_FRAME


def test_xor_truncated_frame():
    framed = xor.frame(b'{"system":{}}')
    with pytest.raises(ProtocolError):
        xor.unframe(framed[:-1])
    with pytest.raises(ProtocolError):
        xor.unframe(framed[:3])


def test_xor_datagram_garbage():
    with pytest.raises(ProtocolError):
        xor.parse_datagram(b"\x00\x01\x02")
    with pytest.raises(ProtocolError):
        xor.parse_datagram(xor.encrypt(b"[1, 2]"))


# --- KLAP codec --------------------------------------------------------------------------------


def _klap_inputs(version):
    vec = VECTORS[f"klap_v{version}"]
    return vec, bytes.fromhex(vec["local_seed_hex"]), bytes.fromhex(vec["remote_seed_hex"])


@pytest.mark.parametrize("version", [1, 2])
def test_klap_vectors(version):
    vec, local_seed, remote_seed = _klap_inputs(version)
    auth = klap.auth_hash(vec["username"], vec["password"], version)
    assert auth.hex() == vec["auth_hash_hex"]
    assert klap.server_hash(local_seed, remote_seed, auth, version).hex() == vec["handshake1_server_hash_hex"]
    assert klap.client_hash(local_seed, remote_seed, auth, version).hex() == vec["handshake2_client_hash_hex"]

    session = klap.KlapSession(local_seed, remote_seed, auth)
    assert session.key.hex() == vec["session_key_hex"]
    assert session.iv_base.hex() == vec["session_iv12_hex"]
    assert session.seq == vec["session_initial_seq"]
    assert session.sig.hex() == vec["session_sig28_hex"]

    seq, body = session.encrypt(vec["first_request_plaintext"].encode())
    assert seq == vec["first_request_seq"]
    assert body.hex() == vec["first_request_body_hex"]
    assert session.decrypt(seq, body) == vec["first_request_plaintext"].encode()


def _v2_session():
    vec, local_seed, remote_seed = _klap_inputs(2)
    return klap.KlapSession(local_seed, remote_seed, bytes.fromhex(vec["auth_hash_hex"]))


def test_klap_reply_signature_is_skipped_but_damage_is_caught_and_lengths_checked():
    session = _v2_session()
    plain = b'{"method":"get_device_info"}'
    seq, body = session.encrypt(plain)
    assert session.decrypt(seq, bytes([body[0] ^ 1]) + body[1:]) == plain
    tampered_ct = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(ProtocolError, match="padding"):
        session.decrypt(seq, tampered_ct)
    for bad in (b"", body[:32], body[:-3]):
        with pytest.raises(ProtocolError, match="length"):
            session.decrypt(seq, bad)


def test_klap_bad_padding_under_valid_signature():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    session = _v2_session()
    seq = session.seq + 1
    iv = session.iv_base + seq.to_bytes(4, "big", signed=True)
    encryptor = Cipher(algorithms.AES(session.key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(b"\x00" * 16) + encryptor.finalize()  # decrypts to padding byte 0
    body = hashlib.sha256(session.sig + seq.to_bytes(4, "big", signed=True) + ciphertext).digest() + ciphertext
    with pytest.raises(ProtocolError, match="padding"):
        session.decrypt(seq, body)


def test_klap_seq_wraps_as_int32_and_state_round_trips():
    session = _v2_session()
    session.seq = 2**31 - 1
    seq, body = session.encrypt(b"{}")
    assert seq == -(2**31)
    copy = klap.KlapSession.restore(json.loads(json.dumps(session.export())))
    assert copy.decrypt(seq, body) == b"{}"
    with pytest.raises(ValueError):
        klap.KlapSession.restore({**session.export(), "key": "00"})


# --- AES codec ---------------------------------------------------------------------------------


def test_aes_vector_both_ways():
    vec = VECTORS["aes_securepassthrough"]
    cipher = aes.AesCipher(bytes.fromhex(vec["key_hex"]), bytes.fromhex(vec["iv_hex"]))
    assert cipher.encrypt(vec["plaintext"].encode()) == vec["ciphertext_base64"]
    assert cipher.decrypt(vec["ciphertext_base64"]) == vec["plaintext"].encode()
    inner = json.loads(vec["plaintext"])
    assert aes.login_params("user@example.com", "hunter2-Secret!") == inner["params"]


def test_aes_garbage():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    vec = VECTORS["aes_securepassthrough"]
    key, iv = bytes.fromhex(vec["key_hex"]), bytes.fromhex(vec["iv_hex"])
    cipher = aes.AesCipher(key, iv)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    bad_padding = base64.b64encode(encryptor.update(b"\x00" * 16) + encryptor.finalize()).decode()
    for garbage in ("not base64!", "", base64.b64encode(b"x" * 15).decode(), bad_padding):
        with pytest.raises(ProtocolError):
            cipher.decrypt(garbage)


def test_aes_login_v2_and_smart_envelope():
    params = aes.login_params("user@example.com", "hunter2-Secret!", 2)
    assert "password" not in params
    assert base64.b64decode(params["password2"]).decode() == hashlib.sha1(b"hunter2-Secret!").hexdigest()
    request = smart.envelope({"method": "get_device_info"}, "abc")
    assert request["method"] == "get_device_info" and request["terminal_uuid"] == "abc"
    assert abs(request["request_time_milis"] - time.time() * 1000) < 60_000
    assert "params" not in request
    assert "terminal_uuid" not in smart.envelope({"method": "login_device"})
    assert len(base64.b64decode(new_terminal_uuid())) == 16
    assert smart.check({"error_code": 0, "result": {"a": 1}}) == {"a": 1}
    with pytest.raises(DeviceError) as caught:
        smart.check({"error_code": -1008})
    assert caught.value.code == -1008
    with pytest.raises(ProtocolError):
        smart.check({"error_code": "x"})


def test_aes_rsa_pem_and_handshake_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    private_key = aes.new_rsa_key()
    pem = aes.public_key_pem(private_key)
    lines = pem.split("\n")
    assert lines[0] == "-----BEGIN PUBLIC KEY-----" and lines[2] == "-----END PUBLIC KEY-----"
    assert len(lines) == 4 and lines[3] == ""
    public = serialization.load_pem_public_key(pem.encode())
    assert public.key_size == 1024 and public.public_numbers().e == 65537
    secret = bytes(range(32))
    wrapped = base64.b64encode(public.encrypt(secret, padding.PKCS1v15())).decode()
    assert aes.decode_handshake_key(wrapped, private_key) == (secret[:16], secret[16:])
    for garbage in ("!!", base64.b64encode(b"x" * 128).decode()):
        with pytest.raises(ProtocolError):
            aes.decode_handshake_key(garbage, private_key)
    short = base64.b64encode(public.encrypt(b"x" * 16, padding.PKCS1v15())).decode()
    with pytest.raises(ProtocolError, match="32"):
        aes.decode_handshake_key(short, private_key)
