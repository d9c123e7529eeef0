"""Every parser fed damaged input: only tpcloud's own errors may come out, never a crash.

Inputs are either random bytes or real device replies (tests/fixtures) with fields removed or
replaced by values of the wrong type, which is how firmware differences look in practice.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import struct
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.doubles.devices.iot import load_fixture
from tests.doubles.wires import crypto as emu_crypto
from tpcloud.capabilities import energy
from tpcloud.devices import Device, Outlet, Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import TpcloudError
from tpcloud.lan import discovery, xor

FUZZ = settings(
    max_examples=int(os.environ.get("TPCLOUD_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def survives(parse: Callable[[], Any]) -> None:
    """PARSE either returns or raises a TpcloudError; anything else is a bug found."""
    try:
        parse()
    except TpcloudError:
        pass


def _damage_once(draw: st.DrawFn, node: dict | list) -> None:
    """Walk down from NODE, one random key per level, and remove or replace where it stops."""
    key = draw(st.sampled_from(list(node.keys()) if isinstance(node, dict) else range(len(node))))
    child = node[key]
    if isinstance(child, (dict, list)) and child and draw(st.booleans()):
        _damage_once(draw, child)
    elif isinstance(node, dict) and draw(st.booleans()):
        del node[key]
    else:
        node[key] = draw(JSON)


@st.composite
def damaged(draw: st.DrawFn, document: dict) -> dict:
    """DOCUMENT with one to four fields removed or replaced by a value of any JSON type."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        if doc:
            _damage_once(draw, doc)
    return doc


# -- real replies to damage -----------------------------------------------------------------

STRIP_SYSINFO = load_fixture("HS300(US)_2.0_1.0.12.json")["system"]["get_sysinfo"]
BULB_SYSINFO = load_fixture("KL130(US)_1.0_1.8.11.json")["system"]["get_sysinfo"]
_P300 = load_fixture("P300(EU)_1.0_1.0.15.json", kind="smart")
P300_INFO = {**_P300["get_device_info"], "children": _P300["get_child_device_list"]["child_device_list"]}
P100_INFO = load_fixture("P100(US)_1.0.0_1.4.0.json", kind="smart")["get_device_info"]
CLOUD_ENTRY = {
    "deviceType": "SMART.TAPOPLUG", "role": 0, "fwVer": "1.4.0 Build 20230607", "appServerUrl": "https://eu-wap.tplinkcloud.com",
    "deviceRegion": "eu-west-1", "deviceId": "80223F1B", "deviceName": "P100", "deviceHwVer": "1.0.0",
    "alias": "TGl2aW5nIFJvb20=", "deviceMac": "AABBCCDDEEFF", "oemId": "X", "deviceModel": "P100(US)", "hwId": "Y",
    "fwId": "Z", "isSameRegion": True, "status": 1,
}
IOT_DEVICE = Device(device_id="8006ABCD", alias="Strip", model="HS300(US)", device_type="IOT.SMARTPLUGSWITCH",
                    online=True, app_server_url="", mac="", firmware="", hardware="")
SMART_DEVICE = Device(device_id="8022ABCD", alias="Strip", model="P300(EU)", device_type="SMART.TAPOPLUG",
                      online=True, app_server_url="", mac="", firmware="", hardware="")


def _exercise(dialect: Any, device: Device, info: Any, outlets: list[Outlet]) -> None:
    """Everything a command does with a device's state reply."""
    if not isinstance(info, dict):
        return
    survives(lambda: dialect.outlets_of(info, device.device_id))
    survives(lambda: dialect.is_on(info))
    survives(lambda: dialect.summary(device, info))
    for outlet in outlets:
        survives(lambda: dialect.is_on(info, outlet))
        survives(lambda: dialect.summary(device, info, outlet))


# -- dialects --------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(damaged(STRIP_SYSINFO), damaged(BULB_SYSINFO)))
def test_iot_sysinfo_with_damaged_fields(sysinfo):
    outlets = iot.outlets_of(STRIP_SYSINFO, IOT_DEVICE.device_id)
    survives(lambda: iot.sysinfo_of({"system": {"get_sysinfo": sysinfo}}))
    _exercise(iot, IOT_DEVICE, sysinfo, outlets)


@FUZZ
@given(damaged({"system": {"get_sysinfo": {"err_code": 0, "relay_state": 1}, "set_relay_state": {"err_code": 0}}}))
def test_iot_reply_envelopes(reply):
    survives(lambda: iot.check(reply))
    survives(lambda: iot.sysinfo_of(reply))


@FUZZ
@given(st.one_of(damaged(P300_INFO), damaged(P100_INFO)))
def test_smart_device_info_with_damaged_fields(info):
    _exercise(smart, SMART_DEVICE, info, smart.outlets_of(P300_INFO))


