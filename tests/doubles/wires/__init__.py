"""Wire layer: device-side emulators speaking the real LAN wire protocols over loopback sockets.

One emulator per wire, in front of a device-layer double (tests/doubles/devices/).

They never import ``tpcloud``: the server-side crypto in ``crypto.py`` is written independently and
checked against tests/fixtures/protocol-vectors.json.  Every server binds only inside 127.0.0.0/8,
runs in daemon threads (so a CLI subprocess can talk to it while the test waits), is a context
manager, and exposes ``host``, ``port``, ``log`` (list of dict entries with ``kind``) and
``entries(kind)``; the HTTP ones count every request they receive in ``http_count``, and every
connection they accept in ``connection_count``.

- ``XorServer(iot_device, host, port=0, fault=None)``                      TCP, legacy Kasa
- ``KlapServer(device, host, port=0, version=None, username, password, fault=None)``  HTTP, KLAP v1/v2
- ``AesServer(smart_device, host, port=0, username, password, login_version=2, fault=None)``  HTTP, Tapo AES

``fault`` (also an attribute, changed at any time) makes a device misbehave in one documented way
(see each module); tests of a client against a hostile device use it rather than a second
implementation of the wire.
- ``DiscoveryResponder(device, host, ...)`` / ``DiscoveryResponder.for_server(server)``  UDP
- ``pick_loopback_host(udp_ports=(9999, 20002))``  a random free 127.x.y.z
"""

from ._base import check_loopback, pick_loopback_host
from .aes import AesServer
from .discovery import DiscoveryResponder
from ._http import DEFAULT_ACCOUNTS
from .klap import KlapServer
from .xor import XorServer

__all__ = [
    "AesServer",
    "DEFAULT_ACCOUNTS",
    "DiscoveryResponder",
    "KlapServer",
    "XorServer",
    "check_loopback",
    "pick_loopback_host",
]
