"""tpcloud.lan.discovery: the codecs on recorded replies, then discover() over real UDP on loopback.

Every datagram goes to 127.0.0.0/8 only: the emulated devices (tests/doubles/wires) and the garbage
server below bind random 127.x.y.z addresses; nothing is sent to a real network.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import DiscoveryResponder, pick_loopback_host
from tests.doubles.wires import crypto as emu_crypto
from tpcloud.errors import ProtocolError, UsageError
from tpcloud.lan import discovery
from tpcloud.lan.discovery import (DEFAULT_TARGET, Found, choose_wire, discover, parse_9999,
                                   parse_20002, probe_20002)

FIXTURES = Path(__file__).parent / "fixtures"
TIMEOUT = 0.8
MARGIN = 0.5  # discover() must return within timeout + this


# ------------------------------------------------------------------ independent client-side helpers

def header_20002(payload: bytes, serial: bytes = b"\x0a\x0b\x0c\x0d") -> bytes:
    """A 16-byte header built here, from protocols.md §7, not from tpcloud's code."""
    head = bytes([2, 0, 0, 1]) + len(payload).to_bytes(2, "big") + bytes([0x11, 0]) + serial
    crc = zlib.crc32(head + bytes.fromhex("5A6B7C8D") + payload) & 0xFFFFFFFF
    return head + crc.to_bytes(4, "big") + payload


def reply_20002(obj) -> bytes:
    return header_20002(json.dumps(obj).encode())


def run(coro):
    return asyncio.run(coro)


def timed_discover(targets, **kw):
    kw.setdefault("timeout", TIMEOUT)
    logs: list[str] = []
    kw.setdefault("log", logs.append)
    t0 = time.monotonic()
    found = run(discover(targets, **kw))
    elapsed = time.monotonic() - t0
    assert elapsed < kw["timeout"] + MARGIN, f"discover took {elapsed:.2f} s"
    return found, logs


def host_for(*ports: int) -> str:
    return pick_loopback_host(udp_ports=ports or (9999, 20002))


def fixture(kind: str, name: str) -> dict:
    return json.loads((FIXTURES / kind / f"{name}.json").read_text(encoding="utf-8"))


SMART_FIXTURES = sorted(p.stem for p in (FIXTURES / "smart").glob("*.json"))
IOT_FIXTURES = sorted(p.stem for p in (FIXTURES / "iot").glob("*.json"))


# ------------------------------------------------------------------ the probe

