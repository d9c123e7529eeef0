"""The client's LAN transports against the independent device emulators, over real sockets.

Client and emulators were written apart and each checked against the protocol vectors
(tests/fixtures/protocol-vectors.json); here they must also agree with each other, including
when a session dies in the middle of a run. A device that misbehaves is the same emulator with a
``fault``: there is one implementation of each wire on the device's side, never the client's own
code turned around.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from tests.conftest import PASSWORD, USERNAME
from tests.doubles.cloud.hostile_http import EndlessReplyServer
from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import AesServer, KlapServer, XorServer, pick_loopback_host
from tpcloud import errors
from tpcloud.lan.aes import AesTransport
from tpcloud.lan.klap import KlapTransport
from tpcloud.lan.xor import XorTransport

GET_INFO = json.dumps({"method": "get_device_info"}).encode()
SYSINFO = json.dumps({"system": {"get_sysinfo": {}}}).encode()


def run(coro):
    return asyncio.run(coro)


def klap_server(version: int = 2, **options) -> KlapServer:
    """A KLAP emulator on a fresh loopback address: a Kasa plug (IOT) for v1, a Tapo plug for v2."""
    if version == 1:
        device = IotDevice.from_fixture("HS100(UK)_4.1_1.1.0.json", alias="Hall")
    else:
        device = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json", nickname="Plug")
    return KlapServer(device, pick_loopback_host(), version=version, **{"username": USERNAME, "password": PASSWORD, **options})


def aes_server(**options) -> AesServer:
    """An AES (securePassthrough) emulator on a fresh loopback address, in front of a Tapo plug."""
    device = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json", nickname="Plug")
    return AesServer(device, pick_loopback_host(), **{"username": USERNAME, "password": PASSWORD, **options})


def with_transport(server: KlapServer | AesServer, scenario, *, credentials=(USERNAME, PASSWORD)):
    """``scenario(transport)`` with a new client transport for SERVER's wire, closed afterwards."""

    async def main():
        if isinstance(server, KlapServer):
            transport = KlapTransport(server.host, server.port, credentials=credentials, version=server.version, timeout=5)
        else:
            transport = AesTransport(server.host, server.port, credentials=credentials, login_version=server.login_version, timeout=5)
        try:
            return await scenario(transport)
        finally:
            await transport.close()

    return run(main())


async def ask(transport: KlapTransport | AesTransport) -> dict:
    """The device's own information, in its dialect: IOT behind KLAP v1, SMART otherwise."""
    iot = isinstance(transport, KlapTransport) and transport.version == 1
    return json.loads(await transport.send(SYSINFO if iot else GET_INFO))


async def twice(transport) -> tuple[list[dict], bool]:
    return [await ask(transport), await ask(transport)], transport.matched_default_account


async def matched_default(transport) -> bool:
    await ask(transport)
    return transport.matched_default_account


# --- XOR ---------------------------------------------------------------------------------------


def test_xor_reply_is_read_while_the_device_keeps_the_connection_open():
    device = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json", alias="Lamp")
    with XorServer(device, pick_loopback_host()) as server:  # keeps the socket open, as devices do
        started = time.monotonic()
        reply = json.loads(run(XorTransport(server.host, server.port, timeout=2).send(SYSINFO)))
        elapsed = time.monotonic() - started
        assert server.requests == [json.loads(SYSINFO)]
    assert reply["system"]["get_sysinfo"]["alias"] == "Lamp"
    assert elapsed < 1  # the reply's length ends the exchange, not the device closing


