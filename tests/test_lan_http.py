"""The devices' own HTTP client (tpcloud/lan/http.py), over real sockets on 127.0.0.0/8.

The device here is a scripted server that reads each request and answers it with crafted bytes
(or hangs up, or never answers); the wire emulators, well-behaved devices, meet the client in
tests/test_lan_transports.py. Last, a KLAP and an AES switch as a process, against the emulated
home: no httpx, no CA bundle, no SSL context, one connection.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import pytest

from tests.doubles.scripted_http import ScriptedServer, drip, hang_up, http, reply, reset, silent
from tests.doubles.wires import pick_loopback_host
from tpcloud import errors
from tpcloud.http11 import MAX_HEADERS
from tpcloud.lan.http import DeviceHttp, Reply
from tpcloud.lan.transport import session_cookie

def exchange(server: ScriptedServer, *bodies: bytes, timeout: float = 2, **options) -> list[Reply]:
    """POST each of BODIES to SERVER in turn on one client, closed at the end."""

    async def main() -> list[Reply]:
        client = DeviceHttp(server.host, server.port)
        try:
            return [await client.post("/app", body, timeout=timeout, **options) for body in bodies]
        finally:
            await client.close()

    return asyncio.run(main())


# --- requests --------------------------------------------------------------------------------


def test_a_post_says_exactly_what_the_device_needs_and_never_goes_through_a_proxy(monkeypatch):
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # nothing listens there
    with ScriptedServer(reply(http(200, b"{}"))) as server:
        exchange(server, b"\x00secret\xff", cookie=("TP_SESSIONID", "ABC"), params={"seq": "-7", "token": "a/b+c"},
                 content_type="application/json")
    ((_, head, body),) = server.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /app?seq=-7&token=a%2Fb%2Bc HTTP/1.1"
    assert set(lines[1:]) == {f"Host: {server.host}:{server.port}", "Accept: */*", "Content-Length: 8",
                              "Content-Type: application/json", "Cookie: TP_SESSIONID=ABC"}
    assert body == b"\x00secret\xff"


def test_a_post_without_cookie_query_or_type_sends_none_of_them():
    with ScriptedServer(reply(http(200, b"{}"))) as server:
        exchange(server, b"")
    ((_, head, body),) = server.requests
    assert head.decode().split("\r\n")[0] == "POST /app HTTP/1.1"
    assert b"Content-Length: 0" in head and b"Cookie" not in head and b"Content-Type" not in head and body == b""


def test_one_connection_carries_every_request_until_closed():
    with ScriptedServer(*[reply(http(200, b"ok"))] * 4) as server:
        assert [r.body for r in exchange(server, b"1", b"2", b"3")] == [b"ok"] * 3
        assert [number for number, _, _ in server.requests] == [1, 1, 1]
        exchange(server, b"4")  # a new client, after close(): a new connection
        assert server.connections == 2


# --- replies ---------------------------------------------------------------------------------


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize("answer, connections", [
    pytest.param(reply(http(200, b"hello, world")), 1, id="content-length"),
    pytest.param(reply(CHUNKED), 1, id="chunked"),
    pytest.param(reply(http(200, b"hello, world", "Connection: close"), then_close=True), 2, id="connection-close"),
    pytest.param(reply(http(200, b"hello, world", version="HTTP/1.0"), then_close=True), 2, id="http-1.0"),
    pytest.param(reply(http(200, b"hello, world", "Content-Length: 12", "Connection: keep-alive", version="HTTP/1.0")), 1,
                 id="http-1.0-keep-alive"),
    pytest.param(reply(b"HTTP/1.1 200 OK\r\n\r\nhello, world", then_close=True), 2, id="until-close"),
])
def test_a_body_is_read_however_it_is_framed_and_the_connection_kept_only_when_it_may_be(answer, connections):
    with ScriptedServer(answer, answer) as server:
        replies = exchange(server, b"1", b"2")
        assert server.connections == connections
    assert [r.body for r in replies] == [b"hello, world"] * 2


def test_a_reply_without_a_body_keeps_the_connection():
    with ScriptedServer(reply(http(204, b"", "Connection: keep-alive")), reply(http(200, b"{}"))) as server:
        replies = exchange(server, b"1", b"2")
        assert server.connections == 1
    assert [(r.status, r.body) for r in replies] == [(204, b""), (200, b"{}")]


def test_headers_are_read_case_insensitively_and_repeated_ones_kept():
    answer = http(200, b"{}", "set-cookie: TP_SESSIONID=ABC;TIMEOUT=1440", "SET-COOKIE: other=1", "X-Long:  spaced value ")
    with ScriptedServer(reply(answer)) as server:
        (response,) = exchange(server, b"")
    assert response.get_all("Set-Cookie") == ["TP_SESSIONID=ABC;TIMEOUT=1440", "other=1"]
    assert response.get_all("x-long") == ["spaced value"] and response.get_all("cookie") == []
    cookie, expires_at = session_cookie(response.get_all("set-cookie"))
    assert cookie == ("TP_SESSIONID", "ABC") and 1440 - 721 < expires_at - time.time() < 1440 - 719


# --- bad replies: one clear error, never a hang, never a second request after a partial reply --


TOO_LARGE = "sent a reply larger than 1 MiB"


@pytest.mark.parametrize("answer, error, message", [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", errors.ProtocolError, "not HTTP/1.x"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", errors.ProtocolError, "not HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", errors.ProtocolError, "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n Folded: value\r\n\r\n", errors.ProtocolError, "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", errors.ProtocolError, "malformed header line"),
    (http(200, b"", "Content-Length: -1"), errors.ProtocolError, "malformed Content-Length"),
    (http(200, b"", "Content-Length: 0x10"), errors.ProtocolError, "malformed Content-Length"),
    (http(200, b"ab", "Content-Length: 2", "Content-Length: 3"), errors.ProtocolError, "malformed Content-Length"),
    (http(200, b"", "Content-Length: 1000000000000"), errors.ProtocolError, TOO_LARGE),
    (http(200, b"", "Content-Length: " + "9" * 5000), errors.ProtocolError, TOO_LARGE),
    (http(200, b"", "Content-Length: 1048577"), errors.ProtocolError, TOO_LARGE),
    (http(200, b"zz\r\n", "Transfer-Encoding: chunked"), errors.ProtocolError, "malformed chunk size"),
    (http(200, b"-5\r\n", "Transfer-Encoding: chunked"), errors.ProtocolError, "malformed chunk size"),
    (http(200, b"1_0\r\n", "Transfer-Encoding: chunked"), errors.ProtocolError, "malformed chunk size"),
    (http(200, b"2\r\nabc\r\n", "Transfer-Encoding: chunked"), errors.ProtocolError, "chunk longer than its size"),
    (http(200, b"100001\r\n", "Transfer-Encoding: chunked"), errors.ProtocolError, TOO_LARGE),
    (http(200, b"", "Transfer-Encoding: gzip, chunked"), errors.ProtocolError, "transfer coding other than chunked"),
    (http(200, b"", *[f"X-{i}: {i}" for i in range(MAX_HEADERS + 1)]), errors.ProtocolError, "more than 100 headers"),
    (http(200, b"", *[f"X-{i}: {'v' * 1000}" for i in range(70)]), errors.ProtocolError, "64 KiB of them"),
    (http(200, b"", f"X: {'v' * 70000}"), errors.ProtocolError, "overlong line"),
])
def test_a_bad_reply_is_one_protocol_error(answer, error, message):
    with ScriptedServer(reply(answer, then_close=True)) as server:
        with pytest.raises(error, match=message) as caught:
            exchange(server, b"{}")
        assert len(server.requests) == 1
    assert str(caught.value).startswith(f"{server.host}:{server.port} ") and "\n" not in str(caught.value)


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_a_reply_that_never_stops_is_cut_off_at_the_bound(framing):
    def endless(conn: socket.socket) -> bool:
        chunk = b"x" * 65536
        head = "Transfer-Encoding: chunked\r\n" if framing == "chunked" else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\n{head}\r\n".encode())
        try:
            while True:
                conn.sendall(b"10000\r\n" + chunk + b"\r\n" if framing == "chunked" else chunk)
        except OSError:
            return False

    with ScriptedServer(endless) as server, pytest.raises(errors.ProtocolError, match=TOO_LARGE):
        exchange(server, b"{}")


@pytest.mark.parametrize("answer", [
    pytest.param(http(200, b"0123456789", "Content-Length: 100"), id="body"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="head"),
    pytest.param(b"H", id="status-line"),
    pytest.param(http(200, b"5\r\nhel", "Transfer-Encoding: chunked"), id="chunk"),
])
def test_a_reply_cut_short_is_not_sent_again(answer):
    with ScriptedServer(reply(answer, then_close=True), reply(http(200, b"{}"))) as server:
        with pytest.raises(errors.ProtocolError, match="closed the connection mid-reply"):
            exchange(server, b"{}")
        assert len(server.requests) == 1


def test_a_reply_reset_midway_is_a_network_error_and_not_sent_again():
    def cut(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
        time.sleep(0.2)  # the client has read the start of the reply
        return reset(conn)

    with ScriptedServer(cut, reply(http(200, b"{}"))) as server:
        with pytest.raises(errors.NetworkError, match=f"connection to {server.host}:{server.port} failed"):
            exchange(server, b"{}")
        assert len(server.requests) == 1


# --- the wire failing: timeouts, hang-ups, refusals -------------------------------------------


@pytest.mark.parametrize("answer", [silent, drip], ids=["silent", "drip"])
def test_no_reply_within_the_timeout_is_a_timeout_for_the_whole_exchange(answer):
    with ScriptedServer(answer) as server:
        started = time.monotonic()
        with pytest.raises(errors.Timeout, match=f"{server.host}:{server.port} did not answer within 0.5 s"):
            exchange(server, b"{}", timeout=0.5)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("drop", [hang_up, reset], ids=["hang-up", "reset"])
def test_a_request_the_device_hangs_up_on_is_sent_once_more_on_a_new_connection(drop):
    with ScriptedServer(reply(http(200, b"1")), drop, reply(http(200, b"2"))) as server:
        assert [r.body for r in exchange(server, b"a", b"b")] == [b"1", b"2"]
        assert [(number, body) for number, _, body in server.requests] == [(1, b"a"), (1, b"b"), (2, b"b")]


def test_a_device_that_hangs_up_twice_is_a_network_error():
    with ScriptedServer(hang_up, hang_up, reply(http(200, b"{}"))) as server:
        with pytest.raises(errors.NetworkError, match="closed the connection twice without answering"):
            exchange(server, b"{}")
        assert len(server.requests) == 2


def test_a_device_that_closes_after_each_reply_without_saying_so_answers_every_request():
    with ScriptedServer(*[reply(http(200, b"{}"), then_close=True)] * 3) as server:
        assert len(exchange(server, b"1", b"2", b"3")) == 3
        assert [number for number, _, _ in server.requests] == [1, 2, 3]


def test_a_closed_port_is_a_refused_wire():
    host = pick_loopback_host()
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind((host, 0))
        port = probe.getsockname()[1]

    async def main():
        await DeviceHttp(host, port).post("/app", b"{}", timeout=2)

    with pytest.raises(errors.WireRefused, match=f"cannot connect to {host}:{port} "):
        asyncio.run(main())


@pytest.mark.parametrize("failure, reason", [
    (OSError(errno.EHOSTUNREACH, "No route to host"), "No route to host"),
    (None, "timed out"),
])
def test_any_other_connect_failure_is_unreachable(monkeypatch, failure, reason):
    async def connect(host, port):  # what the kernel says when no device answers ARP, or a firewall drops SYNs
        if failure is None:
            await asyncio.sleep(10)
        raise failure

    monkeypatch.setattr(asyncio, "open_connection", connect)
    with pytest.raises(errors.DeviceUnreachable, match=rf"cannot connect to 192\.0\.2\.1:80 \({reason}\)") as caught:
        asyncio.run(DeviceHttp("192.0.2.1", 80).post("/app", b"{}", timeout=0.3))
    assert not isinstance(caught.value, errors.WireRefused)


# --- a KLAP or AES command, as a process ---------------------------------------------------------

@pytest.mark.parametrize("name", ["Living Room", "Bedroom"], ids=["klap", "aes"])
def test_a_klap_or_aes_switch_loads_no_httpx_no_ca_bundle_and_makes_no_ssl_context(user, home, name):
    assert user("list").code == 0 and user("discover", "--timeout", "1").code == 0
    server = home.servers[name]
    for session in ("handshake", "saved session"):
        before = (server.http_count, server.connection_count)
        result, record = user.recorded("switch", name, "on")  # modules loaded, TLS contexts made
        assert result.code == 0, result.stderr
        loaded = {m.split(".")[0] for m in record.modules}
        assert loaded.isdisjoint({"httpx", "httpcore", "certifi", "h11", "anyio"}), session
        assert record.tls_contexts == 0, session
        requests = 3 if session == "handshake" else 1
        assert (server.http_count - before[0], server.connection_count - before[1]) == (requests, 1), session
    assert home.devices[name].is_on()