def test_probe_20002_header_and_crc():
    pkt = probe_20002()
    version, msg_type, op_code, length, flags, zero = struct.unpack(">BBHHBB", pkt[:8])
    assert (version, msg_type, op_code, flags, zero) == (2, 0, 1, 0x11, 0)
    assert length == len(pkt) - 16
    # CRC recomputed here: 0x5A6B7C8D in bytes 12-15, CRC32 of the whole packet
    check = pkt[:12] + b"\x5a\x6b\x7c\x8d" + pkt[16:]
    assert int.from_bytes(pkt[12:16], "big") == zlib.crc32(check) & 0xFFFFFFFF
    assert pkt == header_20002(pkt[16:], serial=pkt[8:12])
    # the emulator's independent parser accepts it too
    header, payload = emu_crypto.parse_discovery_packet(pkt)
    assert header["version"] == 2 and payload == pkt[16:]
    body = json.loads(pkt[16:])
    pem = body["params"]["rsa_key"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_public_key(pem.encode())
    assert key.key_size == 2048
    # 4 random bytes per probe
    serials = {probe_20002()[8:12] for _ in range(5)}
    assert len(serials) > 1


def test_module_does_not_import_cryptography_or_httpx():
    code = ("import sys, tpcloud.lan.discovery; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('cryptography', 'httpx')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# ------------------------------------------------------------------ parse_20002

EXPECTED_WIRE = {  # from each fixture's discovery_result: (wire, version)
    "L530E(EU)_3.0_1.1.6": ("klap", 2),
    "P100(US)_1.0.0_1.4.0": ("klap", 2),
    "P110(EU)_1.0_1.2.3": ("aes", 2),
    "P110(UK)_1.0_1.3.0": ("klap", 2),
    "EP40M(US)_1.0_1.1.0": ("klap", 2),
    "P115(EU)_1.0_1.2.3": ("aes", 2),
    "P300(EU)_1.0_1.0.15": ("klap", 2),
    "P304M(UK)_1.0_1.0.3": ("klap", 2),  # KLAP, lv 2
}


@pytest.mark.parametrize("name", SMART_FIXTURES)
def test_parse_20002_smart_fixtures(name):
    disc = fixture("smart", name)["discovery_result"]
    res = disc["result"]
    found = parse_20002(reply_20002(disc), "127.9.9.9")
    assert (found.wire, found.version) == EXPECTED_WIRE[name]
    assert found.host == "127.9.9.9"
    assert found.port == res["mgt_encrypt_schm"]["http_port"] == 80
    assert found.dialect == "smart"
    assert found.device_type == res["device_type"] and found.device_type.startswith("SMART.")
    assert found.model == res["device_model"]
    assert found.mac == res["mac"].replace("-", "").upper() and len(found.mac) == 12
    assert found.device_id == res["device_id"]
    assert found.alias == ""
    assert found.encrypt_type == res["mgt_encrypt_schm"]["encrypt_type"]


def test_parse_20002_iot_klap_fixture():
    disc = fixture("iot", "HS100(UK)_4.1_1.1.0")["discovery_result"]
    found = parse_20002(reply_20002(disc), "127.9.9.8")
    assert (found.wire, found.version, found.dialect, found.port) == ("klap", 1, "iot", 80)
    assert found.device_type == "IOT.SMARTPLUGSWITCH" and found.model == "HS100(UK)"
    assert found.mac == "CC32E5000000" and found.encrypt_type == "KLAP"


def test_parse_20002_variants():
    base = fixture("smart", "P110(EU)_1.0_1.2.3")["discovery_result"]

    def with_schm(**schm):
        d = json.loads(json.dumps(base))
        d["result"]["mgt_encrypt_schm"] = schm
        return parse_20002(reply_20002(d), "127.1.1.1")

    f = with_schm(encrypt_type="AES", http_port=8080, lv=1)
    assert (f.wire, f.version, f.port) == ("aes", 1, 8080)
    f = with_schm(encrypt_type="AES")
    assert (f.wire, f.version, f.port) == ("aes", 1, 80)
    f = with_schm(encrypt_type="TPAP", http_port=80, lv=2)  # L530 1.4.2 (home-assistant-tapo-p100#970)
    assert (f.wire, f.version, f.port, f.encrypt_type) == ("tpap", 0, 80, "TPAP")
    f = with_schm()
    assert f.wire == "unsupported" and f.encrypt_type == ""
    d = json.loads(json.dumps(base))
    d["result"]["device_type"] = "IOT.SMARTPLUGSWITCH"
    d["result"]["mgt_encrypt_schm"] = {"encrypt_type": "XOR", "http_port": 80}
    f = parse_20002(reply_20002(d), "127.1.1.1")
    assert (f.wire, f.version, f.port, f.dialect) == ("xor", 0, 9999, "iot")
    d["result"]["device_type"] = "CAMERA.X"
    f = parse_20002(reply_20002(d), "127.1.1.1")
    assert (f.wire, f.dialect) == ("unsupported", "")


@pytest.mark.parametrize("data", [
    b"",
    b"\x02\x00\x00\x01\x00",  # truncated header
    header_20002(b"")[:15],
    header_20002(b""),  # header, no body
    header_20002(b"{not json"),
    header_20002(b"\xff\xfe\x00"),
    header_20002(b"[1, 2]"),
    reply_20002({"error_code": -1, "msg": "nope"}),
    reply_20002({"error_code": 0}),
    reply_20002({"error_code": 0, "result": "x"}),
    reply_20002({"error_code": 0, "result": {"mac": "AA-BB-CC-DD-EE-FF"}}),  # no device_type
], ids=lambda d: repr(d[:24]))
def test_parse_20002_garbage(data):
    with pytest.raises(ProtocolError) as exc:
        parse_20002(data, "127.5.5.5")
    assert "127.5.5.5" in str(exc.value) and "\n" not in str(exc.value)


# ------------------------------------------------------------------ parse_9999

@pytest.mark.parametrize("name", IOT_FIXTURES)
def test_parse_9999_iot_fixtures(name):
    sysinfo = fixture("iot", name)["system"]["get_sysinfo"]
    data = emu_crypto.xor_encrypt(json.dumps({"system": {"get_sysinfo": sysinfo}}).encode())
    found = parse_9999(data, "127.8.8.8")
    assert (found.host, found.port, found.wire, found.version) == ("127.8.8.8", 9999, "xor", 0)
    assert found.dialect == "iot" and found.encrypt_type == "XOR"
    assert found.device_type == (sysinfo.get("mic_type") or sysinfo.get("type"))
    assert found.model == sysinfo["model"]
    raw_mac = sysinfo.get("mac") or sysinfo.get("mic_mac")
    assert found.mac == raw_mac.replace(":", "").replace("-", "").upper() and len(found.mac) == 12
    assert found.device_id == sysinfo["deviceId"]
    assert found.alias == sysinfo["alias"]


@pytest.mark.parametrize("plain", [
    b"",
    b"not json",
    b"[1]",
    b'{"system":{}}',
    b'{"system":{"get_sysinfo":"x"}}',
    b'{"system":{"get_sysinfo":{"err_code":-1}}}',
    b'{"system":{"err_code":-2,"get_sysinfo":{}}}',
])
def test_parse_9999_garbage(plain):
    with pytest.raises(ProtocolError) as exc:
        parse_9999(emu_crypto.xor_encrypt(plain), "127.5.5.6")
    assert "127.5.5.6" in str(exc.value)
    with pytest.raises(ProtocolError):
        parse_9999(os.urandom(40) + b"\x00", "127.5.5.6")


# ------------------------------------------------------------------ choose_wire: protocols.md §7

@pytest.mark.parametrize("dialect,enc,lv,expected", [
    ("iot", "XOR", None, ("xor", 0)),
    ("iot", "KLAP", None, ("klap", 1)),
    ("iot", "KLAP", 1, ("klap", 1)),
    ("iot", "KLAP", 2, ("klap", 2)),
    ("iot", "KLAP", 3, ("klap", 2)),
    ("smart", "KLAP", None, ("klap", 2)),
    ("smart", "KLAP", 2, ("klap", 2)),
    ("smart", "AES", 2, ("aes", 2)),
    ("smart", "AES", None, ("aes", 1)),
    ("smart", "AES", 1, ("aes", 1)),
    ("smart", "TPAP", 2, ("tpap", 0)),
    ("smart", "TPAP", None, ("tpap", 0)),
    ("iot", "TPAP", None, ("unsupported", 0)),
    ("iot", "AES", 2, ("unsupported", 0)),
    ("smart", "XOR", None, ("unsupported", 0)),
    ("smart", "", None, ("unsupported", 0)),
    ("", "KLAP", 2, ("unsupported", 0)),
    ("iot", "KLAP", "2", ("klap", 1)),
])
def test_choose_wire(dialect, enc, lv, expected):
    assert choose_wire(dialect, enc, lv) == expected


def test_a_kasa_device_saying_new_klap_hashes_with_v2():
    # An HS300 after a firmware update: "encrypt_type: KLAP, new_klap: 1, lv: 2" (home-assistant/
    # core#153390); with new_klap alone it still refuses v1 (python-kasa #1740).
    assert choose_wire("iot", "KLAP", None, 1) == ("klap", 2)
    assert choose_wire("iot", "KLAP", None, 0) == ("klap", 1)
    assert choose_wire("smart", "KLAP", None, 1) == ("klap", 2)


def test_every_discovery_socket_may_broadcast():
    # A /25's broadcast address ends in .127: which target is a broadcast cannot be told, so
    # every socket may send to one (nothing is sent here).
    with discovery.open_socket() as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) != 0


# ------------------------------------------------------------------ Found

def test_found_round_trip_and_bad_entries():
    f = Found("127.0.0.9", 80, "klap", 2, "smart", "SMART.TAPOPLUG", "P100", "AABBCCDDEEFF",
              "0" * 32, "", "KLAP")
    d = f.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert Found.from_dict({**d, "extra": 1}) == f
    with pytest.raises(KeyError):
        Found.from_dict({k: v for k, v in d.items() if k != "wire"})
    with pytest.raises(TypeError):
        Found.from_dict({**d, "port": "80"})
    with pytest.raises(TypeError):
        Found.from_dict({**d, "mac": None})
    with pytest.raises(ValueError):
        Found.from_dict({**d, "wire": "carrier-pigeon"})
    with pytest.raises(ValueError):
        Found.from_dict({**d, "port": 0})


# ------------------------------------------------------------------ discover() against the emulators

def test_discover_xor_plug_on_9999():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Porch")
    h = host_for()
    with DiscoveryResponder(plug, h) as disc:
        assert disc.udp9999 and not disc.udp20002
        found, logs = timed_discover([h])
        assert disc.answered["9999"] == 3  # probed 3 times, reported once
    assert found == [Found(h, 9999, "xor", 0, "iot", "IOT.SMARTPLUGSWITCH", "HS103(US)", plug.mac,
                           plug.device_id, "Porch", "XOR")]
    assert any(h in line for line in logs)


def test_discover_several_devices_at_once():
    tapo_klap = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    tapo_aes = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    kasa_klap = IotDevice.from_fixture("HS100(UK)_4.1_1.1.0", alias="Kettle")
    xor_plug = IotDevice.from_fixture("KP115(US)_1.0_1.0.21", alias="Fridge")
    hosts = [host_for() for _ in range(4)]
    responders = [
        DiscoveryResponder(tapo_klap, hosts[0], encrypt_type="KLAP", http_port=8001, lv=2),
        DiscoveryResponder(tapo_aes, hosts[1], encrypt_type="AES", http_port=8002, lv=2),
        DiscoveryResponder(kasa_klap, hosts[2], udp9999=False, encrypt_type="KLAP", http_port=8003),
        DiscoveryResponder(xor_plug, hosts[3]),
    ]
    try:
        for r in responders:
            r.start()
        silent = host_for()  # nothing listens there
        found, _ = timed_discover([silent, *reversed(hosts)])
        answered = [dict(r.answered) for r in responders]
    finally:
        for r in responders:
            r.stop()
    by_host = {f.host: f for f in found}
    assert set(by_host) == set(hosts) and len(found) == 4  # one entry per device
    a, b, c, d = (by_host[h] for h in hosts)
    assert (a.wire, a.version, a.port, a.dialect) == ("klap", 2, 8001, "smart")
    assert (a.mac, a.model, a.device_id) == (tapo_klap.mac, "P100", responders[0].discovery_id())
    assert a.device_type == "SMART.TAPOPLUG" and a.encrypt_type == "KLAP" and a.alias == ""
    assert (b.wire, b.version, b.port, b.dialect) == ("aes", 2, 8002, "smart")
    assert (b.mac, b.model, b.encrypt_type) == (tapo_aes.mac, "P110(EU)", "AES")
    assert len(b.device_id) == 32 and b.device_id != tapo_aes.device_id
    assert (c.wire, c.version, c.port, c.dialect) == ("klap", 1, 8003, "iot")
    assert (c.mac, c.model, c.device_type) == (kasa_klap.mac, "HS100(UK)", "IOT.SMARTPLUGSWITCH")
    assert c.alias == "" and c.device_id == responders[2].discovery_id()
    assert (d.wire, d.version, d.port, d.alias, d.mac) == ("xor", 0, 9999, "Fridge", xor_plug.mac)
    assert d.device_id == xor_plug.device_id
    # each was probed 3 times on its port and answered each time: still one entry each
    assert [x["20002"] for x in answered[:3]] == [3, 3, 3] and answered[3]["9999"] == 3
    assert found == sorted(found, key=lambda f: tuple(int(p) for p in f.host.split(".")))
    # every probe carried an RSA public key
    assert all(e["has_rsa_key"] for r in responders[:3] for e in r.entries("probe"))


def test_discover_host_answering_both_ports():
    usable = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Both")
    tpap = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4", alias="Old wire wins")
    only_tpap = SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6")
    h1, h2, h3 = host_for(), host_for(), host_for()
    with DiscoveryResponder(usable, h1, udp9999=True, udp20002=True, encrypt_type="KLAP",
                            http_port=8004, lv=2) as r1, \
            DiscoveryResponder(tpap, h2, udp9999=True, udp20002=True, encrypt_type="TPAP") as r2, \
            DiscoveryResponder(only_tpap, h3, encrypt_type="TPAP", lv=3):
        found, _ = timed_discover([h1, h2, h3])
        assert r1.answered == {"9999": 3, "20002": 3} and r2.answered == {"9999": 3, "20002": 3}
    by_host = {f.host: f for f in found}
    assert len(found) == 3
    # 20002 answer kept when usable
    assert (by_host[h1].wire, by_host[h1].version, by_host[h1].port) == ("klap", 2, 8004)
    assert by_host[h1].alias == "" and by_host[h1].encrypt_type == "KLAP"
    # unsupported 20002 answer, usable 9999 one: XOR
    assert (by_host[h2].wire, by_host[h2].port, by_host[h2].alias) == ("xor", 9999, "Old wire wins")
    # only a TPAP answer: the tpap wire (KLAP v2 under it)
    assert (by_host[h3].wire, by_host[h3].version, by_host[h3].encrypt_type) == ("tpap", 0, "TPAP")
    assert by_host[h3].dialect == "smart" and by_host[h3].mac == only_tpap.mac


def test_discover_silent_targets_return_empty_within_timeout():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    h = host_for()
    with DiscoveryResponder(plug, h) as disc:
        disc.silent = True
        found, _ = timed_discover([h, host_for()], timeout=0.6)
        assert len(disc.entries("probe")) == 3  # it heard the probes, said nothing
    assert found == []
    found, _ = timed_discover([host_for()], timeout=0)
    assert found == []


def test_discover_custom_ports_and_attempts():
    port_a, port_b = random.randint(40000, 50000), random.randint(50001, 60000)
    h = pick_loopback_host(udp_ports=(port_a, port_b))
    dev = SmartDevice.from_fixture("P300(EU)_1.0_1.0.15")
    with DiscoveryResponder(dev, h, port_20002=port_b, port_9999=port_a, encrypt_type="KLAP",
                            http_port=8005) as disc:
        found, _ = timed_discover([h], port_9999=port_a, port_20002=port_b, attempts=5)
        assert disc.answered["20002"] == 5
    assert [(f.host, f.wire, f.version, f.port) for f in found] == [(h, "klap", 2, 8005)]


def test_discover_loopback_broadcast():
    """A target ending in .255 (here 127.255.255.255, still loopback) needs SO_BROADCAST."""
    port_a, port_b = random.randint(40000, 50000), random.randint(50001, 60000)
    hosts = [pick_loopback_host(udp_ports=(port_a, port_b)) for _ in range(2)]
    devs = [IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias=f"B{i}") for i in range(2)]
    tapo = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")
    responders = [DiscoveryResponder(devs[0], hosts[0], port_9999=port_a, broadcast=True),
                  DiscoveryResponder(tapo, hosts[1], port_20002=port_b, encrypt_type="KLAP",
                                     http_port=8006, lv=2, broadcast=True)]
    try:
        for r in responders:
            r.start()
        found, _ = timed_discover(["127.255.255.255"], port_9999=port_a, port_20002=port_b)
    finally:
        for r in responders:
            r.stop()
    by_host = {f.host: f for f in found}  # other suites may share the port: check ours only
    assert (by_host[hosts[0]].wire, by_host[hosts[0]].alias) == ("xor", "B0")
    assert (by_host[hosts[1]].wire, by_host[hosts[1]].port, by_host[hosts[1]].mac) == ("klap", 8006, tapo.mac)


