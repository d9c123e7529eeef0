"""Reading HTTP replies with a bound: no peer, cloud or device, decides how much tpcloud holds."""

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
