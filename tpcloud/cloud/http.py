"""The cloud's HTTP client, whose TLS (and the CA bundle it loads) is built on first use, and what
the cloud client needs about its replies and failures: bodies read with a bound (the cloud does
not decide how much tpcloud holds), and the root cause of a failed exchange.

httpx makes a verifying TLS context when a client is made, reading certifi's ~140 CA
certificates (about 35 ms) whether or not any request is ever encrypted. A cloud reached over
plain HTTP — a local proxy in ``TPCLOUD_CLOUD_URL``, the test cloud — never needs it, so the
context is made by the first https request instead. Verification is never turned off: the
plain-HTTP side holds a context that verifies and trusts nothing, and only ever sees http://.
"""

from __future__ import annotations

import ssl
from typing import Callable

import httpx


def http_client(timeout: float, tls: Callable[[], ssl.SSLContext] | None = None) -> httpx.AsyncClient:
    """A client for the cloud: no redirects followed, proxies from the environment, and https
    verified against TLS() (default: httpx's own — certifi, or SSL_CERT_FILE/SSL_CERT_DIR)."""
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=True,
        transport=TlsOnFirstUse(tls or (lambda: httpx.create_ssl_context(trust_env=True))),
    )


class TlsOnFirstUse(httpx.AsyncBaseTransport):
    """Plain HTTP at once; https through a transport made, with its context, when first needed."""

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._by_scheme: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        transport = self._by_scheme.get(scheme)
        if transport is None:
            # A context with no CA trusts no certificate: safe for a side that never does TLS.
            context = self._tls() if scheme == "https" else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            transport = self._by_scheme[scheme] = httpx.AsyncHTTPTransport(verify=context)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._by_scheme.values():
            await transport.aclose()
        self._by_scheme.clear()


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed RESPONSE, or None as soon as it is known to exceed LIMIT bytes.

    A declared length is believed only when it is too large; the decoded bytes are counted as
    they arrive, so a reply without a length, or a compressed one, is stopped at the bound too.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > limit:
            return None
    return bytes(content)


def innermost(exc: BaseException) -> BaseException:
    """The first cause of EXC (httpx wraps httpcore, which wraps the socket's own error)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc
