"""Device layer: device state seeded from recorded fixtures (tests/fixtures/), no transport.

``handle(request)`` takes the decoded JSON a client sends and returns the reply a real device
would, keeping state between calls. The fake clouds (tests/doubles/cloud/) run it for
``passthrough``; the wire emulators (tests/doubles/wires/) put it behind a socket.

- ``IotDevice`` (iot.py): legacy Kasa, the IOT dialect (``{"system": {"get_sysinfo": {}}}``)
- ``SmartDevice`` (smart.py): Tapo and newer Kasa, the SMART dialect (``{"method": ...}``)
"""

from .iot import FIXTURES_DIR, IotDevice, load_fixture, resolve_fixture
from .smart import SmartDevice

__all__ = ["FIXTURES_DIR", "IotDevice", "SmartDevice", "load_fixture", "resolve_fixture"]
