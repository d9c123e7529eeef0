"""What the cloud client needs about httpx: replies read with a bound (the cloud does not decide
how much tpcloud holds), and the root cause of a failed exchange. The LAN's wires have their own
HTTP client (``tpcloud/lan/http.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


async def read_bounded(response: "httpx.Response", limit: int) -> bytes | None:
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
