"""Direct LAN control and the automatic route, end to end: `tpcloud` as a process against the fake
cloud and device emulators speaking XOR, KLAP v1/v2 and Tapo AES on their own 127.x addresses.

Every device exists twice, as it does in a real home: in the cloud's device list, and on the
LAN behind an emulator (tests/doubles/home.py).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import one_line
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import DiscoveryResponder, KlapServer, pick_loopback_host

# The `home` and `user` fixtures (tests/doubles/home.py): the emulated home, and a user of it.


def test_discover_finds_every_device_and_matches_the_account(user, home):
    result = user("discover", "--timeout", "1.5", "--json")
    assert result.code == 0, result
    rows = {r["host"]: r for r in json.loads(result.stdout)}
    for name, server in home.servers.items():
        row = rows[server.host]
        assert row["name"] == name, row
    wires = {rows[s.host]["name"]: (rows[s.host]["wire"], rows[s.host]["version"]) for s in home.servers.values()}
    assert wires == {
        "Desk Lamp": ("xor", 0), "Office Strip": ("xor", 0), "Hallway": ("klap", 1),
        "Living Room": ("klap", 2), "Bedroom": ("aes", 2), "Power Strip": ("klap", 2),
    }
    assert rows[home.servers["Living Room"].host]["port"] == home.servers["Living Room"].port
    table = user("discover", "--timeout", "1").stdout
    assert "Living Room" in table and "klap v2" in table


def test_discover_shows_devices_that_are_not_in_the_account(user, home):
    stranger = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json", nickname="Neighbour", mac="A842A1FFFFFF")
    with KlapServer(stranger, pick_loopback_host(udp_ports=(20002,))) as server, DiscoveryResponder.for_server(server):
        result = user("discover", "--timeout", "1", "--target", server.host, "--json")
    (row,) = json.loads(result.stdout)
    assert row["name"] is None and row["mac"] == "A842A1FFFFFF"


def test_list_shows_lan_addresses_after_discovery(user, home):
    user("discover", "--timeout", "1")
    rows = {r["name"]: r for r in json.loads(user("list", "--json").stdout)}
    lamp = home.servers["Desk Lamp"]
    assert rows["Desk Lamp"]["lan_address"] == f"{lamp.host}:9999" and rows["Desk Lamp"]["lan_wire"] == "xor"
    assert f"{lamp.host}:9999" in user("list").stdout


@pytest.mark.parametrize("name", ["Desk Lamp", "Hallway", "Living Room", "Bedroom"])
def test_auto_controls_every_kind_of_device_by_name(user, home, name):
    device = home.devices[name]
    user("discover", "--timeout", "1")
    for action, expected in (("on", True), ("off", False), ("toggle", True)):
        result = user("switch", name, action, "--json")
        assert result.code == 0, result
        data = json.loads(result.stdout)
        assert data["on"] is expected and data["route"] == "local"
        assert device.is_on() is expected


def test_tapo_strip_outlets_through_control_child(user, home):
    strip = home.devices["Power Strip"]
    user("discover", "--timeout", "1")
    user("list", "--refresh")
    for child in strip.child_ids():
        strip.set_on(False, child_id=child)
    result = user("switch", "Power Strip/Radio", "on")
    assert result.code == 0, result
    assert result.stdout.strip() == "Power Strip/Radio: on"
    assert [strip.is_on(c) for c in strip.child_ids()] == [False, True, False]
    state = user("state", "Power Strip").stdout
    assert "outlet Radio: on" in state and "outlet Fan: off" in state


def test_kasa_strip_outlet_over_xor(user, home):
    strip = home.devices["Office Strip"]
    user("discover", "--timeout", "1")
    home.cloud.clear_requests()
    assert user("switch", "Office Strip/Printer", "on", "--json").code == 0
    assert strip.is_on(1)
    assert home.cloud.count("passthrough") == 0


def test_local_hit_uses_no_cloud_request(user, home):
    user("discover", "--timeout", "1")
    home.cloud.clear_requests()
    result = user("-v", "switch", "Desk Lamp", "off")
    assert result.code == 0
    assert result.stdout.strip() == f"Desk Lamp: off (via local xor {home.servers['Desk Lamp'].host}:9999)"
    assert home.cloud.count() == 0


def test_local_miss_falls_back_to_the_cloud(user, home):
    user("discover", "--timeout", "1")
    home.servers["Desk Lamp"].stop()
    home.responders["Desk Lamp"].stop()
    home.cloud.clear_requests()
    result = user("switch", "Desk Lamp", "on", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["route"] == "cloud"
    assert home.devices["Desk Lamp"].is_on()
    assert home.cloud.count("passthrough") == 1


def test_cloud_offline_leads_to_discovery_then_the_lan(user, home):
    # A Kasa device the cloud cannot reach (-20571), never seen on the LAN before.
    home.cloud.set_online(home.devices["Hallway"], False)
    result = user("switch", "Hallway", "on", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["route"] == "local"
    assert home.cloud.last("passthrough").error_code == -20571
    assert home.devices["Hallway"].is_on()


def test_tapo_devices_skip_the_cloud_and_are_discovered_by_auto(user, home):
    user("list")
    home.cloud.clear_requests()
    result = user("switch", "Living Room", "on", "--json")
    assert result.code == 0 and json.loads(result.stdout)["route"] == "local"
    assert home.cloud.count("passthrough") == 0
    assert home.devices["Living Room"].is_on()
    # what the fallback discovery learned is kept: the next command goes straight to the device
    before = home.responders["Living Room"].answered
    assert user("switch", "Living Room", "off").code == 0
    assert home.responders["Living Room"].answered == before


def test_forced_routes(user, home):
    user("discover", "--timeout", "1")
    home.cloud.clear_requests()
    cloud = user("switch", "Desk Lamp", "on", "--via", "cloud", "--json")
    assert json.loads(cloud.stdout)["route"] == "cloud" and home.cloud.count("passthrough") == 1
    local = user("switch", "Desk Lamp", "off", "--via", "local", "--json")
    assert json.loads(local.stdout)["route"] == "local" and home.cloud.count("passthrough") == 1
    tapo_cloud = user("switch", "Living Room", "on", "--via", "cloud")
    assert tapo_cloud.code == 6 and "-20571" in one_line(tapo_cloud.stderr)


def test_host_option_names_the_address(user, home):
    server = home.servers["Bedroom"]
    result = user("switch", "Bedroom", "on", "--host", f"{server.host}:{server.port}", "--via", "local", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["address"] == f"{server.host}:{server.port}"
    assert home.devices["Bedroom"].is_on()


def test_state_and_send_in_each_dialect(user, home):
    state = user("state", "Living Room")
    assert state.code == 0 and state.stdout.startswith("Living Room:") and "model: P110" in state.stdout
    raw = json.loads(user("send", "Living Room", '{"method":"get_device_info"}').stdout)
    assert raw["error_code"] == 0 and raw["result"]["model"] == "P110"
    kasa = json.loads(user("send", "Hallway", '{"system":{"get_sysinfo":{}}}').stdout)
    assert kasa["system"]["get_sysinfo"]["model"].startswith("HS100")


def test_wrong_credentials_name_the_cause(user, home):
    home.servers["Living Room"].reject_all_auth = True
    result = user("switch", "Living Room", "on", "--via", "local")
    assert result.code == 3
    line = one_line(result.stderr)
    assert "case-sensitive" in line and "Third-Party Compatibility" in line


def test_default_account_fallback(user, home):
    home.servers["Living Room"].accepts = "test"
    result = user("switch", "Living Room", "on")
    assert result.code == 0, result
    assert home.devices["Living Room"].is_on()


def test_session_expiry_mid_run_is_survived(user, home):
    assert user("switch", "Living Room", "toggle").code == 0
    home.servers["Living Room"].expire_sessions()
    home.servers["Bedroom"].expire_session(code=9999)
    assert user("switch", "Living Room", "on").code == 0
    assert user("switch", "Bedroom", "on").code == 0
    assert home.devices["Living Room"].is_on() and home.devices["Bedroom"].is_on()


def test_a_device_that_accepts_and_never_answers(user, home):
    user("discover", "--timeout", "1")
    home.servers["Desk Lamp"].fault = "silent"
    started = time.monotonic()
    result = user("--timeout", "1", "switch", "Desk Lamp", "on", "--via", "local")
    assert time.monotonic() - started < 8
    assert result.code == 7 and "did not answer" in one_line(result.stderr)
    # auto: the silent LAN device costs a short wait, then the cloud does the job
    auto = user("switch", "Desk Lamp", "on", "--json")
    assert auto.code == 0 and json.loads(auto.stdout)["route"] == "cloud"


def test_no_route_says_what_was_tried(user, home):
    for name in ("Living Room",):
        home.servers[name].stop()
        home.responders[name].stop()
    result = user("switch", "Living Room", "on")
    assert result.code == 6
    line = one_line(result.stderr)
    assert "no route worked" in line and "discovery" in line


# A store that fails loudly the moment anything opens it: an OS keyring that cannot be loaded.
BROKEN_STORE = {"TPCLOUD_SECRET_STORE": "keyring", "PYTHON_KEYRING_BACKEND": "no_such_module.Keyring"}


def test_commands_that_need_no_secret_never_open_the_secret_store(user, home):
    user("discover", "--timeout", "1")  # warm caches: the device list and the LAN addresses
    assert "cannot load the OS keyring" in one_line(user("switch", "Bedroom", "on", env=BROKEN_STORE).stderr)
    complete = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": "tpcloud\nswitch\nDesk", "COMP_CWORD": "2"}
    for args, env in [
        (("--help",), {}), (("--version",), {}), (("switch", "--help"), {}), ((), complete),
        (("list",), {}), (("list", "--json"), {}),
        (("switch", "Desk Lamp", "on"), {}), (("switch", "Office Strip/Printer", "toggle"), {}),
        (("state", "Desk Lamp", "Office Strip"), {}), (("send", "Desk Lamp", '{"system":{"get_sysinfo":{}}}'), {}),
        (("led", "Desk Lamp"), {}), (("discover", "--timeout", "1"), {}),
    ]:
        result, modules = user.loaded_modules(*args, env={**BROKEN_STORE, **env})
        assert result.code == 0, result
        assert not any(m == "keyring" or m.startswith("keyring.") for m in modules), args
    assert home.devices["Desk Lamp"].is_on()


def test_a_device_that_resets_mid_frame_or_announces_an_absurd_length(user, home):
    user("discover", "--timeout", "1")
    for fault in ("reset", "absurd_length"):
        home.servers["Desk Lamp"].fault = fault
        result = user("switch", "Desk Lamp", "on", "--via", "local")
        assert result.code in (7, 8), result
        assert "Desk Lamp" in one_line(result.stderr)


@pytest.mark.parametrize("name", ["Bedroom", "Living Room"])
def test_a_device_that_closes_after_each_reply_is_toggled(user, home, name):
    # A P100 closes the connection after each reply without saying so (python-kasa retries for
    # it); `toggle` reads, then writes, on what was one connection.
    user("discover", "--timeout", "1")
    device, server = home.devices[name], home.servers[name]
    server.close_after_reply = True
    before = device.is_on()
    for _ in range(2):
        result = user("switch", name, "toggle")
        assert result.code == 0, result
    assert device.is_on() is before
