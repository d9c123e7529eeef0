"""The JSON dialects devices speak: IOT (legacy Kasa) and SMART (Tapo and newer Kasa).

Both modules offer the same functions (requests per capability, reading replies), so code above
them takes ``for_device(device)`` and never asks which one it has.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tpcloud.devices import Device


def for_device(device: "Device") -> ModuleType:
    """The dialect module DEVICE speaks."""
    from tpcloud.dialects import iot, smart

    return smart if device.dialect == "smart" else iot
