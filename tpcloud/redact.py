"""Keep secrets out of everything tpcloud prints.

Two layers: structured redaction of the fields that hold secrets (for ``-v`` logs of HTTP
exchanges), and a last-line scrub of every secret value this process has seen, applied to all
text written to the terminal, so a secret echoed back in some unexpected place is still masked.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_KEYS = frozenset(
    {"token", "refreshToken", "refresh_token", "cloudPassword", "password", "password2", "terminalUUID",
     "MFAProcessId"}
)
_URL_TOKEN = re.compile(r"([?&]token=)[^&\s]+")


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with every secret-bearing field masked, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_KEYS and v else redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value


def redact_url(url: str) -> str:
    """The URL with its ``token`` query parameter masked."""
    return _URL_TOKEN.sub(r"\g<1>" + MASK, url)


class Redactor:
    """Remembers the secret values of this run and masks them in any text."""

    # Shorter values would mask ordinary words; no real token or password of ours is this short.
    MIN_LENGTH = 4

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= self.MIN_LENGTH:
                self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return _URL_TOKEN.sub(r"\g<1>" + MASK, text)