@pytest.mark.parametrize(
    "fault, error, message",
    [
        pytest.param("silent", errors.Timeout, "did not answer within 1 s", id="silent"),
        # One byte every 0.1 s: every read succeeds, so only a deadline for the whole reply ends it.
        pytest.param("drip", errors.Timeout, "did not answer within 1 s", id="drip"),
        pytest.param("absurd_length", errors.ProtocolError, "limit", id="absurd_length"),
        pytest.param("reset", errors.TpcloudError, None, id="reset"),
        pytest.param("not_json", errors.ProtocolError, "JSON", id="not_json"),
    ],
)
def test_xor_faults_end_in_one_clear_error_within_the_timeout(fault, error, message):
    device = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json", alias="Lamp")
    with XorServer(device, pick_loopback_host(), fault=fault, drip_interval=0.1) as server:
        loop_time = asyncio.new_event_loop()
        started = loop_time.time()
        with pytest.raises(error, match=message) as caught:
            loop_time.run_until_complete(XorTransport(server.host, server.port, timeout=1.0).send(SYSINFO))
        elapsed = loop_time.time() - started
        loop_time.close()
    assert elapsed < 3
    assert "\n" not in str(caught.value)


def test_xor_a_device_that_closes_mid_reply_says_how_much_came():
    device = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json", alias="Lamp")
    with XorServer(device, pick_loopback_host(), fault="truncate") as server:
        with pytest.raises(errors.ProtocolError) as caught:
            run(XorTransport(server.host, server.port, timeout=2).send(SYSINFO))
        (answered,) = server.entries("request")
    length = len(json.dumps(answered["response"], separators=(",", ":")))
    assert f"closed the connection mid-reply ({length // 2} of {length} bytes)" in str(caught.value)


@pytest.mark.parametrize("wire", ["xor", "klap", "aes"])
def test_a_closed_port_is_unreachable(wire):
    host = pick_loopback_host(tcp_ports=(9999,))

    async def main():
        transport = {
            "xor": lambda: XorTransport(host, 9999, timeout=1.0),
            "klap": lambda: KlapTransport(host, 9999, credentials=None, version=1, timeout=1.0),
            "aes": lambda: AesTransport(host, 9999, credentials=None, timeout=1.0),
        }[wire]()
        await transport.send(SYSINFO if wire == "xor" else GET_INFO)

    with pytest.raises(errors.DeviceUnreachable):
        run(main())


# --- KLAP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_klap_one_handshake_serves_many_requests(version):
    with klap_server(version) as server:
        (first, second), default = with_transport(server, twice)
        assert server.stats == {"handshake1": 1, "handshake2": 1, "requests": 2, "rejected": 0}
        assert server.connection_count == 1  # handshakes and requests on one kept-alive connection
        assert server.requests == [json.loads(SYSINFO if version == 1 else GET_INFO)] * 2
    assert first == second and default is False
    if version == 1:  # a Kasa device speaks IOT JSON over KLAP v1
        assert first["system"]["get_sysinfo"]["alias"] == "Hall"
    else:
        assert first["error_code"] == 0 and first["result"]["model"] == "P110"


def test_klap_v2_session_expiry_mid_run_rehandshakes_once():
    with klap_server() as server:
        async def expiring(transport):
            first = await ask(transport)
            server.expire_sessions()
            return [first, await ask(transport)]

        replies = with_transport(server, expiring)
        assert server.stats["handshake1"] == 2
    assert all(r["error_code"] == 0 and r["result"]["model"] == "P110" for r in replies)


@pytest.mark.parametrize("account", ["kasa", "test", "blank"])
def test_klap_falls_back_to_the_default_accounts(account):
    with klap_server(accepts=account) as server:
        assert with_transport(server, matched_default) is True
        assert with_transport(server, matched_default, credentials=None) is True


def test_klap_wrong_credentials_get_a_hint_without_secrets():
    with klap_server(username="owner@example.com", password="Right") as server:
        with pytest.raises(errors.AuthError) as caught:
            with_transport(server, ask, credentials=("owner@example.com", "WrongPassword"))
        assert server.stats["handshake2"] == 0  # no account matched the device's handshake1
    assert "Third-Party Compatibility" in caught.value.hint
    assert "case-sensitive" in caught.value.hint
    assert "WrongPassword" not in str(caught.value) + caught.value.hint
    assert "\n" not in str(caught.value)


