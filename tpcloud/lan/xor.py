"""Legacy Kasa wire (IOT dialect): autokey XOR over TCP 9999, and the same cipher over UDP.

Devices keep the TCP connection open after answering, so the reader trusts the length prefix and
never waits for EOF; the prefix is bounded before anything is allocated.
"""

from __future__ import annotations

import asyncio
import struct
from contextlib import suppress
from typing import Any

from tpcloud.errors import NetworkError, ProtocolError, Timeout
from tpcloud.lan.transport import json_object, open_stream

PORT = 9999
# Large strips answer a few KiB; anything near this bound is a peer speaking another protocol.
MAX_FRAME = 512 * 1024
DISCOVERY_QUERY = b'{"system":{"get_sysinfo":{}}}'
_FIRST_KEY = 171
_HEADER = struct.Struct(">I")


def encrypt(plain: bytes) -> bytes:
    """Each ciphertext byte is the key for the next one, starting from 171."""
    out = bytearray(len(plain))
    key = _FIRST_KEY
    for i, byte in enumerate(plain):
        key ^= byte
        out[i] = key
    return bytes(out)


def decrypt(cipher: bytes) -> bytes:
    """Undo :func:`encrypt`: every plaintext byte is its ciphertext byte XOR the previous one."""
    return bytes(c ^ k for c, k in zip(cipher, bytes([_FIRST_KEY]) + cipher[:-1]))


def frame(plain: bytes) -> bytes:
    """TCP framing: 4-byte big-endian plaintext length, then the ciphertext."""
    return _HEADER.pack(len(plain)) + encrypt(plain)


def frame_length(header: bytes) -> int:
    """Read the announced length from a 4-byte header, refusing absurd values before allocating."""
    if len(header) != _HEADER.size:
        raise ProtocolError(f"XOR frame header is {len(header)} bytes, expected {_HEADER.size}")
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"device announced a {length}-byte reply, more than the {MAX_FRAME}-byte limit")
    return length


def unframe(data: bytes) -> bytes:
    """Decode one complete TCP frame held in memory (the transport reads it piecewise instead)."""
    length = frame_length(data[: _HEADER.size])
    body = data[_HEADER.size :]
    if len(body) != length:
        raise ProtocolError(f"XOR frame announces {length} bytes but carries {len(body)}")
    return decrypt(body)


def discovery_datagram(payload: bytes = DISCOVERY_QUERY) -> bytes:
    """UDP discovery uses the same cipher with no length prefix."""
    return encrypt(payload)


def parse_datagram(data: bytes) -> dict[str, Any]:
    """Decode one UDP discovery reply into its JSON object."""
    return json_object(decrypt(data), "XOR discovery reply")


class XorTransport:
    """Carries one IOT request per TCP connection to a legacy Kasa device."""

    def __init__(self, host: str, port: int = PORT, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    async def send(self, payload: bytes) -> bytes:
        """Send ``payload`` (IOT JSON) and return the device's JSON reply, all within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        reader, writer = await open_stream(self.host, self.port, self.timeout)
        try:
            reply = await asyncio.wait_for(
                self._exchange(reader, writer, payload), max(deadline - loop.time(), 0)
            )
        except asyncio.TimeoutError:
            await _abandon(writer)
            raise Timeout(f"{self.host}:{self.port} did not answer within {self.timeout:g} s") from None
        except Exception:
            await _abandon(writer)
            raise
        except BaseException:  # cancelled or interrupted: no more waiting
            writer.transport.abort()
            raise
        writer.close()
        with suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)
        json_object(reply, f"reply from {self.host}")
        return reply

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
    ) -> bytes:
        try:
            writer.write(frame(payload))
            await writer.drain()
            length = frame_length(await reader.readexactly(_HEADER.size))
            return decrypt(await reader.readexactly(length))
        except asyncio.IncompleteReadError as exc:
            expected = exc.expected if exc.expected is not None else "more"
            raise ProtocolError(
                f"{self.host} closed the connection mid-reply ({len(exc.partial)} of {expected} bytes)"
            ) from None
        except OSError as exc:
            raise NetworkError(
                f"connection to {self.host}:{self.port} failed ({exc.strerror or type(exc).__name__})"
            ) from None

    async def close(self) -> None:
        """Nothing stays open between requests."""

    def export_session(self) -> None:
        """XOR has no session: every request stands alone."""
        return None

    def restore_session(self, state: dict[str, Any]) -> bool:
        return False


async def _abandon(writer: asyncio.StreamWriter) -> None:
    """Drop a connection that failed, and take note of how it ended: a connection the device
    reset leaves that error in the stream's close waiter, and asyncio reports one nobody asked
    for at exit ("Future exception was never retrieved"), a second, scary message."""
    writer.transport.abort()
    with suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1)
