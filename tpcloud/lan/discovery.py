"""Finding devices on the LAN: UDP 9999 (legacy Kasa, XOR) and UDP 20002 (newer Kasa and Tapo).

One discovery run opens one UDP socket per port, sends the 9999 XOR query and the 20002 probe to
every target a few times within the timeout, and collects whatever answers until the timeout, from
whichever address it comes (a broadcast target is answered by every device on the segment).
Datagrams that do not parse are logged and ignored, never fatal. Each answer says how to talk to
the device: which wire (XOR, KLAP, AES), which version of it and on which port.

Choices made here:

- Targets are IPv4 addresses. A target that is not an IPv4 literal is resolved with getaddrinfo
  (IPv4 only) within the discovery timeout; a name that does not resolve, an IPv6 address or an
  empty target is a :class:`~tpcloud.errors.UsageError`.
- The 20002 probe carries a fresh RSA-2048 public key as protocols.md §7 describes, generated once
  per process (``cryptography`` is imported only then). Nothing in a discovery reply is decrypted
  with it, so the private half is dropped.
- A 20002 reply is checked for its 16-byte header's size only; its JSON body and ``error_code``
  are the real check (a CRC or length mismatch would not make a parseable answer less true).
- A host answering both ports is reported once: its 20002 answer, unless that one is
  "unsupported" and its 9999 answer is usable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import struct
import zlib
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from tpcloud.devices import dialect_name
from tpcloud.errors import NetworkError, ProtocolError, UsageError
from tpcloud.lan.transport import json_object
from tpcloud.lan.xor import decrypt, discovery_datagram

DEFAULT_TARGET = "255.255.255.255"
PORT_9999 = 9999
PORT_20002 = 20002
DEFAULT_HTTP_PORT = 80
HEADER_LEN = 16
CRC_SEED = 0x5A6B7C8D
WIRES = ("xor", "klap", "aes", "tpap", "unsupported")
DIALECTS = ("iot", "smart", "")

_HEADER = struct.Struct(">BBHHBB4sI")  # version, msg type, op code, length, flags, 0, serial, CRC
_VERSION = 2
_MSG_TYPE = 0
_OP_CODE = 1
_FLAGS = 0x11
# Closing a transport completes on the next loop turn; never wait longer than this for it.
_CLOSE_WAIT = 0.5


class Found(NamedTuple):
    """One device that answered discovery, and how to talk to it."""

    host: str  # the address the reply came from
    port: int  # 9999 for XOR, else mgt_encrypt_schm.http_port (default 80)
    wire: str  # "xor" | "klap" | "aes" | "tpap" | "unsupported"
    version: int  # KLAP version or AES login version (1 or 2); 0 for XOR, TPAP and unsupported
    dialect: str  # "iot" | "smart" ("" when the device type says neither)
    device_type: str
    model: str
    mac: str  # 12 upper-case hex digits, no separators ("" when the reply has none)
    device_id: str  # 9999: sysinfo deviceId (= cloud deviceId); 20002: its 32-hex id (not the cloud's)
    alias: str  # sysinfo alias for 9999 replies, "" for 20002 replies
    encrypt_type: str  # raw 20002 mgt_encrypt_schm.encrypt_type, or "XOR" for 9999

    def to_dict(self) -> dict[str, Any]:
        return dict(self._asdict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Found":
        """Rebuild from :meth:`to_dict` output (extra keys ignored).

        KeyError for a missing field, TypeError for a wrongly typed one, ValueError for a value
        out of range: a cache entry written by another version can be skipped on any of them.
        """
        values: dict[str, Any] = {}
        for name in cls._fields:
            value = d[name]
            if name in ("port", "version"):  # the integers; every other field is a string
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"discovery entry field {name} is not an integer")
            elif not isinstance(value, str):
                raise TypeError(f"discovery entry field {name} is not a string")
            values[name] = value
        if values["wire"] not in WIRES:
            raise ValueError(f"discovery entry has an unknown wire {values['wire']!r}")
        if not 0 < values["port"] < 65536:
            raise ValueError(f"discovery entry has an impossible port {values['port']}")
        return cls(**values)


# ---------------------------------------------------------------------------------- the wire


def choose_wire(dialect: str, encrypt_type: str | None, lv: Any, new_klap: Any = None) -> tuple[str, int]:
    """Wire and version for a device, per protocols.md §7; ("unsupported", 0) when none fits.

    A Kasa (IOT) device on KLAP hashes with v1, unless it says otherwise: ``lv`` 2 or more, or
    ``new_klap`` 1, which firmware-updated HS300s send (home-assistant/core#153390; python-kasa
    #1731 and #1740: those devices refuse v1, which python-kasa's fixed IOT.KLAP mapping sends).
    """
    enc = (encrypt_type or "").strip().upper()
    level = lv if isinstance(lv, int) and not isinstance(lv, bool) else None
    if dialect == "iot":
        if enc == "XOR":
            return "xor", 0
        if enc == "KLAP":
            return "klap", 2 if (level is not None and level >= 2) or new_klap == 1 else 1
    elif dialect == "smart":
        if enc == "KLAP":
            return "klap", 2
        if enc == "AES":
            return "aes", 2 if level == 2 else 1
        if enc == "TPAP":  # spoken to over KLAP v2 (tpcloud.lan.tpap says why)
            return "tpap", 0
    return "unsupported", 0


def normalise_mac(mac: Any) -> str:
    """"48-22-54-aa-bb-cc" / "48:22:54:AA:BB:CC" → "482254AABBCC"; "" when it is not a MAC."""
    if not isinstance(mac, str):
        return ""
    digits = mac.replace(":", "").replace("-", "").replace(".", "").strip().upper()
    if len(digits) != 12 or any(c not in "0123456789ABCDEF" for c in digits):
        return ""
    return digits


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def probe_20002() -> bytes:
    """The 20002 discovery datagram: 16-byte header (CRC32 as §7 says) + the RSA-key JSON."""
    payload = json.dumps({"params": {"rsa_key": _probe_public_key()}}, separators=(",", ":")).encode()
    return packet_20002(payload, os.urandom(4))


def packet_20002(payload: bytes, serial: bytes) -> bytes:
    """Header + payload; the CRC32 is taken over the packet with 0x5A6B7C8D in bytes 12-15."""
    if len(serial) != 4:
        raise ValueError("the 20002 header's serial is 4 bytes")
    if len(payload) > 0xFFFF:
        raise ValueError("a 20002 payload is at most 65535 bytes")
    header = _HEADER.pack(_VERSION, _MSG_TYPE, _OP_CODE, len(payload), _FLAGS, 0, serial, CRC_SEED)
    crc = zlib.crc32(header + payload) & 0xFFFFFFFF
    return header[:12] + struct.pack(">I", crc) + payload


@lru_cache(maxsize=1)
def _probe_public_key() -> str:
    """A throwaway RSA-2048 public key (PEM), made once per process: devices expect one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def parse_20002(data: bytes, host: str) -> Found:
    """Read a UDP 20002 reply (16-byte header + ``{"error_code":0,"result":{...}}``)."""
    what = f"20002 discovery reply from {host}"
    if len(data) < HEADER_LEN:
        raise ProtocolError(f"{what} is {len(data)} bytes, shorter than its {HEADER_LEN}-byte header")
    reply = json_object(data[HEADER_LEN:], what)
    code = reply.get("error_code", 0)
    if code != 0:
        raise ProtocolError(f"{what} carries error_code {code}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise ProtocolError(f"{what} has no result object")
    device_type = _text(result.get("device_type"))
    if not device_type:
        raise ProtocolError(f"{what} has no device_type")
    schm = result.get("mgt_encrypt_schm")
    if not isinstance(schm, dict):
        schm = {}
    encrypt_type = _text(schm.get("encrypt_type"))
    http_port = schm.get("http_port")
    if isinstance(http_port, bool) or not isinstance(http_port, int) or not 0 < http_port < 65536:
        http_port = DEFAULT_HTTP_PORT
    dialect = dialect_name(device_type)
    wire, version = choose_wire(dialect, encrypt_type, schm.get("lv"), schm.get("new_klap"))
    return Found(
        host=host,
        port=PORT_9999 if wire == "xor" else http_port,
        wire=wire,
        version=version,
        dialect=dialect,
        device_type=device_type,
        model=_text(result.get("device_model")),
        mac=normalise_mac(result.get("mac")),
        device_id=_text(result.get("device_id")),
        alias="",
        encrypt_type=encrypt_type,
    )


def parse_9999(data: bytes, host: str) -> Found:
    """Read a UDP 9999 reply: the XOR-encrypted answer to get_sysinfo, without length prefix."""
    what = f"XOR discovery reply from {host}"
    reply = json_object(decrypt(data), what)
    system = reply.get("system")
    sysinfo = system.get("get_sysinfo") if isinstance(system, dict) else None
    if not isinstance(sysinfo, dict):
        raise ProtocolError(f"{what} has no system.get_sysinfo object")
    for scope in (system, sysinfo):
        code = scope.get("err_code", 0)
        if code != 0:
            raise ProtocolError(f"{what} carries err_code {code}")
    wire, version = choose_wire("iot", "XOR", None)
    return Found(
        host=host,
        port=PORT_9999,
        wire=wire,
        version=version,
        dialect="iot",
        device_type=_text(sysinfo.get("mic_type")) or _text(sysinfo.get("type")),
        model=_text(sysinfo.get("model")),
        mac=normalise_mac(sysinfo.get("mac") or sysinfo.get("mic_mac") or sysinfo.get("ethernet_mac")),
        device_id=_text(sysinfo.get("deviceId")),
        alias=_text(sysinfo.get("alias")),
        encrypt_type="XOR",
    )


# ---------------------------------------------------------------------------------- the run


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, kind: str, on_datagram: Callable[[str, bytes, tuple], None],
                 log: Callable[[str], None]) -> None:
        self.kind = kind
        self.on_datagram = on_datagram
        self.log = log
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.on_datagram(self.kind, data, addr)

    def error_received(self, exc: Exception) -> None:
        self.log(f"discovery: UDP {self.kind} socket error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _resolve(targets: Sequence[str], deadline: float) -> list[str]:
    loop = asyncio.get_running_loop()
    out: list[str] = []
    for raw in targets:
        target = raw.strip() if isinstance(raw, str) else ""
        if not target:
            raise UsageError("empty discovery target", hint="give an IPv4 address such as 192.168.1.255")
        try:
            address = ipaddress.ip_address(target)
        except ValueError:
            address = None
        if address is not None:
            if address.version != 4:
                raise UsageError(f"discovery target {target} is not IPv4; devices are found over IPv4 only")
            resolved = str(address)
        else:
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(target, None, family=socket.AF_INET, type=socket.SOCK_DGRAM),
                    max(deadline - loop.time(), 0.001),
                )
                resolved = str(infos[0][4][0])
            except (OSError, UnicodeError, IndexError, asyncio.TimeoutError):
                raise UsageError(
                    f"cannot resolve discovery target {target!r} to an IPv4 address",
                    hint="give an IPv4 address such as 192.168.1.255",
                ) from None
        if resolved not in out:
            out.append(resolved)
    return out


def open_socket() -> socket.socket:
    """A UDP socket that may send to a broadcast address: whether a target is one (a /25's ends
    in .127) cannot be told from the address alone, so every discovery socket may."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("0.0.0.0", 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def discover(
    targets: Sequence[str],
    *,
    timeout: float,
    port_9999: int = PORT_9999,
    port_20002: int = PORT_20002,
    attempts: int = 3,
    log: Callable[[str], None] | None = None,
) -> list[Found]:
    """Every device answering the 9999 or 20002 probe sent to ``targets``, one per address.

    Probes go out ``attempts`` times, spread over the first part of ``timeout``; replies are
    collected until ``timeout`` and the call returns right after, sorted by address. Garbage
    replies and send failures are logged through ``log`` and otherwise ignored.
    """
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise UsageError(f"discovery timeout must be a number of seconds ≥ 0, not {timeout!r}")
    if attempts < 1:
        raise UsageError(f"discovery attempts must be at least 1, not {attempts}")
    if not targets:
        raise UsageError("no discovery target", hint="give an IPv4 address such as 192.168.1.255")
    say: Callable[[str], None] = log or (lambda _msg: None)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    addresses = await _resolve(targets, deadline)

    answers: dict[str, dict[str, Found]] = {"9999": {}, "20002": {}}

    def on_datagram(kind: str, data: bytes, addr: tuple) -> None:
        host = str(addr[0])
        if host in answers[kind]:
            return  # the same device answering a repeated probe
        try:
            found = parse_9999(data, host) if kind == "9999" else parse_20002(data, host)
        except ProtocolError as exc:
            say(f"discovery: ignored {len(data)} bytes from {host}:{addr[1]} on UDP {kind}: {exc}")
            return
        answers[kind][host] = found
        say(f"discovery: {host} answered on UDP {kind}: {found.model or found.device_type} "
            f"({found.wire}{f' v{found.version}' if found.version else ''}, port {found.port})")

    # The first probe makes an RSA key (a fraction of a second): off the event loop.
    probes = {"9999": (discovery_datagram(), port_9999),
              "20002": (await asyncio.to_thread(probe_20002), port_20002)}
    transports: list[asyncio.DatagramTransport] = []
    receivers: list[_Receiver] = []
    try:
        for kind in probes:
            receiver = _Receiver(kind, on_datagram, say)
            try:
                sock = open_socket()
            except OSError as exc:
                raise NetworkError(f"cannot open a UDP socket for discovery ({exc.strerror or exc})") from None
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda r=receiver: r, sock=sock)
            except BaseException:
                sock.close()
                raise
            transports.append(transport)
            receivers.append(receiver)
        start, interval = loop.time(), timeout / (attempts + 1)
        for attempt in range(attempts):
            await asyncio.sleep(max(start + attempt * interval - loop.time(), 0))
            for transport, (datagram, port) in zip(transports, probes.values()):
                for address in addresses:
                    try:
                        transport.sendto(datagram, (address, port))
                    except OSError as exc:  # asyncio reports most through error_received instead
                        say(f"discovery: cannot send to {address}:{port} ({exc.strerror or exc})")
        await asyncio.sleep(max(deadline - loop.time(), 0))
    finally:
        for transport in transports:
            transport.close()
        pending = [r.closed for r in receivers]
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_WAIT)

    merged: dict[str, Found] = dict(answers["9999"])
    for host, found in answers["20002"].items():
        if found.wire != "unsupported" or merged.get(host, found).wire == "unsupported":
            merged[host] = found
    return [merged[h] for h in sorted(merged, key=ipaddress.IPv4Address)]
