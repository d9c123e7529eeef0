"""The client's LAN transports against the independent device emulators, over real sockets.

Client and emulators were written apart and each checked against the protocol vectors
(tests/fixtures/protocol-vectors.json); here they must also agree with each other, including
when a session dies in the middle of a run.
"""

from __future__ import annotations

import asyncio
import json

import httpx
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


async def _twice_with_expiry(make_transport, expire) -> list[dict]:
    async with httpx.AsyncClient(trust_env=False) as client:
        transport = make_transport(client)
        first = json.loads(await transport.request(GET_INFO))
        expire()
        second = json.loads(await transport.request(GET_INFO))
        await transport.close()
    return [first, second]


def test_klap_v2_session_expiry_mid_run_rehandshakes_once():
    device = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json", nickname="Plug")
    with KlapServer(device, pick_loopback_host(), username=USERNAME, password=PASSWORD) as server:
        replies = run(_twice_with_expiry(
            lambda c: KlapTransport(server.host, server.port, credentials=(USERNAME, PASSWORD), version=2, client=c, timeout=5),
            server.expire_sessions,
        ))
        assert server.stats["handshake1"] == 2
    assert all(r["error_code"] == 0 and r["result"]["model"] == "P110" for r in replies)


@pytest.mark.parametrize("code", [9999, -40401])
def test_aes_session_expiry_mid_run_rehandshakes_once(code):
    device = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json", nickname="Plug")
    with AesServer(device, pick_loopback_host(), username=USERNAME, password=PASSWORD) as server:
        replies = run(_twice_with_expiry(
            lambda c: AesTransport(server.host, server.port, credentials=(USERNAME, PASSWORD), login_version=2, client=c, timeout=5),
            lambda: server.expire_session(code=code),
        ))
        assert server.stats["handshakes"] == 2
    assert all(r["error_code"] == 0 for r in replies)


def test_klap_v1_kasa_device_speaks_iot_json():
    device = IotDevice.from_fixture("HS100(UK)_4.1_1.1.0.json", alias="Hall")

    async def ask(server):
        async with httpx.AsyncClient(trust_env=False) as client:
            transport = KlapTransport(server.host, server.port, credentials=(USERNAME, PASSWORD), version=1, client=client, timeout=5)
            return json.loads(await transport.request(SYSINFO))

    with KlapServer(device, pick_loopback_host(), version=1, username=USERNAME, password=PASSWORD) as server:
        reply = run(ask(server))
    assert reply["system"]["get_sysinfo"]["alias"] == "Hall"


@pytest.mark.parametrize(
    "fault, error",
    [("silent", errors.Timeout), ("drip", errors.Timeout), ("absurd_length", errors.ProtocolError), ("reset", errors.TpcloudError)],
)
def test_xor_faults_end_in_one_clear_error_within_the_timeout(fault, error):
    device = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json", alias="Lamp")
    with XorServer(device, pick_loopback_host(), fault=fault) as server:
        loop_time = asyncio.new_event_loop()
        started = loop_time.time()
        with pytest.raises(error) as caught:
            loop_time.run_until_complete(XorTransport(server.host, server.port, timeout=1.0).request(SYSINFO))
        elapsed = loop_time.time() - started
        loop_time.close()
    assert elapsed < 3
    assert "\n" not in str(caught.value)


def test_xor_to_a_closed_port_is_unreachable():
    host = pick_loopback_host(tcp_ports=(9999,))
    with pytest.raises(errors.DeviceUnreachable):
        run(XorTransport(host, 9999, timeout=1.0).request(SYSINFO))


@pytest.mark.parametrize("declare", [None, 10**12], ids=["endless-chunks", "absurd-length"])
@pytest.mark.parametrize("wire", ["klap", "aes"])
def test_an_http_device_that_never_stops_talking_is_cut_off(wire, declare):
    async def ask(server: EndlessReplyServer) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            options = {"version": 2} if wire == "klap" else {}
            kind = KlapTransport if wire == "klap" else AesTransport
            transport = kind(server.host, server.port, credentials=(USERNAME, PASSWORD), client=client, timeout=10, **options)
            await transport.request(GET_INFO)

    with EndlessReplyServer(pick_loopback_host()) as server, pytest.raises(errors.ProtocolError, match="larger than 1024 KiB"):
        run(ask(server))