@FUZZ
@given(damaged({"error_code": 0, "result": {"responseData": {"error_code": 0, "result": {"device_on": True}}}}))
def test_smart_reply_envelopes(reply):
    survives(lambda: smart.check(reply))


@FUZZ
@given(damaged({"error_code": 0, "result": {"child_device_list": P300_INFO["children"]}}), damaged({"error_code": 0, "result": P300_INFO}))
def test_smart_state_read_with_damaged_replies(children_reply, info_reply):
    import asyncio

    async def send(request: dict) -> Any:
        return children_reply if request["method"] == "get_child_device_list" else info_reply

    survives(lambda: asyncio.run(smart.read_state(send)))


_DAY = datetime.date(2025, 6, 14)
IOT_METER = {"emeter": {
    **load_fixture("HS110(EU)_4.0_1.0.4.json")["emeter"],
    "get_daystat": {"err_code": 0, "day_list": [{"year": 2025, "month": 6, "day": 14, "energy_wh": 120}]},
    "get_monthstat": {"err_code": 0, "month_list": [{"year": 2025, "month": 6, "energy_wh": 900}]},
}}
SMART_USAGE = {"error_code": 0, "result": load_fixture("P110(EU)_1.0_1.2.3.json", kind="smart")["get_energy_usage"]}
SMART_DATA = {"error_code": 0, "result": {"local_time": "2025-06-14 10:00:00", "data": [0, 120, 35],
                                           "start_timestamp": 1743465600, "end_timestamp": 1743465600, "interval": 1440}}


def _energy_commands(device: Device, send: Callable[[dict], Any]) -> None:
    """`energy NAME`, `--daily` and `--monthly`, each answered by SEND."""
    import asyncio

    async def reply(request: dict) -> Any:
        return send(request)

    target = Target(device, None)
    survives(lambda: asyncio.run(energy.reading(_DAY)(target, reply)))
    for period in (energy.DAILY, energy.MONTHLY):
        survives(lambda: asyncio.run(energy.history(period, 2025, 5, _DAY)(target, reply)))


@FUZZ
@given(damaged(IOT_METER))
def test_iot_meter_replies_with_damaged_fields(reply):
    _energy_commands(IOT_DEVICE._replace(model="HS110(EU)"), lambda request: reply)


@FUZZ
@given(damaged(SMART_USAGE), damaged(SMART_DATA))
def test_smart_meter_replies_with_damaged_fields(usage, data):
    answers = {"get_energy_usage": usage, "get_current_power": usage, "get_energy_data": data}
    _energy_commands(SMART_DEVICE._replace(model="P110(EU)"), lambda request: answers.get(request["method"], {"error_code": -1002}))


@FUZZ
@given(damaged(CLOUD_ENTRY))
def test_cloud_device_entries(entry):
    survives(lambda: Device.from_cloud(entry).to_dict())


# -- wire formats ------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=64))
def test_xor_frames_and_datagrams_of_random_bytes(data):
    survives(lambda: xor.unframe(data))
    survives(lambda: xor.parse_datagram(data))
    survives(lambda: discovery.parse_9999(data, "127.0.0.2"))


@FUZZ
@given(st.binary(min_size=4, max_size=4))
def test_no_length_prefix_is_believed_beyond_the_bound(header):
    try:
        length = xor.frame_length(header)
    except TpcloudError:
        assert struct.unpack(">I", header)[0] > xor.MAX_FRAME
    else:
        assert length <= xor.MAX_FRAME


@FUZZ
@given(damaged({"system": {"get_sysinfo": STRIP_SYSINFO}}))
def test_xor_discovery_replies_with_damaged_sysinfo(reply):
    datagram = emu_crypto.xor_encrypt(json.dumps(reply).encode())
    survives(lambda: discovery.parse_9999(datagram, "127.0.0.2"))


@FUZZ
@given(st.binary(max_size=64))
def test_20002_replies_of_random_bytes(data):
    survives(lambda: discovery.parse_20002(data, "127.0.0.2"))


@FUZZ
@given(damaged({"error_code": 0, "result": load_fixture("P100(US)_1.0.0_1.4.0.json", kind="smart")["discovery_result"]}))
def test_20002_replies_with_damaged_json(reply):
    packet = emu_crypto.discovery_packet(json.dumps(reply).encode())
    survives(lambda: discovery.parse_20002(packet, "127.0.0.2"))


@FUZZ
@given(st.binary(max_size=96), st.integers(-(2**31), 2**31 - 1))
def test_klap_replies_of_random_bytes(body, seq):
    from tpcloud.lan.klap import KlapSession

    session = KlapSession(b"l" * 16, b"r" * 16, b"a" * 32)
    survives(lambda: session.decrypt(seq, body))


