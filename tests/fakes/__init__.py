"""Test doubles for tpcloud: an emulated Kasa IOT device and a fake TP-Link cloud (V1, HTTP).

    from tests.fakes import FakeCloud, IotDevice

Optional pytest fixtures live in ``tests.fakes.pytest_fixtures`` (enable them from a conftest with
``pytest_plugins = ["tests.fakes.pytest_fixtures"]``).
"""

from .cloud import CloudDevice, CloudError, FakeCloud, RequestRecord
from .iot_device import FIXTURES_DIR, IotDevice, load_fixture, resolve_fixture

__all__ = [
    "CloudDevice",
    "CloudError",
    "FIXTURES_DIR",
    "FakeCloud",
    "IotDevice",
    "RequestRecord",
    "load_fixture",
    "resolve_fixture",
]
