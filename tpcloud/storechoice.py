"""Which secret store to use when none is forced, remembered in ``store.json`` in the config folder.

Finding out whether an OS keyring is usable means importing keyring and letting it try every
backend it knows: about 130 ms, paid by every cron or Termux job for the same answer each time.
So the answer is kept, with no secret in it: ``{"store": "file"}``, or ``{"store": "keyring",
"backend": "module.Class"}`` naming the backend class to load next time instead of probing them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from tpcloud.fsutil import atomic_write


class Choice(NamedTuple):
    store: str  # "file" or "keyring"
    backend: str = ""  # the keyring backend class, "module.Class"

    def __str__(self) -> str:
        return "the file store" if self.store == "file" else f"the OS keyring ({self.backend})"


FILE = Choice("file")


def recall(path: Path) -> Choice | None:
    """The remembered choice, or None when nothing is remembered yet.

    Raises ValueError saying why when the file cannot be read or is not one of ours.
    """
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    except ValueError:
        raise ValueError("not valid JSON") from None
    if doc == {"store": "file"}:
        return FILE
    if (
        isinstance(doc, dict) and doc.keys() == {"store", "backend"} and doc["store"] == "keyring"
        and isinstance(doc["backend"], str) and _is_class_name(doc["backend"])
    ):
        return Choice("keyring", doc["backend"])
    raise ValueError('neither {"store": "file"} nor {"store": "keyring", "backend": "module.Class"}')


def _is_class_name(name: str) -> bool:
    """A dotted Python name (``module.Class``), as keyring names its backend classes. (No regular
    expression: this module is loaded by every command, and compiling one costs more than this.)"""
    parts = name.split(".")
    return len(parts) > 1 and all(part.isidentifier() for part in parts)


def remember(path: Path, choice: Choice) -> None:
    """Keep CHOICE for the next runs (atomically, owner-only); OSError when it cannot be written."""
    doc = {"store": choice.store, **({"backend": choice.backend} if choice.store == "keyring" else {})}
    atomic_write(path, (json.dumps(doc) + "\n").encode())