@FUZZ
@given(st.one_of(st.text(max_size=64), st.binary(max_size=48).map(lambda b: __import__("base64").b64encode(b).decode())))
def test_aes_envelopes_of_random_text(text):
    from tpcloud.dialects.smart import check
    from tpcloud.lan.aes import AesCipher
    from tpcloud.lan.transport import json_object

    survives(lambda: AesCipher(b"k" * 16, b"i" * 16).decrypt(text))
    survives(lambda: check(json_object(text.encode(), "SMART reply")))


@FUZZ
@given(
    st.integers(100, 599),
    st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()),
              damaged({"error_code": 0, "result": {"deviceList": [CLOUD_ENTRY]}}).map(lambda v: json.dumps(v).encode())),
)
def test_cloud_envelopes(status, content):
    from tpcloud.cloud.client import Reply, _parse

    survives(lambda: _parse(Reply(status, (), content), "getDeviceList"))


@pytest.mark.parametrize("bad", [b"", b"{", b"[]", b'"x"', b"null", b'{"error_code":"0"}', b'{"error_code":0,"result":[]}'])
def test_cloud_envelopes_that_are_not_replies_are_cloud_errors(bad):
    from tpcloud.cloud.client import Reply, _parse
    from tpcloud.errors import CloudError

    with pytest.raises(CloudError):
        _parse(Reply(200, (), bad), "getDeviceList")


# -- replies over HTTP: whatever a device answers, its HTTP client and the transports end in -----
# -- tpcloud's errors. The device is a server on loopback in the same event loop. ---------------

COOKIES = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.builds(lambda name, life: f"{name}=ABC;TIMEOUT={life}", st.sampled_from(["TP_SESSIONID", "SESSIONID", "x"]), JSON.map(ascii)),
)
HTTP_REPLIES = st.one_of(
    st.binary(max_size=128),
    st.builds(
        lambda line, headers, body: line + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body,
        st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 200 OK\r\n", b"HTTP/1.1 204 X\n", b"HTTP/1.1 99\r\n", b"HTTP/2 200\r\n"]),
        st.lists(st.one_of(
            st.sampled_from([b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 99999999999",
                             b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", b"Connection: close"]),
            st.binary(max_size=30).filter(lambda b: b"\n" not in b),
        ), max_size=4),
        st.one_of(st.binary(max_size=64), st.sampled_from([b"5\r\nhello\r\n0\r\n\r\n", b"5;x\r\nhel", b"zz\r\n", b"hello"])),
    ),
)


def _http_reply(status: int, body: bytes, cookie: str | None) -> bytes:
    cookie_line = f"Set-Cookie: {cookie}\r\n" if cookie is not None else ""
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{cookie_line}\r\n".encode() + body


def _post_survives(reply: bytes, send: Callable[[str, int], Any], *, keep_open: bool) -> None:
    """SEND(host, port) to a device answering every request with REPLY, then hanging up unless KEEP_OPEN."""
    import asyncio
    import contextlib
    import re

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head)[1]))
                writer.write(reply)
                await writer.drain()
                if not keep_open:
                    break
        writer.close()

    async def attempt() -> None:
        async with await asyncio.start_server(answer, "127.0.0.1", 0) as server:
            await send("127.0.0.1", server.sockets[0].getsockname()[1])

    survives(lambda: asyncio.run(attempt()))


async def _sent_once(transport: Any) -> None:
    try:
        await transport.send(b'{"method":"get_device_info"}')
    finally:
        await transport.close()


@FUZZ
@given(HTTP_REPLIES)
def test_http_replies(reply):
    from tpcloud.lan.http import DeviceHttp

    async def post(host: str, port: int) -> None:
        client = DeviceHttp(host, port)
        try:
            await client.post("/app", b"{}", timeout=5)
        finally:
            await client.close()

    _post_survives(reply, post, keep_open=False)


@FUZZ
@given(st.sampled_from([200, 200, 200, 400, 403, 500]), st.one_of(st.binary(max_size=64), st.binary(min_size=48, max_size=48)), COOKIES)
def test_klap_handshake_replies(status, body, cookie):
    from tpcloud.lan.klap import KlapTransport

    _post_survives(_http_reply(status, body, cookie), keep_open=True, send=lambda host, port: _sent_once(
        KlapTransport(host, port, credentials=("a@b.c", "pw"), version=2, timeout=5)))


@FUZZ
@given(
    st.sampled_from([200, 200, 200, 500]),
    st.one_of(st.binary(max_size=64), damaged({"error_code": 0, "result": {"key": "QUJD" * 43}}).map(lambda v: json.dumps(v).encode())),
    COOKIES,
)
def test_aes_handshake_replies(status, body, cookie):
    from tpcloud.lan.aes import AesTransport

    _post_survives(_http_reply(status, body, cookie), keep_open=True, send=lambda host, port: _sent_once(
        AesTransport(host, port, credentials=("a@b.c", "pw"), timeout=5)))
