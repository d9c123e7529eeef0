"""Cloud layer: fake TP-Link clouds served over real HTTP on 127.0.0.1, and hostile HTTP peers.

    from tests.doubles.cloud import FakeCloud, FakeCloudV2

- ``FakeCloud`` (v1.py): the V1 API, a login host and a regional server; it holds the account and
  its devices (tests/doubles/devices/) and runs them for ``passthrough``
- ``FakeCloudV2`` (v2.py): the signed V2 API in front of a ``FakeCloud``, over HTTP or TLS
- ``EndlessReplyServer`` (hostile_http.py): an HTTP peer whose reply never ends
- pytest fixtures ``fake_cloud``, ``fake_cloud_env``, ``populated_cloud`` (pytest_fixtures.py,
  enabled in tests/conftest.py with ``pytest_plugins``)
"""

from .hostile_http import EndlessReplyServer
from .v1 import CloudDevice, CloudError, FakeCloud, RequestRecord
from .v2 import FakeCloudV2

__all__ = ["CloudDevice", "CloudError", "EndlessReplyServer", "FakeCloud", "FakeCloudV2", "RequestRecord"]