# ------------------------------------------------------------------ garbage on the wire

class GarbageServer:
    """Answers every datagram on (host, 9999) and (host, 20002) with junk, then one good reply."""

    def __init__(self, host: str, port_9999: int = 9999, port_20002: int = 20002) -> None:
        self.host = host
        self.socks = {}
        for kind, port in (("9999", port_9999), ("20002", port_20002)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, port))
            s.settimeout(0.05)
            self.socks[kind] = s
        self.stop = threading.Event()
        self.heard = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def junk(self, kind: str) -> list[bytes]:
        if kind == "9999":
            return [b"", b"\x00", os.urandom(64), emu_crypto.xor_encrypt(b"{not json"), emu_crypto.xor_encrypt(b'"just a string"'),
                    emu_crypto.xor_encrypt(b'{"system":{"get_sysinfo":{"err_code":-1}}}'), b"\xff" * 3000]
        return [b"", b"\x02\x00\x00\x01\x00\x05", os.urandom(15), header_20002(b"{bad json"),
                header_20002(b"\xc3\x28"), reply_20002({"error_code": -40401}),
                reply_20002({"error_code": 0, "result": None}), reply_20002([1, 2, 3]),
                # then a real answer, which must still count
                reply_20002({"error_code": 0, "result": {
                    "device_type": "SMART.KASAPLUG", "device_model": "KP125M(US)",
                    "device_id": "ab" * 16, "mac": "a8:42:a1:01:02:03",
                    "mgt_encrypt_schm": {"encrypt_type": "KLAP", "http_port": 80, "lv": 2}}})]

    def _run(self) -> None:
        while not self.stop.is_set():
            for kind, s in self.socks.items():
                try:
                    data, addr = s.recvfrom(65535)
                except (socket.timeout, OSError):
                    continue
                assert addr[0].startswith("127.")
                self.heard += 1
                for j in self.junk(kind):
                    s.sendto(j, addr)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(2)
        for s in self.socks.values():
            s.close()


