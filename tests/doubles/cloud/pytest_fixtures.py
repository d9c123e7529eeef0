"""Cloud layer as pytest fixtures. Enabled in tests/conftest.py:

    pytest_plugins = ["tests.doubles.cloud.pytest_fixtures", ...]

- ``fake_cloud``: a started ``FakeCloud`` (default account user@example.com / hunter2-Secret!),
  no devices; stopped after the test.
- ``fake_cloud_env``: the same, with ``TPCLOUD_CLOUD_URL`` pointing at its login host.
- ``populated_cloud``: ``fake_cloud`` with a typical account: plug "Desk Lamp" (HS103, regional),
  energy plug "Kettle" (HS110(EU), regional), strip "Office Strip" (KP303, outlets
  "Monitor"/"Printer"/"Charger", login host), bulb "Hall Bulb" (KL130, regional), dimmer
  "Porch Dimmer" (HS220, regional), offline plug "Garage" (HS103), Tapo "Tapo Plug" (P110(EU)).
  The emulators are on ``populated_cloud.by_alias[alias]`` (filled by every ``add_*``).
"""

from __future__ import annotations

import pytest

from .v1 import FakeCloud


@pytest.fixture
def fake_cloud():
    with FakeCloud() as cloud:
        yield cloud


@pytest.fixture
def fake_cloud_env(fake_cloud, monkeypatch):
    monkeypatch.setenv("TPCLOUD_CLOUD_URL", fake_cloud.url)
    yield fake_cloud


@pytest.fixture
def populated_cloud(fake_cloud):
    c = fake_cloud
    c.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    c.add_iot_device("HS110(EU)_4.0_1.0.4.json", "Kettle")
    c.add_iot_device(
        "KP303(US)_2.0_1.0.9.json", "Office Strip", region="login",
        child_aliases=["Monitor", "Printer", "Charger"],
    )
    c.add_iot_device("KL130(US)_1.0_1.8.11.json", "Hall Bulb")
    c.add_iot_device("HS220(US)_1.0_1.5.7.json", "Porch Dimmer")
    c.add_iot_device("HS103(US)_2.1_1.1.4.json", "Garage", online=False)
    c.add_smart_device("P110(EU)_1.0_1.2.3.json", "Tapo Plug")
    yield c