def test_klap_handshake_failures():
    with klap_server(fault="short_handshake1") as server:
        with pytest.raises(errors.ProtocolError, match="47 bytes, expected 48"):
            with_transport(server, ask)
        server.fault = "reject_handshake2"
        with pytest.raises(errors.AuthError) as caught:
            with_transport(server, ask)
    assert "Third-Party Compatibility" in caught.value.hint


def test_klap_a_403_after_a_fresh_handshake_is_an_auth_error():
    with klap_server() as server:
        async def refused(transport):
            await ask(transport)
            server.fault = "forbidden"  # every request from now on, whatever the session
            await ask(transport)

        with pytest.raises(errors.AuthError, match="403"):
            with_transport(server, refused)
        assert server.stats["handshake1"] == 2  # one new handshake, not a loop


def test_klap_a_short_lived_session_is_renewed_before_the_device_drops_it():
    with klap_server(session_timeout=1) as server:  # TIMEOUT=1 in the cookie
        async def scenario(transport):
            await ask(transport)
            await asyncio.sleep(0.6)  # past half the one-second life: stale
            await ask(transport)

        with_transport(server, scenario)
        assert server.stats["handshake1"] == 2
        assert server.stats["rejected"] == 0  # renewed before asking, not after a refusal


def test_klap_an_exported_session_skips_the_handshake():
    with klap_server(accepts="kasa") as server:
        async def first(transport):
            await ask(transport)
            return transport.export_session()

        state = json.loads(json.dumps(with_transport(server, first)))
        assert state["matched_default_account"] is True

        async def second(transport):
            assert transport.restore_session(state)
            assert transport.matched_default_account is True
            return await ask(transport)

        assert with_transport(server, second)["error_code"] == 0
        assert server.stats["handshake1"] == 1

        async def refused(transport):
            return [
                transport.restore_session({**state, "expires_at": int(time.time()) - 1}),
                transport.restore_session({**state, "host": "127.0.0.1"}),  # emulators never use it
                transport.restore_session({"wire": "klap"}),
                transport.export_session(),
            ]

        assert with_transport(server, refused) == [False, False, False, None]


def test_klap_a_damaged_reply_is_a_protocol_error():
    with klap_server(fault="tampered_reply") as server, pytest.raises(errors.ProtocolError):
        with_transport(server, ask)


# --- AES (securePassthrough) -------------------------------------------------------------------


@pytest.mark.parametrize("login_version", [1, 2])
def test_aes_one_handshake_and_login_serve_many_requests(login_version):
    with aes_server(login_version=login_version) as server:
        replies, default = with_transport(server, twice)
        assert (server.stats["handshakes"], server.stats["logins"]) == (1, 1)
        assert server.connection_count == 1
        assert [r["method"] for r in server.requests] == ["get_device_info"] * 2
    assert all(r["error_code"] == 0 and r["result"]["model"] == "P100" for r in replies)
    assert default is False


@pytest.mark.parametrize("code", [9999, -40401])
def test_aes_session_expiry_mid_run_rehandshakes_once(code):
    with aes_server() as server:
        async def expiring(transport):
            first = await ask(transport)
            server.expire_session(code=code)
            return [first, await ask(transport)]

        replies = with_transport(server, expiring)
        assert server.stats["handshakes"] == 2
    assert all(r["error_code"] == 0 for r in replies)


@pytest.mark.parametrize("fault", ["outer_error", "inner_error"])
def test_aes_a_session_still_expired_after_one_rehandshake_is_a_device_error(fault):
    with aes_server() as server:
        async def expired(transport):
            await ask(transport)
            server.fault, server.fault_code = fault, 9999  # the session lives, the device says otherwise
            await ask(transport)

        with pytest.raises(errors.DeviceError) as caught:
            with_transport(server, expired)
        assert caught.value.code == 9999 and server.stats["handshakes"] == 2


