"""LAN wire codecs against the independent vectors, and transports against tiny local peers.

The vectors are tests/fixtures/protocol-vectors.json.

Every peer here is either an asyncio server on 127.0.0.1 or an in-process httpx MockTransport:
nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from urllib.parse import parse_qs

import httpx
import pytest

from tests.conftest import protocol_vectors
from tpcloud.errors import AuthError, DeviceError, DeviceUnreachable, ProtocolError, Timeout
from tpcloud.lan import aes, klap, xor

VECTORS = protocol_vectors()
LOCAL = "127.0.0.1"


def run(coro):
    return asyncio.run(coro)


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


# --- XOR transport against local TCP peers -----------------------------------------------------


async def _serve(handler):
    async def guarded(reader, writer):
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up first, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, LOCAL, 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    length = int.from_bytes(await reader.readexactly(4), "big")
    return xor.decrypt(await reader.readexactly(length))


def test_xor_transport_normal_reply_without_eof():
    reply = {"system": {"get_sysinfo": {"alias": "Lamp", "relay_state": 1}}}
    seen = []

    async def handler(reader, writer):
        seen.append(await _read_request(reader))
        writer.write(xor.frame(json.dumps(reply).encode()))
        await writer.drain()
        await asyncio.sleep(5)  # keep the socket open like real devices do
        writer.close()

    async def main():
        server, port = await _serve(handler)
        async with server:
            transport = xor.XorTransport(LOCAL, port, timeout=2)
            started = time.monotonic()
            answer = await transport.request(b'{"system":{"get_sysinfo":{}}}')
            elapsed = time.monotonic() - started
            await transport.close()
            return answer, elapsed

    answer, elapsed = run(main())
    assert json.loads(answer) == reply
    assert seen == [b'{"system":{"get_sysinfo":{}}}']
    assert elapsed < 1


@pytest.mark.parametrize("drip", [False, True])
def test_xor_transport_silent_or_dripping_peer_times_out(drip):
    async def handler(reader, writer):
        await _read_request(reader)
        if drip:
            writer.write((100).to_bytes(4, "big"))
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
        await asyncio.sleep(10)

    async def main():
        server, port = await _serve(handler)
        async with server:
            transport = xor.XorTransport(LOCAL, port, timeout=0.5)
            started = time.monotonic()
            with pytest.raises(Timeout):
                await transport.request(b"{}")
            return time.monotonic() - started

    assert run(main()) < 0.5 + 0.5


def test_xor_transport_absurd_length():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write(b"\xff\xff\xff\xf0" + b"\x00" * 64)
        await writer.drain()
        await asyncio.sleep(2)

    async def main():
        server, port = await _serve(handler)
        async with server:
            with pytest.raises(ProtocolError, match="limit"):
                await xor.XorTransport(LOCAL, port, timeout=2).request(b"{}")

    run(main())


def test_xor_transport_peer_closes_mid_frame():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write((50).to_bytes(4, "big") + xor.encrypt(b'{"system":'))
        await writer.drain()
        writer.close()

    async def main():
        server, port = await _serve(handler)
        async with server:
            with pytest.raises(ProtocolError, match="10 of 50"):
                await xor.XorTransport(LOCAL, port, timeout=2).request(b"{}")

    run(main())


def test_xor_transport_non_json_reply():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write(xor.frame(b"not json"))
        await writer.drain()
        await asyncio.sleep(1)

    async def main():
        server, port = await _serve(handler)
        async with server:
            with pytest.raises(ProtocolError, match="JSON"):
                await xor.XorTransport(LOCAL, port, timeout=2).request(b"{}")

    run(main())


def test_xor_transport_connection_refused():
    async def main():
        server, port = await _serve(lambda r, w: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        with pytest.raises(DeviceUnreachable):
            await xor.XorTransport(LOCAL, port, timeout=2).request(b"{}")

    run(main())


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


# --- KLAP transport against an in-process fake device ----------------------------------------


class FakeKlapDevice:
    """Answers handshake1/handshake2/request like a KLAP device holding one account."""

    def __init__(self, account, version=2, timeout_cookie="86400"):
        self.auth = klap.auth_hash(*account, version)
        self.version = version
        self.timeout_cookie = timeout_cookie
        self.handshakes = 0
        self.forbid_next = 0
        self.reject_handshake2 = False
        self.h1_body: bytes | None = None
        self.tamper = False
        self.session: klap.KlapSession | None = None
        self.cookie = None
        self.requests = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == LOCAL
        assert request.headers["content-length"] == str(len(request.content))
        path = request.url.path
        if path == "/app/handshake1":
            self.handshakes += 1
            self.local_seed, self.remote_seed = request.content, os.urandom(16)
            self.cookie = f"S{self.handshakes}"
            body = self.h1_body if self.h1_body is not None else self.remote_seed + klap.server_hash(
                self.local_seed, self.remote_seed, self.auth, self.version
            )
            headers = {"Set-Cookie": f"TP_SESSIONID={self.cookie};TIMEOUT={self.timeout_cookie}"}
            return httpx.Response(200, content=body, headers=headers)
        assert request.headers.get("cookie") == f"TP_SESSIONID={self.cookie}"
        if path == "/app/handshake2":
            expected = klap.client_hash(self.local_seed, self.remote_seed, self.auth, self.version)
            if self.reject_handshake2 or request.content != expected:
                return httpx.Response(403)
            self.session = klap.KlapSession(self.local_seed, self.remote_seed, self.auth)
            return httpx.Response(200)
        if path == "/app/request":
            if self.forbid_next:
                self.forbid_next -= 1
                return httpx.Response(403)
            seq = int(parse_qs(request.url.query.decode())["seq"][0])
            self.requests.append(json.loads(self.session.decrypt(seq, request.content)))
            reply = json.dumps({"error_code": 0, "result": {"device_on": True}}).encode()
            self.session.seq = seq - 1
            _, body = self.session.encrypt(reply)
            if self.tamper:
                body = body[:-1] + bytes([body[-1] ^ 1])
            return httpx.Response(200, content=body)
        return httpx.Response(404)


def _klap_run(device, scenario, *, credentials=("me@example.com", "Pass"), version=2):
    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(device.handler)) as client:
            transport = klap.KlapTransport(
                LOCAL, credentials=credentials, version=version, client=client, timeout=2
            )
            try:
                return await scenario(transport, client)
            finally:
                await transport.close()

    return run(main())


async def _ask(transport, *_):
    return json.loads(await transport.request(b'{"method":"get_device_info"}'))


@pytest.mark.parametrize("version", [1, 2])
def test_klap_transport_user_account(version):
    device = FakeKlapDevice(("me@example.com", "Pass"), version=version)

    async def scenario(transport, client):
        first = await _ask(transport)
        second = await _ask(transport)
        return first, second, transport.matched_default_account

    first, second, default = _klap_run(device, scenario, version=version)
    assert first == second == {"error_code": 0, "result": {"device_on": True}}
    assert device.handshakes == 1
    assert device.requests == [{"method": "get_device_info"}] * 2
    assert default is False


@pytest.mark.parametrize("account", klap.DEFAULT_ACCOUNTS)
def test_klap_transport_falls_back_to_default_accounts(account):
    device = FakeKlapDevice(account)

    async def scenario(transport, client):
        await _ask(transport)
        return transport.matched_default_account

    assert _klap_run(device, scenario) is True
    assert _klap_run(FakeKlapDevice(account), scenario, credentials=None) is True


def test_klap_transport_wrong_credentials_hint_without_secrets():
    device = FakeKlapDevice(("owner@example.com", "Right"))
    with pytest.raises(AuthError) as caught:
        _klap_run(device, _ask, credentials=("owner@example.com", "WrongPassword"))
    assert "Third-Party Compatibility" in caught.value.hint
    assert "case-sensitive" in caught.value.hint
    assert "WrongPassword" not in str(caught.value) + caught.value.hint
    assert "\n" not in str(caught.value)


def test_klap_transport_handshake_failures():
    device = FakeKlapDevice(("me@example.com", "Pass"))
    device.h1_body = b"\x00" * 47
    with pytest.raises(ProtocolError, match="48"):
        _klap_run(device, _ask)
    device = FakeKlapDevice(("me@example.com", "Pass"))
    device.reject_handshake2 = True
    with pytest.raises(AuthError) as caught:
        _klap_run(device, _ask)
    assert "Third-Party Compatibility" in caught.value.hint


def test_klap_transport_403_rehandshakes_once():
    device = FakeKlapDevice(("me@example.com", "Pass"))

    async def scenario(transport, client):
        await _ask(transport)
        device.forbid_next = 1
        return await _ask(transport)

    assert _klap_run(device, scenario)["result"] == {"device_on": True}
    assert device.handshakes == 2

    device = FakeKlapDevice(("me@example.com", "Pass"))

    async def persistent(transport, client):
        await _ask(transport)
        device.forbid_next = 5
        await _ask(transport)

    with pytest.raises(AuthError, match="403"):
        _klap_run(device, persistent)
    assert device.handshakes == 2


def test_klap_transport_short_timeout_cookie_and_expiry():
    device = FakeKlapDevice(("me@example.com", "Pass"), timeout_cookie="1")

    async def scenario(transport, client):
        await _ask(transport)
        await asyncio.sleep(0.6)  # past half the one-second life: stale
        await _ask(transport)

    _klap_run(device, scenario)
    assert device.handshakes == 2


def test_klap_transport_export_restore_skips_handshake():
    device = FakeKlapDevice(("kasa@tp-link.net", "kasaSetup"))

    async def first(transport, client):
        await _ask(transport)
        return transport.export_session()

    state = json.loads(json.dumps(_klap_run(device, first)))
    assert state["matched_default_account"] is True

    async def second(transport, client):
        assert transport.restore_session(state)
        assert transport.matched_default_account is True
        return await _ask(transport)

    assert _klap_run(device, second)["error_code"] == 0
    assert device.handshakes == 1

    async def refused(transport, client):
        return [
            transport.restore_session({**state, "expires_at": int(time.time()) - 1}),
            transport.restore_session({**state, "host": "127.0.0.2"}),
            transport.restore_session({"wire": "klap"}),
            transport.export_session(),
        ]

    assert _klap_run(device, refused) == [False, False, False, None]


def test_klap_transport_tampered_reply():
    device = FakeKlapDevice(("me@example.com", "Pass"))
    device.tamper = True
    with pytest.raises(ProtocolError):
        _klap_run(device, _ask)


def test_klap_transport_unreachable():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            transport = klap.KlapTransport(LOCAL, credentials=None, version=1, client=client, timeout=1)
            await transport.request(b"{}")

    with pytest.raises(DeviceUnreachable):
        run(main())


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
    request = json.loads(aes.smart_request("get_device_info", terminal_uuid="abc"))
    assert request["method"] == "get_device_info" and request["terminal_uuid"] == "abc"
    assert abs(request["request_time_milis"] - time.time() * 1000) < 60_000
    assert "params" not in request
    assert len(base64.b64decode(aes.new_terminal_uuid())) == 16
    assert aes.smart_result(b'{"error_code":0,"result":{"a":1}}') == {"a": 1}
    with pytest.raises(DeviceError) as caught:
        aes.smart_result(b'{"error_code":-1008}')
    assert caught.value.code == -1008
    with pytest.raises(ProtocolError):
        aes.smart_result(b'{"error_code":"x"}')


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


# --- AES transport against an in-process fake device -----------------------------------------


class FakeAesDevice:
    """Answers handshake, login_device and securePassthrough like a Tapo device on the AES wire."""

    def __init__(self, accounts, login_version=1):
        self.accounts = [aes.login_params(u, p, login_version) for u, p in accounts]
        self.handshakes = 0
        self.logins = []
        self.expire_next = 0
        self.outer_error = 0
        self.garbage = None
        self.cipher = None
        self.token = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        assert request.url.host == LOCAL and request.url.path == "/app"
        assert request.headers["content-length"] == str(len(request.content))
        body = json.loads(request.content)
        if body["method"] == "handshake":
            self.handshakes += 1
            public = serialization.load_pem_public_key(body["params"]["key"].encode())
            secret = os.urandom(32)
            self.cipher = aes.AesCipher(secret[:16], secret[16:])
            self.cookie = f"C{self.handshakes}"
            wrapped = base64.b64encode(public.encrypt(secret, padding.PKCS1v15())).decode()
            return httpx.Response(
                200, json={"error_code": 0, "result": {"key": wrapped}},
                headers={"Set-Cookie": f"TP_SESSIONID={self.cookie};TIMEOUT=86400"},
            )
        assert body["method"] == "securePassthrough"
        assert request.headers.get("cookie") == f"TP_SESSIONID={self.cookie}"
        if self.garbage is not None:
            return httpx.Response(200, content=self.garbage)
        if self.outer_error:
            return httpx.Response(200, json={"error_code": self.outer_error})
        inner = json.loads(self.cipher.decrypt(body["params"]["request"]))
        token = parse_qs(request.url.query.decode()).get("token", [None])[0]
        if inner["method"] == "login_device":
            self.logins.append(inner["params"])
            if inner["params"] in self.accounts:
                self.token = f"T{self.handshakes}"
                reply = {"error_code": 0, "result": {"token": self.token}}
            else:
                reply = {"error_code": -1501}
        elif self.expire_next:
            self.expire_next -= 1
            reply = {"error_code": 9999}
        else:
            assert token == self.token
            reply = {"error_code": 0, "result": {"method": inner["method"]}}
        encrypted = self.cipher.encrypt(json.dumps(reply).encode())
        return httpx.Response(200, json={"error_code": 0, "result": {"response": encrypted}})


def _aes_run(device, scenario, *, credentials=("me@example.com", "Pass"), login_version=1):
    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(device.handler)) as client:
            transport = aes.AesTransport(
                LOCAL, credentials=credentials, login_version=login_version, client=client, timeout=2
            )
            try:
                return await scenario(transport)
            finally:
                await transport.close()

    return run(main())


async def _aes_ask(transport):
    return json.loads(await transport.request(aes.smart_request("get_device_info")))


@pytest.mark.parametrize("login_version", [1, 2])
def test_aes_transport_user_account(login_version):
    device = FakeAesDevice([("me@example.com", "Pass")], login_version)

    async def scenario(transport):
        replies = [await _aes_ask(transport), await _aes_ask(transport)]
        return replies, transport.matched_default_account

    replies, default = _aes_run(device, scenario, login_version=login_version)
    assert replies == [{"error_code": 0, "result": {"method": "get_device_info"}}] * 2
    assert device.handshakes == 1 and len(device.logins) == 1 and default is False


def test_aes_transport_default_account_after_1501():
    device = FakeAesDevice([aes.DEFAULT_ACCOUNT])

    async def scenario(transport):
        await _aes_ask(transport)
        return transport.matched_default_account

    assert _aes_run(device, scenario) is True
    assert len(device.logins) == 2


def test_aes_transport_refused_credentials():
    device = FakeAesDevice([("owner@example.com", "Right")])
    with pytest.raises(AuthError) as caught:
        _aes_run(device, _aes_ask, credentials=("owner@example.com", "WrongPassword"))
    assert "Third-Party Compatibility" in caught.value.hint and "case-sensitive" in caught.value.hint
    assert "WrongPassword" not in str(caught.value)
    assert len(device.logins) == 2


def test_aes_transport_session_expired_rehandshakes_once():
    device = FakeAesDevice([("me@example.com", "Pass")])

    async def scenario(transport):
        await _aes_ask(transport)
        device.expire_next = 1
        return await _aes_ask(transport)

    assert _aes_run(device, scenario)["error_code"] == 0
    assert device.handshakes == 2

    device = FakeAesDevice([("me@example.com", "Pass")])

    async def persistent(transport):
        await _aes_ask(transport)
        device.expire_next = 5
        await _aes_ask(transport)

    with pytest.raises(DeviceError) as caught:
        _aes_run(device, persistent)
    assert caught.value.code == 9999 and device.handshakes == 2


def test_aes_transport_device_error_and_garbage():
    device = FakeAesDevice([("me@example.com", "Pass")])

    async def outer_error(transport):
        await _aes_ask(transport)
        device.outer_error = -1008
        await _aes_ask(transport)

    with pytest.raises(DeviceError) as caught:
        _aes_run(device, outer_error)
    assert caught.value.code == -1008

    for garbage in (b"<html>", b'{"error_code":0,"result":{"response":"@@@"}}', b'{"error_code":0}'):
        device = FakeAesDevice([("me@example.com", "Pass")])

        async def scenario(transport, garbage=garbage):
            await _aes_ask(transport)
            device.garbage = garbage
            await _aes_ask(transport)

        with pytest.raises(ProtocolError):
            _aes_run(device, scenario)


def test_aes_transport_export_restore_skips_handshake():
    device = FakeAesDevice([("me@example.com", "Pass")])

    async def first(transport):
        await _aes_ask(transport)
        return transport.export_session()

    state = json.loads(json.dumps(_aes_run(device, first)))

    async def second(transport):
        assert transport.restore_session(state)
        return await _aes_ask(transport)

    assert _aes_run(device, second)["error_code"] == 0
    assert device.handshakes == 1 and len(device.logins) == 1

    async def refused(transport):
        return [
            transport.restore_session({**state, "expires_at": 0}),
            transport.restore_session({**state, "login_version": 2}),
            transport.restore_session({**state, "key": "zz"}),
            transport.export_session(),
        ]

    assert _aes_run(device, refused) == [False, False, False, None]