def test_discover_ignores_garbage():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Fine")
    g, h = host_for(), host_for()
    with GarbageServer(g) as garbage, DiscoveryResponder(plug, h):
        found, logs = timed_discover([g, h])
        assert garbage.heard == 6
    by_host = {f.host: f for f in found}
    assert set(by_host) == {g, h}
    assert (by_host[h].wire, by_host[h].alias) == ("xor", "Fine")
    assert (by_host[g].wire, by_host[g].version, by_host[g].mac) == ("klap", 2, "A842A1010203")
    ignored = [line for line in logs if "ignored" in line]
    assert len(ignored) >= 7 + 8  # the junk of the first round at least (later rounds too, for 9999)
    assert all(g in line and "\n" not in line for line in ignored)


# ------------------------------------------------------------------ targets and arguments

def test_discover_closes_its_sockets():
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    before = len(list(fd_dir.iterdir()))

    async def many():
        for _ in range(5):
            await discover([host_for()], timeout=0.05)

    run(many())
    assert len(list(fd_dir.iterdir())) <= before + 1  # +1: asyncio.run's own loop leftovers at most


@pytest.mark.parametrize("targets", [[""], ["::1"], ["fe80::1"], []])
def test_discover_rejects_bad_targets(targets):
    with pytest.raises(UsageError):
        run(discover(targets, timeout=0.2))


def test_discover_rejects_bad_arguments():
    with pytest.raises(UsageError):
        run(discover(["127.0.0.1"], timeout=-1))
    with pytest.raises(UsageError):
        run(discover(["127.0.0.1"], timeout=0.1, attempts=0))


def test_discover_resolves_names(monkeypatch):
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="Named")
    h = host_for()
    asked = []

    async def fake_getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        asked.append((host, family))
        if host == "plug.test":
            return [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", (h, 0))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", fake_getaddrinfo)
    with DiscoveryResponder(plug, h):
        found, _ = timed_discover(["plug.test"])
    assert [(f.host, f.alias) for f in found] == [(h, "Named")]
    assert asked == [("plug.test", socket.AF_INET)]
    with pytest.raises(UsageError) as exc:
        run(discover(["no-such.test"], timeout=0.2))
    assert "no-such.test" in str(exc.value)


def test_default_target_constant_only():
    # the default is what real users need; tests never send there
    assert discovery.DEFAULT_TARGET == DEFAULT_TARGET == "255.255.255.255"
