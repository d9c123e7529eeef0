"""Wire layer: UDP discovery responders for one emulated device: 9999 (legacy XOR) and 20002 (newer devices).

    with XorServer(plug, host="127.0.0.2") as xs, DiscoveryResponder.for_server(xs):
        ...  # answers {"system":{"get_sysinfo":{}}} on 127.0.0.2:9999

    with KlapServer(tapo, host="127.0.0.3") as ks, DiscoveryResponder.for_server(ks):
        ...  # answers 20002 probes on 127.0.0.3:20002 with encrypt_type KLAP, http_port ks.port

- 9999: the datagram is the XOR-encrypted JSON request without a length prefix; the reply is the
  device's answer to it, encrypted the same way, sent from (host, 9999).
- 20002: the probe must have a valid 16-byte header (version 2, length matching, CRC as in
  protocols.md §7) and a JSON body; otherwise it is ignored (logged as ``ignored``).  The reply
  is a 16-byte header (same layout, same 4 random bytes, its own CRC) + ``{"error_code":0,
  "result":{...}}`` shaped like the fixtures' ``discovery_result``: ``device_type``,
  ``device_model``, ``device_id`` (32 hex, not the 40-hex cloud id), ``ip``, ``mac``
  ("AA-BB-CC-DD-EE-FF"), ``mgt_encrypt_schm`` {``encrypt_type``, ``http_port``,
  ``is_support_https``, ``lv`` (omitted when None)}, ``obd_src``, ``factory_default``, ...

``broadcast=True`` also listens on 127.255.255.255 (SO_REUSEADDR, so many responders can share it)
and answers from the device's own address, like a real LAN.  Off by default: other test suites on
the same machine could broadcast there too.  ``silent = True`` stops answering (device offline).
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
from typing import Callable

from ._base import EmulatorBase, check_loopback
from .crypto import (DiscoveryHeaderError, discovery_packet, parse_discovery_packet,
                     xor_decrypt, xor_encrypt)

LOOPBACK_BROADCAST = "127.255.255.255"


def _mac_dashes(mac: str) -> str:
    m = mac.replace(":", "").replace("-", "").upper()
    return "-".join(m[i:i + 2] for i in range(0, 12, 2)) if len(m) == 12 else mac


class DiscoveryResponder(EmulatorBase):
    def __init__(self, device, host: str = "127.0.0.2", *, udp9999: bool | None = None,
                 udp20002: bool | None = None, encrypt_type: str | None = None,
                 http_port: int | None = None, lv: int | None = None,
                 is_support_https: bool = False, port_9999: int = 9999,
                 port_20002: int = 20002, broadcast: bool = False,
                 result_overrides: dict | None = None):
        super().__init__(host, 0)
        smart = getattr(device, "dialect", None) == "smart"
        self.device = device
        self.udp9999 = (not smart) if udp9999 is None else udp9999
        self.udp20002 = (smart or encrypt_type is not None) if udp20002 is None else udp20002
        if not (self.udp9999 or self.udp20002):
            raise ValueError("nothing to answer: enable udp9999 or udp20002")
        self.encrypt_type = encrypt_type or ("KLAP" if smart else "XOR")
        self.http_port = 80 if http_port is None else http_port
        self.lv = lv
        self.is_support_https = is_support_https
        self.port_9999 = port_9999
        self.port_20002 = port_20002
        self.port = port_20002 if self.udp20002 else port_9999
        self.broadcast = broadcast
        self.result_overrides = result_overrides or {}
        self.silent = False
        # Called on each valid 20002 probe before the answer: a P110 on 1.4.6 opens its local
        # server only once probed (home-assistant-tapo-p100#958); give it the server's start.
        self.on_probe: Callable[[], object] | None = None
        self.answered = {"9999": 0, "20002": 0}
        self._socks: list[socket.socket] = []

    @classmethod
    def for_server(cls, server, **kw) -> "DiscoveryResponder":
        """Responder advertising an XorServer / KlapServer / AesServer, on that server's host."""
        name = type(server).__name__
        kw.setdefault("http_port", getattr(server, "port", 80))
        if name == "XorServer":
            kw.setdefault("udp9999", True)
            kw.setdefault("udp20002", False)
        elif name == "KlapServer":
            kw.setdefault("encrypt_type", "KLAP")
            kw.setdefault("lv", None if server.version == 1 else 2)
            kw.setdefault("udp9999", False)
        elif name == "AesServer":
            kw.setdefault("encrypt_type", "AES")
            kw.setdefault("lv", server.login_version)
            kw.setdefault("udp9999", False)
        else:
            raise TypeError(f"unknown server {server!r}")
        return cls(server.device, server.host, **kw)

    # ---------------------------------------------------------------- what the device says

    def discovery_id(self) -> str:
        fn = getattr(self.device, "discovery_id", None)
        if callable(fn):
            return fn()
        return hashlib.md5(("disc:" + str(self.device.device_id)).encode()).hexdigest().upper()

    def discovery_result(self) -> dict:
        dev = self.device
        fn = getattr(dev, "discovery_result", None)
        if callable(fn):
            result = fn()
        else:  # an IotDevice: its fixture may carry a discovery_result, else build one
            data = getattr(dev, "data", None) or {}
            result = copy.deepcopy(data.get("discovery_result", {}).get("result", {}))
            sysinfo = getattr(dev, "sysinfo", {}) or {}
            result["device_type"] = getattr(dev, "device_type", "") or "IOT.SMARTPLUGSWITCH"
            result["device_model"] = getattr(dev, "model", "") or sysinfo.get("model", "")
            if "hw_ver" in sysinfo:
                result["hw_ver"] = sysinfo["hw_ver"]
            result.setdefault("factory_default", False)
            result.setdefault("obd_src", "tplink")
            result.setdefault("owner", "00000000000000000000000000000000")
            result["mac"] = _mac_dashes(getattr(dev, "mac", ""))
        result["device_id"] = self.discovery_id()
        result["ip"] = self.host
        schm = {"encrypt_type": self.encrypt_type, "http_port": self.http_port,
                "is_support_https": self.is_support_https}
        if self.lv is not None:
            schm["lv"] = self.lv
        result["mgt_encrypt_schm"] = schm
        result.update(copy.deepcopy(self.result_overrides))
        return result

    # ---------------------------------------------------------------- sockets

    def _bind(self, host: str, port: int, reuse: bool) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            s.close()
            raise
        return s

    def _open(self) -> None:
        check_loopback(self.host)
        # (listening socket, reply socket, kind)
        plan: list[tuple[socket.socket, socket.socket, str]] = []
        try:
            for enabled, port, kind in ((self.udp9999, self.port_9999, "9999"),
                                        (self.udp20002, self.port_20002, "20002")):
                if not enabled:
                    continue
                uni = self._bind(self.host, port, reuse=False)
                self._socks.append(uni)
                if kind == "9999":
                    self.port_9999 = uni.getsockname()[1]
                else:
                    self.port_20002 = uni.getsockname()[1]
                plan.append((uni, uni, kind))
                if self.broadcast:
                    b = self._bind(LOOPBACK_BROADCAST, uni.getsockname()[1], reuse=True)
                    self._socks.append(b)
                    plan.append((b, uni, kind))
        except OSError:
            self._close()
            raise
        self.port = self.port_20002 if self.udp20002 else self.port_9999
        self._spawn(self._loop, plan)

    def _close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks = []

    def _loop(self, plan) -> None:
        by_sock = {p[0]: p for p in plan}
        while not self._stopping.is_set():
            try:
                ready = self._select(list(by_sock))
            except (OSError, ValueError):
                return
            for s in ready:
                _, reply_sock, kind = by_sock[s]
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                try:
                    reply = self._answer(kind, data, addr)
                    if reply is not None and not self.silent:
                        reply_sock.sendto(reply, addr)
                        self.answered[kind] += 1
                except OSError:
                    continue

    def _answer(self, kind: str, data: bytes, addr) -> bytes | None:
        if not addr[0].startswith("127."):
            return None
        if kind == "9999":
            try:
                request = json.loads(xor_decrypt(data))
            except ValueError:
                self._record("ignored", port=kind, peer=addr, reason="not XOR JSON", raw=data)
                return None
            response = self.device.handle(request)
            self._record("probe", port=kind, peer=addr, request=request, response=response,
                         silent=self.silent)
            return xor_encrypt(json.dumps(response, separators=(",", ":")).encode())
        try:
            header, payload = parse_discovery_packet(data)
            if header["version"] != 2:
                raise DiscoveryHeaderError(f"version {header['version']}")
            request = json.loads(payload)
            if not isinstance(request, dict):
                raise ValueError("payload is not a JSON object")
        except (DiscoveryHeaderError, ValueError) as exc:
            self._record("ignored", port=kind, peer=addr, reason=str(exc), raw=data)
            return None
        if self.on_probe is not None:
            self.on_probe()
        response = {"error_code": 0, "result": self.discovery_result()}
        self._record("probe", port=kind, peer=addr, request=request, response=response,
                     has_rsa_key=bool((request.get("params") or {}).get("rsa_key")),
                     silent=self.silent)
        body = json.dumps(response, separators=(",", ":")).encode()
        return discovery_packet(body, serial=header["serial"])