def test_aes_falls_back_to_the_default_account_after_1501():
    # The device drops the session a login was refused in, so each credential gets a handshake
    # of its own (python-kasa aestransport.py: "After a login failure handshake needs to be
    # redone or a 9999 error is received"); reusing it read as "session expired (9999)".
    with aes_server(accepts="test", login_version=1) as server:
        assert with_transport(server, matched_default) is True
        assert (server.stats["logins"], server.stats["login_failures"]) == (2, 1)
        assert server.stats["handshakes"] == 2


def test_aes_refused_credentials_get_a_hint_without_secrets():
    with aes_server(username="owner@example.com", password="Right") as server:
        with pytest.raises(errors.AuthError) as caught:
            with_transport(server, ask, credentials=("owner@example.com", "WrongPassword"))
        assert server.stats["logins"] == 2  # the user's account, then the default one
        assert server.stats["handshakes"] == 2  # each after a handshake of its own
    assert type(caught.value) is errors.AuthError and "refused the credentials" in caught.value.message
    assert "Third-Party Compatibility" in caught.value.hint and "case-sensitive" in caught.value.hint
    assert "WrongPassword" not in str(caught.value)


@pytest.mark.parametrize(
    "fault, error",
    [
        ("outer_error", errors.DeviceError),
        ("not_json", errors.ProtocolError),
        ("undecryptable", errors.ProtocolError),
        ("no_response", errors.ProtocolError),
    ],
)
def test_aes_a_device_error_or_a_garbled_reply_is_one_clear_error(fault, error):
    with aes_server(fault=fault, fault_code=-1008) as server:  # handshake and login still work
        with pytest.raises(error) as caught:
            with_transport(server, ask)
        assert server.stats["logins"] == 1 and server.entries("fault")
    if error is errors.DeviceError:
        assert caught.value.code == -1008
    assert "\n" not in str(caught.value)


def test_aes_an_exported_session_skips_handshake_and_login():
    with aes_server() as server:
        async def first(transport):
            await ask(transport)
            return transport.export_session()

        state = json.loads(json.dumps(with_transport(server, first)))

        async def second(transport):
            assert transport.restore_session(state)
            return await ask(transport)

        assert with_transport(server, second)["error_code"] == 0
        assert (server.stats["handshakes"], server.stats["logins"]) == (1, 1)

        async def refused(transport):
            return [
                transport.restore_session({**state, "expires_at": 0}),
                transport.restore_session({**state, "login_version": 3 - state["login_version"]}),
                transport.restore_session({**state, "key": "zz"}),
                transport.export_session(),
            ]

        assert with_transport(server, refused) == [False, False, False, None]


# --- any HTTP wire -----------------------------------------------------------------------------


@pytest.mark.parametrize("declare", [None, 10**12], ids=["endless-chunks", "absurd-length"])
@pytest.mark.parametrize("wire", ["klap", "aes"])
def test_an_http_device_that_never_stops_talking_is_cut_off(wire, declare):
    async def talk(server: EndlessReplyServer) -> None:
        options = {"version": 2} if wire == "klap" else {}
        kind = KlapTransport if wire == "klap" else AesTransport
        transport = kind(server.host, server.port, credentials=(USERNAME, PASSWORD), timeout=10, **options)
        await transport.send(GET_INFO)

    with EndlessReplyServer(pick_loopback_host(), declare=declare) as server, pytest.raises(errors.ProtocolError, match="larger than 1 MiB"):
        run(talk(server))


# A wire the device no longer speaks is refused in a way the router can tell from any other
# failure (WireRefused), so it finds the device again instead of giving up (tests/test_routes.py).

