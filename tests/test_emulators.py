"""The device emulators: their crypto against protocol-vectors.json, then each one over its socket.

Client code here is deliberately minimal and written in this file (not tpcloud's).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import zlib

import httpx
import pytest
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.conftest import protocol_vectors
from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import (AesServer, DiscoveryResponder, KlapServer, XorServer,
                                 crypto, pick_loopback_host)


@pytest.fixture(scope="module")
def vec() -> dict:
    return protocol_vectors()


@pytest.fixture
def host() -> str:
    return pick_loopback_host()


_clients: list[httpx.Client] = []


def new_http() -> httpx.Client:
    c = httpx.Client(timeout=10)
    _clients.append(c)
    return c


@pytest.fixture(autouse=True)
def _close_http_clients():
    yield
    while _clients:
        _clients.pop().close()


# ------------------------------------------------------------------ tiny client helpers

def c_xor_enc(b: bytes) -> bytes:
    k, out = 171, bytearray()
    for x in b:
        k ^= x
        out.append(k)
    return bytes(out)


def c_xor_dec(b: bytes) -> bytes:
    k, out = 171, bytearray()
    for x in b:
        out.append(k ^ x)
        k = x
    return bytes(out)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def xor_call(s: socket.socket, req: dict) -> dict:
    data = json.dumps(req).encode()
    s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    assert n < 100_000
    return json.loads(c_xor_dec(recv_exact(s, n)))


def aes_enc(key, iv, data):
    p = sym_padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(p.update(data) + p.finalize()) + e.finalize()


def aes_dec(key, iv, data):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    u = sym_padding.PKCS7(128).unpadder()
    return u.update(d.update(data) + d.finalize()) + u.finalize()


def session_cookie(resp: httpx.Response) -> str:
    raw = resp.headers["set-cookie"]
    first = raw.split(";")[0]
    assert first.startswith("TP_SESSIONID=")
    assert "TIMEOUT=86400" in raw
    return first


class KlapClient:
    """Just enough KLAP for the tests (v1 or v2)."""

    def __init__(self, url: str, user: str, password: str, version: int = 2):
        self.url, self.version = url, version
        if version == 2:
            self.auth = hashlib.sha256(hashlib.sha1(user.encode()).digest()
                                       + hashlib.sha1(password.encode()).digest()).digest()
        else:
            self.auth = hashlib.md5(hashlib.md5(user.encode()).digest()
                                    + hashlib.md5(password.encode()).digest()).digest()
        self.http = new_http()

    def handshake(self, local_seed: bytes | None = None) -> bool:
        ls = local_seed or os.urandom(16)
        r = self.http.post(self.url + "/app/handshake1", content=ls)
        assert r.status_code == 200 and len(r.content) == 48
        self.cookie = session_cookie(r)
        rs, server_hash = r.content[:16], r.content[16:]
        if self.version == 2:
            expect = hashlib.sha256(ls + rs + self.auth).digest()
            client_hash = hashlib.sha256(rs + ls + self.auth).digest()
        else:
            expect = hashlib.sha256(ls + self.auth).digest()
            client_hash = hashlib.sha256(rs + self.auth).digest()
        if server_hash != expect:
            return False
        r = self.http.post(self.url + "/app/handshake2", content=client_hash,
                           headers={"Cookie": self.cookie})
        assert r.status_code == 200
        m = ls + rs + self.auth
        self.key = hashlib.sha256(b"lsk" + m).digest()[:16]
        h = hashlib.sha256(b"iv" + m).digest()
        self.iv12, self.seq = h[:12], struct.unpack(">i", h[28:32])[0]
        self.sig = hashlib.sha256(b"ldk" + m).digest()[:28]
        return True

    def raw(self, payload: bytes, seq: int | None = None) -> httpx.Response:
        if seq is None:
            self.seq += 1
            seq = self.seq
        iv = self.iv12 + struct.pack(">i", seq)
        ct = aes_enc(self.key, iv, payload)
        body = hashlib.sha256(self.sig + struct.pack(">i", seq) + ct).digest() + ct
        self._last_iv = iv
        return self.http.post(self.url + "/app/request", params={"seq": seq}, content=body,
                              headers={"Cookie": self.cookie})

    def call(self, req: dict) -> dict:
        r = self.raw(json.dumps(req).encode())
        assert r.status_code == 200, r.status_code
        ct = r.content[32:]
        assert r.content[:32] == hashlib.sha256(
            self.sig + struct.pack(">i", self.seq) + ct).digest()
        return json.loads(aes_dec(self.key, self._last_iv, ct))


class AesClient:
    def __init__(self, url: str):
        self.url = url
        self.http = new_http()
        self.token = None

    def handshake(self, key_bits: int = 1024) -> None:
        priv = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
        pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        r = self.http.post(self.url + "/app", json={"method": "handshake",
                                                    "params": {"key": pem.decode()}})
        assert r.status_code == 200 and r.json()["error_code"] == 0
        self.cookie = session_cookie(r)
        kv = priv.decrypt(base64.b64decode(r.json()["result"]["key"]), asym_padding.PKCS1v15())
        assert len(kv) == 32
        self.key, self.iv = kv[:16], kv[16:]

    def outer(self, inner: dict, cipher_b64: str | None = None) -> dict:
        if cipher_b64 is None:
            cipher_b64 = base64.b64encode(aes_enc(self.key, self.iv,
                                                  json.dumps(inner).encode())).decode()
        url = self.url + "/app" + (f"?token={self.token}" if self.token else "")
        r = self.http.post(url, json={"method": "securePassthrough",
                                      "params": {"request": cipher_b64}},
                           headers={"Cookie": self.cookie})
        assert r.status_code == 200
        return r.json()

    def call(self, inner: dict, cipher_b64: str | None = None) -> dict:
        out = self.outer(inner, cipher_b64)
        assert out["error_code"] == 0, out
        return json.loads(aes_dec(self.key, self.iv,
                                  base64.b64decode(out["result"]["response"])))

    def login(self, email: str, password: str, version: int = 2) -> dict:
        params = {"username": base64.b64encode(
            hashlib.sha1(email.encode()).hexdigest().encode()).decode()}
        if version == 2:
            params["password2"] = base64.b64encode(
                hashlib.sha1(password.encode()).hexdigest().encode()).decode()
        else:
            params["password"] = base64.b64encode(password.encode()).decode()
        reply = self.call({"method": "login_device", "params": params})
        if reply["error_code"] == 0:
            self.token = reply["result"]["token"]
        return reply


def probe_20002(payload: dict, serial: bytes = b"\x01\x02\x03\x04", bad_crc=False) -> bytes:
    body = json.dumps(payload).encode()
    head = struct.pack(">BBHHBB", 2, 0, 1, len(body), 0x11, 0) + serial
    pkt = bytearray(head + struct.pack(">I", 0x5A6B7C8D) + body)
    crc = zlib.crc32(bytes(pkt)) & 0xFFFFFFFF
    pkt[12:16] = struct.pack(">I", crc ^ (1 if bad_crc else 0))
    return bytes(pkt)


# ================================================================== crypto vs vectors

def test_xor_vectors(vec):
    t = vec["xor_tcp"]
    frame = base64.b64decode(t["frame_base64"])
    assert crypto.xor_frame(t["plaintext"].encode()) == frame
    assert struct.unpack(">I", frame[:4])[0] == len(t["plaintext"])
    assert crypto.xor_decrypt(frame[4:]) == t["plaintext"].encode()
    u = vec["xor_udp"]
    dgram = base64.b64decode(u["datagram_base64"])
    assert crypto.xor_encrypt(u["plaintext"].encode()) == dgram
    assert crypto.xor_decrypt(dgram) == u["plaintext"].encode()


@pytest.mark.parametrize("version", [1, 2])
def test_klap_vectors(vec, version):
    v = vec[f"klap_v{version}"]
    ls, rs = bytes.fromhex(v["local_seed_hex"]), bytes.fromhex(v["remote_seed_hex"])
    auth = crypto.klap_auth_hash(version, v["username"], v["password"])
    assert auth.hex() == v["auth_hash_hex"]
    assert crypto.klap_server_hash(version, ls, rs, auth).hex() == v["handshake1_server_hash_hex"]
    assert crypto.klap_client_hash(version, ls, rs, auth).hex() == v["handshake2_client_hash_hex"]
    c = crypto.KlapCipher(ls, rs, auth)
    assert c.key.hex() == v["session_key_hex"]
    assert c.iv_base.hex() == v["session_iv12_hex"]
    assert c.initial_seq == v["session_initial_seq"]
    assert c.sig.hex() == v["session_sig28_hex"]
    assert v["first_request_seq"] == c.initial_seq + 1
    body = bytes.fromhex(v["first_request_body_hex"])
    assert c.open(v["first_request_seq"], body) == v["first_request_plaintext"].encode()
    assert c.seal(v["first_request_seq"], v["first_request_plaintext"].encode()) == body
    with pytest.raises(crypto.KlapSignatureError):
        c.open(v["first_request_seq"] + 1, body)
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(crypto.KlapSignatureError):
        c.open(v["first_request_seq"], tampered)


def test_aes_vector(vec):
    a = vec["aes_securepassthrough"]
    key, iv = bytes.fromhex(a["key_hex"]), bytes.fromhex(a["iv_hex"])
    ct = base64.b64decode(a["ciphertext_base64"])
    assert crypto.aes_cbc_encrypt(key, iv, a["plaintext"].encode()) == ct
    assert crypto.aes_cbc_decrypt(key, iv, ct) == a["plaintext"].encode()
    params = json.loads(a["plaintext"])["params"]
    assert params["username"] == crypto.aes_login_username(vec["klap_v1"]["username"])
    assert params["password"] == crypto.aes_login_password_v1(vec["klap_v1"]["password"])


def test_discovery_header_crc():
    pkt = crypto.discovery_packet(b'{"a":1}', serial=b"\xde\xad\xbe\xef")
    assert pkt[:4] == b"\x02\x00\x00\x01" and pkt[4:6] == b"\x00\x07" and pkt[6:8] == b"\x11\x00"
    probe = {"params": {"rsa_key": "k"}}
    assert crypto.discovery_packet(json.dumps(probe).encode(), serial=b"\x01\x02\x03\x04") \
        == probe_20002(probe)  # the emulator's header == the test's independently built one
    header, payload = crypto.parse_discovery_packet(pkt)
    assert payload == b'{"a":1}' and header["serial"] == b"\xde\xad\xbe\xef"
    client = probe_20002({"params": {"rsa_key": "x"}})
    crypto.parse_discovery_packet(client)  # independently built probe verifies
    with pytest.raises(crypto.DiscoveryHeaderError):
        crypto.parse_discovery_packet(probe_20002({"a": 1}, bad_crc=True))


# ================================================================== KLAP / AES servers vs vectors

@pytest.mark.parametrize("version", [1, 2])
def test_klap_server_reproduces_vectors(vec, host, version):
    v = vec[f"klap_v{version}"]
    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    with KlapServer(dev, host, version=version, username=v["username"],
                    password=v["password"]) as srv:
        srv.next_remote_seed = bytes.fromhex(v["remote_seed_hex"])
        http = new_http()
        r = http.post(srv.url + "/app/handshake1", content=bytes.fromhex(v["local_seed_hex"]))
        assert r.status_code == 200
        assert r.content.hex() == v["remote_seed_hex"] + v["handshake1_server_hash_hex"]
        cookie = session_cookie(r)
        r = http.post(srv.url + "/app/handshake2",
                      content=bytes.fromhex(v["handshake2_client_hash_hex"]),
                      headers={"Cookie": cookie})
        assert r.status_code == 200
        r = http.post(srv.url + "/app/request", params={"seq": v["first_request_seq"]},
                      content=bytes.fromhex(v["first_request_body_hex"]),
                      headers={"Cookie": cookie})
        assert r.status_code == 200
        assert srv.requests == [json.loads(v["first_request_plaintext"])]
        c = crypto.KlapCipher(bytes.fromhex(v["local_seed_hex"]),
                              bytes.fromhex(v["remote_seed_hex"]),
                              bytes.fromhex(v["auth_hash_hex"]))
        reply = json.loads(c.open(v["first_request_seq"], r.content))
        assert reply["result"]["device_id"] == dev.device_id
        # the same body again: seq not above the last one -> rejected
        r = http.post(srv.url + "/app/request", params={"seq": v["first_request_seq"]},
                      content=bytes.fromhex(v["first_request_body_hex"]),
                      headers={"Cookie": cookie})
        assert r.status_code == 400


def test_aes_server_decrypts_vector_login(vec, host):
    a = vec["aes_securepassthrough"]
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    with AesServer(dev, host, username=vec["klap_v1"]["username"],
                   password=vec["klap_v1"]["password"], login_version=1) as srv:
        srv.next_key_iv = bytes.fromhex(a["key_hex"] + a["iv_hex"])
        cl = AesClient(srv.url)
        cl.handshake()
        assert (cl.key + cl.iv).hex() == a["key_hex"] + a["iv_hex"]
        reply = cl.call({}, cipher_b64=a["ciphertext_base64"])
        assert reply["error_code"] == 0 and reply["result"]["token"]
        assert srv.entries("login")[0]["params"] == json.loads(a["plaintext"])["params"]


# ================================================================== SmartDevice

def test_smart_device_plug_and_energy():
    d = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3", nickname="Kettle")
    info = d.handle({"method": "get_device_info"})["result"]
    assert base64.b64decode(info["nickname"]).decode() == "Kettle"
    assert len(info["device_id"]) == 40 and d.is_on() is False
    assert d.handle({"method": "set_device_info", "params": {"device_on": True}}) == \
        {"error_code": 0}
    assert d.is_on() is True
    assert d.handle({"method": "set_device_info", "params": {"device_on": 1}})["error_code"] \
        == -1008
    assert d.handle({"method": "set_device_info", "params": {"brightness": 50}})["error_code"] \
        == -1008  # a plug has no brightness
    assert d.handle({"method": "get_energy_usage"})["result"]["today_energy"] == 46
    assert "current_power" in d.handle({"method": "get_current_power"})["result"]
    assert d.handle({"method": "no_such_method"}) == {"error_code": -1002}
    assert d.handle({"method": "set_led_info", "params": {"led_rule": "never"}}) == \
        {"error_code": 0}
    assert d.handle({"method": "get_led_info"})["result"]["led_rule"] == "never"
    assert d.handle({"method": "set_led_info", "params": {"led_rule": "blink"}})["error_code"] \
        == -1008
    other = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3", nickname="Toaster")
    assert other.device_id != d.device_id and other.mac != d.mac
    fixed = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3", device_id="AB" * 20,
                                     mac="11:22:33:44:55:66")
    assert fixed.device_id == "AB" * 20 and fixed.info["mac"] == "11-22-33-44-55-66"


def test_smart_device_bulb_values():
    d = SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6")
    ok = {"error_code": 0}
    assert d.handle({"method": "set_device_info", "params": {"brightness": 30}}) == ok
    assert d.handle({"method": "set_device_info", "params": {"color_temp": 4000}}) == ok
    assert d.handle({"method": "set_device_info", "params": {"hue": 200, "saturation": 80}}) == ok
    info = d.handle({"method": "get_device_info"})["result"]
    assert (info["brightness"], info["hue"], info["saturation"], info["color_temp"]) == \
        (30, 200, 80, 0)
    for bad in ({"brightness": 0}, {"brightness": 101}, {"brightness": "5"}, {"hue": 361},
                {"saturation": -1}, {"color_temp": 1000}, {"color_temp": True}, {}):
        assert d.handle({"method": "set_device_info", "params": bad})["error_code"] == -1008
    assert d.handle({"method": "get_energy_usage"})["error_code"] == -1002
    assert d.handle({"method": "get_current_power"})["error_code"] == -1002
    assert d.handle({"method": "get_led_info"})["error_code"] == -1002


def test_smart_device_strip_children_and_multiple():
    d = SmartDevice.from_fixture("P300(EU)_1.0_1.0.15", nickname="Strip")
    assert d.is_on() is None
    lst = d.handle({"method": "get_child_device_list"})["result"]
    assert lst["sum"] == 3 and [c["position"] for c in lst["child_device_list"]] == [1, 2, 3]
    ids = [c["device_id"] for c in lst["child_device_list"]]
    assert ids == d.child_ids() and all(i.startswith(d.device_id) for i in ids)
    assert base64.b64decode(lst["child_device_list"][1]["nickname"]).decode() == "Strip 2"
    r = d.handle({"method": "control_child", "params": {
        "device_id": ids[1], "requestData": {"method": "set_device_info",
                                             "params": {"device_on": False}}}})
    assert r == {"error_code": 0, "result": {"responseData": {"error_code": 0}}}
    assert d.is_on(ids[1]) is False and d.is_on(ids[0]) is True
    r = d.handle({"method": "control_child", "params": {
        "device_id": ids[1], "requestData": {"method": "get_device_info"}}})
    assert r["result"]["responseData"]["result"]["device_on"] is False
    r = d.handle({"method": "control_child", "params": {
        "device_id": ids[0], "requestData": {"method": "multipleRequest", "params": {
            "requests": [{"method": "get_device_usage"}, {"method": "nope"}]}}}})
    inner = r["result"]["responseData"]["result"]["responses"]
    assert inner[0]["error_code"] == 0 and inner[1]["error_code"] == -1002
    assert d.handle({"method": "control_child", "params": {
        "device_id": "nope", "requestData": {"method": "get_device_info"}}})["error_code"] == -1008
    r = d.handle({"method": "multipleRequest", "params": {"requests": [
        {"method": "get_device_info"}, {"method": "get_energy_usage"},
        {"method": "get_child_device_list"}]}})
    res = r["result"]["responses"]
    assert [x["method"] for x in res] == ["get_device_info", "get_energy_usage",
                                         "get_child_device_list"]
    assert [x["error_code"] for x in res] == [0, -1002, 0]
    assert d.handle({"method": "set_device_info", "params": {"device_on": True}})["error_code"] \
        == -1008  # the strip parent has no device_on
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    assert plug.handle({"method": "get_child_device_list"})["error_code"] == -1002


def test_smart_strip_switches_outlets_in_one_multiple_request():
    d = SmartDevice.from_fixture("P304M(UK)_1.0_1.0.3", nickname="Strip")
    ids = d.child_ids()
    d.refusing[ids[1]] = -1301

    def control(child):
        return {"method": "control_child", "params": {
            "device_id": child, "requestData": {"method": "set_device_info", "params": {"device_on": True}}}}

    r = d.handle({"method": "multipleRequest", "params": {"requests": [control(i) for i in ids[:3]]}})
    assert r == {"error_code": 0, "result": {"responses": [
        {"method": "control_child", "error_code": 0, "result": {"responseData": {"error_code": 0}}},
        {"method": "control_child", "error_code": 0, "result": {"responseData": {"error_code": -1301}}},
        {"method": "control_child", "error_code": 0, "result": {"responseData": {"error_code": 0}}},
    ]}}
    assert [d.is_on(i) for i in ids] == [True, False, True, False]
    assert len(d.requests) == 1


# ================================================================== XOR over TCP

def test_xor_round_trip_keeps_connection(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Lamp")
    with XorServer(plug, host) as srv:
        assert srv.host == host and srv.port > 0
        with socket.create_connection((host, srv.port), timeout=5) as s:
            r = xor_call(s, {"system": {"set_relay_state": {"state": 1}}})
            assert r["system"]["set_relay_state"]["err_code"] == 0
            info = xor_call(s, {"system": {"get_sysinfo": {}}})  # same connection
            assert info["system"]["get_sysinfo"]["relay_state"] == 1
            assert info["system"]["get_sysinfo"]["alias"] == "Lamp"
        assert plug.is_on()
        assert srv.connections == 1 and srv.request_count == 2
        assert srv.requests[0] == {"system": {"set_relay_state": {"state": 1}}}
    # stopped: nothing listens any more
    with pytest.raises(OSError):
        socket.create_connection((host, srv.port), timeout=1)


def test_xor_fault_silent(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    with XorServer(plug, host, fault="silent") as srv:
        with socket.create_connection((host, srv.port), timeout=0.5) as s:
            data = json.dumps({"system": {"set_relay_state": {"state": 1}}}).encode()
            s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
            with pytest.raises(socket.timeout):
                s.recv(1)
        assert not plug.is_on()  # never executed


def test_xor_fault_drip(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    with XorServer(plug, host, fault="drip", drip_interval=0.2) as srv:
        with socket.create_connection((host, srv.port), timeout=5) as s:
            data = json.dumps({"system": {"get_sysinfo": {}}}).encode()
            s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
            t0 = time.monotonic()
            got = b""
            while time.monotonic() - t0 < 1.0:
                s.settimeout(0.5)
                try:
                    got += s.recv(100)
                except socket.timeout:
                    pass
            assert 2 <= len(got) <= 8  # about one byte per interval


def test_xor_fault_reset(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    with XorServer(plug, host, fault="reset") as srv:
        with socket.create_connection((host, srv.port), timeout=5) as s:
            data = json.dumps({"system": {"get_sysinfo": {}}}).encode()
            s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
            with pytest.raises((EOFError, ConnectionResetError)):
                (n,) = struct.unpack(">I", recv_exact(s, 4))
                recv_exact(s, n)


def test_xor_fault_absurd_length(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    with XorServer(plug, host) as srv:
        srv.fault = "absurd_length"
        with socket.create_connection((host, srv.port), timeout=5) as s:
            data = json.dumps({"system": {"get_sysinfo": {}}}).encode()
            s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
            assert struct.unpack(">I", recv_exact(s, 4))[0] == 0xFFFFFFFF


@pytest.mark.parametrize("fault", ["truncate", "not_json"])
def test_xor_fault_truncate_and_not_json(host, fault):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    with XorServer(plug, host, fault=fault) as srv:
        with socket.create_connection((host, srv.port), timeout=5) as s:
            data = json.dumps({"system": {"set_relay_state": {"state": 1}}}).encode()
            s.sendall(struct.pack(">I", len(data)) + c_xor_enc(data))
            (n,) = struct.unpack(">I", recv_exact(s, 4))
            if fault == "truncate":
                with pytest.raises(EOFError, match=f"closed after {n // 2} of {n} bytes"):
                    recv_exact(s, n)  # a clean close (FIN), not a reset
            else:
                assert c_xor_dec(recv_exact(s, n)) == b"<html>not json</html>"
    assert plug.is_on()  # executed all the same


def test_xor_serves_a_subprocess(host):
    """Daemon threads keep serving while the test blocks on a child process."""
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    code = (
        "import socket,struct,json,sys\n"
        "def enc(b):\n k=171;o=bytearray()\n for x in b:\n  k^=x;o.append(k)\n return bytes(o)\n"
        "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5)\n"
        "d=json.dumps({'system':{'set_relay_state':{'state':1}}}).encode()\n"
        "s.sendall(struct.pack('>I',len(d))+enc(d))\n"
        "n=struct.unpack('>I',s.recv(4))[0]\nprint(n>0)\n"
    )
    with XorServer(plug, host) as srv:
        out = subprocess.run([sys.executable, "-c", code, host, str(srv.port)],
                             capture_output=True, text=True, timeout=20)
        assert out.stdout.strip() == "True", out.stderr
    assert plug.is_on()


def test_loopback_only():
    with pytest.raises(ValueError):
        XorServer(IotDevice.from_fixture("HS103(US)_2.1_1.1.4"), "0.0.0.0")


# ================================================================== KLAP over HTTP

def test_klap_v2_handshake_and_requests(host):
    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0", nickname="Heater")
    with KlapServer(dev, host, username="me@example.com", password="s3cret") as srv:
        assert srv.version == 2
        cl = KlapClient(srv.url, "me@example.com", "s3cret")
        assert cl.handshake()
        info = cl.call({"method": "get_device_info"})["result"]
        assert base64.b64decode(info["nickname"]).decode() == "Heater"
        assert info["ip"] == host
        assert cl.call({"method": "set_device_info", "params": {"device_on": True}}) == \
            {"error_code": 0}
        assert dev.is_on()
        assert srv.stats == {"handshake1": 1, "handshake2": 1, "requests": 2, "rejected": 0}
        # bad signature
        saved = cl.sig
        cl.sig = b"\0" * 28
        assert cl.raw(b'{"method":"get_device_info"}').status_code == 400
        cl.sig = saved
        # session expiry -> 403, then a new handshake works
        srv.expire_sessions()
        assert cl.raw(b'{"method":"get_device_info"}').status_code == 403
        assert cl.handshake()
        assert cl.call({"method": "get_device_info"})["error_code"] == 0
        # no cookie -> 403
        r = httpx.post(srv.url + "/app/request", params={"seq": 1}, content=b"x" * 64)
        assert r.status_code == 403


def test_klap_default_accounts_and_rejection(host):
    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    with KlapServer(dev, host, username="me@example.com", password="s3cret") as srv:
        srv.accepts = "kasa"
        assert not KlapClient(srv.url, "me@example.com", "s3cret").handshake()
        assert KlapClient(srv.url, "kasa@tp-link.net", "kasaSetup").handshake()
        srv.accepts = "test"
        assert KlapClient(srv.url, "test@tp-link.net", "test").handshake()
        srv.accepts = "blank"
        assert KlapClient(srv.url, "", "").handshake()
        srv.accepts = "user"
        srv.reject_all_auth = True
        for user, pw in [("me@example.com", "s3cret"), ("kasa@tp-link.net", "kasaSetup"),
                         ("test@tp-link.net", "test"), ("", "")]:
            assert not KlapClient(srv.url, user, pw).handshake()
        # a handshake2 with a wrong hash is refused
        cl = KlapClient(srv.url, "me@example.com", "s3cret")
        r = cl.http.post(srv.url + "/app/handshake1", content=os.urandom(16))
        r = cl.http.post(srv.url + "/app/handshake2", content=os.urandom(32),
                         headers={"Cookie": session_cookie(r)})
        assert r.status_code == 403
        assert srv.handshake1_count == 9
        assert httpx.post(srv.url + "/app/handshake1", content=b"short").status_code == 400


def test_klap_faults(host):
    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    with KlapServer(dev, host, username="me@example.com", password="s3cret",
                    fault="short_handshake1") as srv:
        assert len(httpx.post(srv.url + "/app/handshake1", content=os.urandom(16)).content) == 47
        srv.fault = "reject_handshake2"
        cl = KlapClient(srv.url, "me@example.com", "s3cret")
        with pytest.raises(AssertionError):
            cl.handshake()  # the right client hash, refused
        srv.fault = None
        assert cl.handshake()
        srv.fault = "forbidden"
        assert cl.raw(b'{"method":"get_device_info"}').status_code == 403
        srv.fault = "tampered_reply"
        r = cl.raw(b'{"method":"set_device_info","params":{"device_on":true}}')
        assert r.status_code == 200 and len(r.content) > 48
        sig, ct = r.content[:32], r.content[32:]
        assert sig == hashlib.sha256(cl.sig + struct.pack(">i", cl.seq) + ct[:-1]
                                     + bytes([ct[-1] ^ 1])).digest()  # signed, then damaged
        assert dev.is_on()  # executed
        assert srv.requests == [{"method": "set_device_info", "params": {"device_on": True}}]
    with pytest.raises(ValueError):
        KlapServer(dev, host, fault="nonsense")


def test_klap_v1_serving_iot(host):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Fan")
    with KlapServer(plug, host, username="me@example.com", password="pw") as srv:
        assert srv.version == 1
        cl = KlapClient(srv.url, "me@example.com", "pw", version=1)
        assert cl.handshake()
        r = cl.call({"system": {"set_relay_state": {"state": 1}}})
        assert r["system"]["set_relay_state"]["err_code"] == 0
        assert cl.call({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["alias"] == "Fan"
        assert plug.is_on()


# ================================================================== AES securePassthrough

def test_aes_handshake_login_v2_and_get_device_info(host):
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3", nickname="Dryer")
    with AesServer(dev, host, username="me@example.com", password="s3cret") as srv:
        cl = AesClient(srv.url)
        cl.handshake()
        assert cl.login("me@example.com", "wrong")["error_code"] == -1501
        # The refusal ends the session (python-kasa aestransport.py: "After a login failure
        # handshake needs to be redone or a 9999 error is received").
        assert cl.outer({"method": "get_device_info"})["error_code"] == 9999
        cl.handshake()
        assert cl.login("me@example.com", "s3cret", version=1)["error_code"] == -1501
        cl.handshake()
        # before login: no token -> -1501
        assert cl.call({"method": "get_device_info"})["error_code"] == -1501
        assert cl.login("me@example.com", "s3cret")["error_code"] == 0
        info = cl.call({"method": "get_device_info"})["result"]
        assert base64.b64decode(info["nickname"]).decode() == "Dryer"
        assert cl.call({"method": "set_device_info", "params": {"device_on": True}}) == \
            {"error_code": 0}
        assert dev.is_on()
        assert srv.requests[-1] == {"method": "set_device_info", "params": {"device_on": True}}
        # wrong token
        good, cl.token = cl.token, "BAD"
        assert cl.call({"method": "get_device_info"})["error_code"] == -1501
        cl.token = good
        # garbage ciphertext -> -1005
        assert cl.outer({}, cipher_b64=base64.b64encode(b"x" * 16).decode())["error_code"] \
            == -1005
        srv.expire_session(-40401)
        assert cl.outer({"method": "get_device_info"})["error_code"] == -40401
        srv.expire_session()
        assert cl.outer({"method": "get_device_info"})["error_code"] == 9999
        assert srv.stats["handshakes"] == 3 and srv.stats["logins"] == 3
        assert srv.stats["login_failures"] == 2


def test_aes_default_account_and_v1(host):
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    with AesServer(dev, host, username="me@example.com", password="pw", login_version=1,
                   accepts="test") as srv:
        cl = AesClient(srv.url)
        for username, password, version, code in (("me@example.com", "pw", 1, -1501),
                                                  ("test@tp-link.net", "test", 2, -1501),
                                                  ("test@tp-link.net", "test", 1, 0)):
            cl.handshake()  # a refused login ends its session
            assert cl.login(username, password, version=version)["error_code"] == code
        r = httpx.post(srv.url + "/app", json={"method": "handshake", "params": {"key": "nope"}})
        assert r.json()["error_code"] == -1010
        # a request without Content-Length is refused outright
        with socket.create_connection((host, srv.port), timeout=5) as s:
            s.sendall(b"POST /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert recv_exact(s, 12).startswith(b"HTTP/1.1 411")


def test_aes_faults_touch_only_requests_for_the_device(host):
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    with AesServer(dev, host, username="me@example.com", password="s3cret",
                   fault="inner_error", fault_code=9999) as srv:
        cl = AesClient(srv.url)
        cl.handshake()  # handshake and login work whatever the fault
        assert cl.login("me@example.com", "s3cret")["error_code"] == 0
        assert cl.call({"method": "get_device_info"}) == {"error_code": 9999}
        srv.fault, srv.fault_code = "outer_error", -1008
        assert cl.outer({"method": "get_device_info"}) == {"error_code": -1008}
        srv.fault = "undecryptable"
        assert cl.outer({"method": "get_device_info"}) == {"error_code": 0,
                                                           "result": {"response": "@@@"}}
        srv.fault = "no_response"
        assert cl.outer({"method": "get_device_info"}) == {"error_code": 0}
        srv.fault = "not_json"
        cipher = base64.b64encode(aes_enc(cl.key, cl.iv, b'{"method":"get_device_info"}')).decode()
        r = cl.http.post(srv.url + f"/app?token={cl.token}", headers={"Cookie": cl.cookie},
                         json={"method": "securePassthrough", "params": {"request": cipher}})
        assert r.status_code == 200 and r.content.startswith(b"<html>")
        assert srv.requests == [] and len(srv.entries("fault")) == 5  # none reached the device
        srv.fault = None
        assert cl.call({"method": "get_device_info"})["error_code"] == 0
    with pytest.raises(ValueError):
        AesServer(dev, host, fault="nonsense")


# ================================================================== discovery

def test_discovery_20002_probe_and_reply():
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    h = pick_loopback_host(udp_ports=(20002,))
    with AesServer(dev, h) as srv, DiscoveryResponder.for_server(srv) as disc:
        assert (disc.host, disc.port) == (h, 20002)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(2)
            s.sendto(probe_20002({"params": {"rsa_key": "-----BEGIN PUBLIC KEY-----"}}), (h, 20002))
            data, addr = s.recvfrom(4096)
            assert addr == (h, 20002)
            header, payload = crypto.parse_discovery_packet(data)  # valid header + CRC
            assert header["serial"] == b"\x01\x02\x03\x04"
            reply = json.loads(payload)
            assert reply["error_code"] == 0
            res = reply["result"]
            assert res["device_type"] == "SMART.TAPOPLUG" and res["device_model"] == "P110(EU)"
            assert len(res["device_id"]) == 32 and res["device_id"] != dev.device_id
            assert res["ip"] == h
            assert res["mac"].replace("-", "") == dev.mac and res["mac"].count("-") == 5
            assert res["mgt_encrypt_schm"] == {"encrypt_type": "AES", "http_port": srv.port,
                                               "is_support_https": False, "lv": 2}
            # bad CRC / garbage -> no answer
            s.sendto(probe_20002({"params": {}}, bad_crc=True), (h, 20002))
            s.sendto(b"hello", (h, 20002))
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recvfrom(4096)
        assert len(disc.entries("ignored")) == 2 and disc.answered["20002"] == 1


def test_discovery_20002_klap_iot_and_smart():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    tapo = SmartDevice.from_fixture("P300(EU)_1.0_1.0.15")
    h1 = pick_loopback_host(udp_ports=(20002,))
    h2 = pick_loopback_host(udp_ports=(20002,))
    with KlapServer(plug, h1) as k1, DiscoveryResponder.for_server(k1), \
            KlapServer(tapo, h2) as k2, DiscoveryResponder.for_server(k2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            replies = {}
            for h in (h1, h2):
                s.sendto(probe_20002({"params": {"rsa_key": "k"}}), (h, 20002))
                data, addr = s.recvfrom(4096)
                replies[addr[0]] = json.loads(data[16:])["result"]
        a, b = replies[h1], replies[h2]
        assert a["device_type"] == "IOT.SMARTPLUGSWITCH" and a["device_model"] == "HS103(US)"
        assert a["mgt_encrypt_schm"] == {"encrypt_type": "KLAP", "http_port": k1.port,
                                         "is_support_https": False}
        assert b["device_type"] == "SMART.TAPOPLUG"
        assert b["mgt_encrypt_schm"]["lv"] == 2 and b["mgt_encrypt_schm"]["http_port"] == k2.port


def test_discovery_9999_sysinfo():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Porch")
    h = pick_loopback_host(udp_ports=(9999,))
    with XorServer(plug, h) as xs, DiscoveryResponder.for_server(xs) as disc:
        assert disc.port == 9999
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(c_xor_enc(b'{"system":{"get_sysinfo":{}}}'), (h, 9999))
            data, addr = s.recvfrom(4096)
        assert addr == (h, 9999)
        info = json.loads(c_xor_dec(data))["system"]["get_sysinfo"]
        assert info["alias"] == "Porch" and info["deviceId"] == plug.device_id
        disc.silent = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(c_xor_enc(b'{"system":{"get_sysinfo":{}}}'), (h, 9999))
            with pytest.raises(socket.timeout):
                s.recvfrom(4096)


def test_discovery_broadcast_on_loopback():
    port = random.randint(40000, 60000)
    hosts = [pick_loopback_host(udp_ports=(port,)) for _ in range(2)]
    devs = [IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias=f"D{i}") for i in range(2)]
    responders = [DiscoveryResponder(d, h, udp9999=True, port_9999=port, broadcast=True)
                  for d, h in zip(devs, hosts)]
    try:
        for r in responders:
            r.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(("127.0.0.1", 0))
            s.settimeout(1)
            s.sendto(c_xor_enc(b'{"system":{"get_sysinfo":{}}}'), ("127.255.255.255", port))
            seen = {}
            try:
                while len(seen) < 2:
                    data, addr = s.recvfrom(4096)
                    seen[addr[0]] = json.loads(c_xor_dec(data))["system"]["get_sysinfo"]["alias"]
            except socket.timeout:
                pass
        assert seen == {hosts[0]: "D0", hosts[1]: "D1"}
    finally:
        for r in responders:
            r.stop()