def test_an_aes_client_at_a_device_moved_to_klap_is_refused_with_1003():
    # python-kasa SmartErrorCode 1003: "seen after an encryption-changing fw upgrade".
    with klap_server() as server:
        async def main():
            transport = AesTransport(server.host, server.port, credentials=(USERNAME, PASSWORD), timeout=5)
            try:
                await transport.send(GET_INFO)
            finally:
                await transport.close()

        with pytest.raises(errors.WireRefused, match=r"refused the AES handshake \(error 1003\)"):
            run(main())


def test_a_klap_client_at_a_device_moved_to_aes_is_refused_with_404():
    with aes_server() as server:
        async def main():
            transport = KlapTransport(server.host, server.port, credentials=(USERNAME, PASSWORD), version=2, timeout=5)
            try:
                await transport.send(GET_INFO)
            finally:
                await transport.close()

        with pytest.raises(errors.WireRefused, match=r"refused the KLAP handshake \(HTTP 404\)"):
            run(main())


@pytest.mark.parametrize("wire", ["xor", "klap"])
def test_a_closed_port_is_a_refused_wire(wire):
    host = pick_loopback_host()
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind((host, 0))
        port = probe.getsockname()[1]

    async def main():
        if wire == "xor":
            transport = XorTransport(host, port, timeout=2)
        else:
            transport = KlapTransport(host, port, credentials=(USERNAME, PASSWORD), version=2, timeout=2)
        await transport.send(SYSINFO)

    with pytest.raises(errors.WireRefused, match="cannot connect"):
        run(main())


# Firmware variations python-kasa's aestransport.py allows for: no session cookie from the
# handshake, and inner replies in plain JSON ("Received unencrypted response over secure
# passthrough").

def test_aes_without_a_session_cookie():
    with aes_server(cookie_style="none") as server:
        replies, _ = with_transport(server, twice)
        assert replies[0]["result"]["model"] == replies[1]["result"]["model"]
        assert server.stats["handshakes"] == 1


def test_aes_replies_in_plain_json_are_taken_as_they_are():
    with aes_server() as server:
        server.plain_replies = True
        replies, _ = with_transport(server, twice)
        assert replies[0]["error_code"] == 0 and "model" in replies[0]["result"]


def test_an_aes_session_without_a_cookie_is_kept_and_resumed():
    with aes_server(cookie_style="none") as server:
        async def first(transport):
            await ask(transport)
            return transport.export_session()

        state = with_transport(server, first)
        assert state["cookie"] is None

        async def resumed(transport):
            assert transport.restore_session(state) is True
            return await ask(transport)

        assert with_transport(server, resumed)["error_code"] == 0
        assert server.stats["handshakes"] == 1


# A P100 closes the connection after each reply without saying so, and python-kasa retries for
# it (issue part 9, point 8): a request written to a connection the device just closed is sent
# once more, on a new one, within the same timeout.

@pytest.mark.parametrize("make", [klap_server, aes_server], ids=["klap", "aes"])
def test_a_device_closing_after_each_reply_answers_every_request(make):
    with make() as server:
        server.close_after_reply = True

        async def five(transport):
            return [await ask(transport) for _ in range(5)]

        replies = with_transport(server, five)
    assert len(replies) == 5 and all(r.get("error_code", 0) == 0 for r in replies)


@pytest.mark.parametrize("make", [klap_server, aes_server], ids=["klap", "aes"])
def test_a_request_the_device_hangs_up_on_is_sent_once_more(make):
    with make() as server:
        async def dropped_once(transport):
            await ask(transport)
            server.drop_requests = 1
            return await ask(transport)

        assert with_transport(server, dropped_once).get("error_code", 0) == 0
        assert len(server.entries("dropped")) == 1


def test_a_device_hanging_up_twice_is_a_network_error():
    with klap_server() as server:
        async def dropped_twice(transport):
            await ask(transport)
            server.drop_requests = 2
            return await ask(transport)

        with pytest.raises(errors.NetworkError, match="closed the connection twice without answering"):
            with_transport(server, dropped_twice)
