"""Many devices in one command, end to end: `tpcloud switch NAME... on|off|toggle`, `--all`, groups
from config.toml and `state NAME...`, as a process against the emulated home (tests/doubles/home.py)
and the fake cloud.

Concurrency is proved without timing: a rendezvous in the devices holds the first request each
one receives until all of them have one in flight, so a command that reached them one after
another would break it and fail.
"""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import one_line

LAN_WIRES = {  # one of each wire the home speaks, strips included
    "Desk Lamp": "xor", "Office Strip/Printer": "xor", "Hallway": "klap", "Living Room": "klap",
    "Power Strip/Radio": "klap", "Bedroom": "aes",
}


class Rendezvous:
    """Holds the first request each device receives (a barrier) until every device has one in
    flight; the barrier breaks after TIMEOUT seconds otherwise, and the held request fails. Later
    requests pass freely."""

    def __init__(self, devices: list, timeout: float = 8.0) -> None:
        self.barrier = threading.Barrier(len(devices), timeout=timeout)
        for device in devices:
            device.handle = self._held(device.handle)

    def _held(self, handle):
        first = [True]

        def held(request):
            if first and first.pop():
                self.barrier.wait()
            return handle(request)

        return held


@pytest.fixture
def known(user, home):
    """A user whose cache knows every LAN address and both strips' outlets."""
    assert user("discover", "--timeout", "1").code == 0
    assert user("list", "--refresh").code == 0
    return user


def is_on(home, full_name: str) -> bool:
    """Whether the emulated device or outlet FULL_NAME is on."""
    strip, _, outlet = full_name.partition("/")
    device = home.devices[strip]
    if not outlet:
        return device.is_on()
    if strip == "Power Strip":
        names = ["Fan", "Radio", "Heater"]
        return device.is_on(device.child_ids()[names.index(outlet)])
    return device.is_on(["Monitor", "Printer", "Charger"].index(outlet))


def refuse_credentials(home, name: str) -> None:
    """Make a KLAP device refuse the account (its saved sessions end too)."""
    home.servers[name].reject_all_auth = True
    home.servers[name].expire_sessions()


def write_config(user, text: str) -> None:
    user.config_dir.mkdir(parents=True, exist_ok=True)
    (user.config_dir / "config.toml").write_text(text)


# -- concurrency -------------------------------------------------------------------------------


def test_devices_of_every_wire_are_switched_at_once(known, home):
    names = list(LAN_WIRES)
    assert known("switch", *names, "off").code == 0
    devices = {name.partition("/")[0] for name in names}  # a strip's outlets are one device
    rendezvous = Rendezvous([home.devices[d] for d in devices])
    result = known("switch", *names, "on", "--via", "local", "--json")
    assert not rendezvous.barrier.broken, result
    assert result.code == 0, result
    rows = json.loads(result.stdout)
    assert [(r["name"], r["on"], r["route"], r["wire"], r["error"]) for r in rows] == [
        (name, True, "local", wire, None) for name, wire in LAN_WIRES.items()
    ]
    assert all(is_on(home, name) for name in names)


def test_devices_behind_the_cloud_are_switched_at_once(account, populated_cloud):
    names = ["Kettle", "Hall Bulb", "Porch Dimmer", "Desk Lamp"]
    assert account("list").code == 0  # the device list reads the plugs: before the rendezvous
    populated_cloud.clear_requests()
    rendezvous = Rendezvous([populated_cloud.by_alias[n] for n in names])
    result = account("switch", *names, "on", "--via", "cloud")
    assert not rendezvous.barrier.broken, result
    assert result.code == 0, result
    assert result.stdout.splitlines() == [f"{name}: on" for name in names]
    assert populated_cloud.count("passthrough") == len(names)


# -- output, failures and exit codes -----------------------------------------------------------


def test_one_line_per_device_in_the_order_given(known, home):
    names = ["Bedroom", "Desk Lamp", "Power Strip/Fan", "Hallway"]
    result = known("switch", *names, "toggle")
    assert result.code == 0 and result.stderr == "", result
    lines = result.stdout.splitlines()
    assert [line.partition(":")[0] for line in lines] == names
    assert lines == [f"{name}: {'on' if is_on(home, name) else 'off'}" for name in names]


def test_a_failure_does_not_stop_the_others_and_the_first_failure_sets_the_exit_code(known, home):
    assert known("switch", "Desk Lamp", "off").code == 0
    refuse_credentials(home, "Living Room")
    result = known("switch", "Living Room", "Desk Lamp", "Garage", "on", "--json")
    assert result.code == 3, result  # Living Room's refused credentials come first
    assert is_on(home, "Desk Lamp")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["Living Room", "Desk Lamp", "Garage"]
    assert rows[0]["error"]["exit_code"] == 3 and "Third-Party Compatibility" in rows[0]["error"]["hint"]
    assert rows[1]["error"] is None and rows[1]["on"] is True and rows[1]["route"] == "local"
    assert rows[2]["error"]["exit_code"] == 6 and "no route worked" in rows[2]["error"]["message"]
    failures = result.stderr.splitlines()
    assert len(failures) == 2
    assert failures[0].startswith("tpcloud: Living Room: ") and failures[1].startswith("tpcloud: Garage: ")
    other_order = known("switch", "Garage", "Desk Lamp", "Living Room", "off")
    assert other_order.code == 6 and other_order.stdout == "Desk Lamp: off\n"


def test_one_name_keeps_the_one_device_forms(known, home):
    result = known("switch", "Desk Lamp", "on", "--json")
    assert result.code == 0 and json.loads(result.stdout)["name"] == "Desk Lamp"
    refuse_credentials(home, "Living Room")
    failed = known("switch", "Living Room", "on", "--json")
    assert failed.code == 3 and failed.stdout == ""
    assert one_line(failed.stderr).startswith("tpcloud: Living Room: ")


def test_an_unknown_name_fails_before_anything_is_switched(known, home, populated_cloud):
    known("switch", "Desk Lamp", "Bedroom", "on")
    populated_cloud.clear_requests()
    result = known("switch", "Desk Lamp", "Bedrom", "off")
    assert result.code == 4 and 'did you mean "Bedroom"' in one_line(result.stderr)
    assert is_on(home, "Desk Lamp") and is_on(home, "Bedroom")
    assert populated_cloud.count("getDeviceList") == 1  # the one refresh an unknown name earns


@pytest.mark.parametrize("args, message", [
    (["Desk Lamp"], "the last argument must be on, off or toggle"),
    ([], "say what to do"),
    (["off"], "name a device or group"),
    (["--all", "Desk Lamp", "off"], "--all"),
    (["Desk Lamp", "Hallway", "off", "--host", "127.0.0.1"], "--host"),
])
def test_usage_errors(known, args, message):
    result = known("switch", *args)
    assert result.code == 2 and message in one_line(result.stderr), result


# -- --all -------------------------------------------------------------------------------------


def test_all_switches_every_plug_bulb_and_outlet_and_says_which_failed(known, home, populated_cloud):
    result = known("switch", "--all", "on")
    listed = json.loads(known("list", "--json").stdout)
    expected = [t for d in listed for t in ([f"{d['name']}/{o['name']}" for o in d["outlets"]] or [d["name"]])]
    failing = ["Garage", "Tapo Plug"]  # offline in the cloud, and not on this LAN
    assert result.code == 6, result
    assert result.stdout.splitlines() == [f"{name}: on" for name in expected if name not in failing]
    assert [line.split(":")[1].strip() for line in result.stderr.splitlines()] == failing
    for name in expected:
        if name not in failing and name.partition("/")[0] in home.devices:
            assert is_on(home, name), name
    assert populated_cloud.by_alias["Hall Bulb"].is_on()
    off = known("switch", "--all", "off", "--json")
    assert [r["name"] for r in json.loads(off.stdout)] == expected


# -- groups ------------------------------------------------------------------------------------


def test_a_group_from_config_toml(known, home):
    write_config(known, '[groups]\nEvening = ["Desk Lamp", "Power Strip/Fan", "Bedroom"]\n')
    result = known("switch", "evening", "off")
    assert result.code == 0, result
    assert result.stdout.splitlines() == ["Desk Lamp: off", "Power Strip/Fan: off", "Bedroom: off"]
    both = known("switch", "Hallway", "evening", "desk lamp", "on", "--json")
    assert [r["name"] for r in json.loads(both.stdout)] == ["Hallway", "Desk Lamp", "Power Strip/Fan", "Bedroom"]
    assert all(is_on(home, name) for name in ("Hallway", "Desk Lamp", "Power Strip/Fan", "Bedroom"))
    state = known("state", "evening", "--json")
    rows = json.loads(state.stdout)
    assert [r["name"] for r in rows] == ["Desk Lamp", "Power Strip/Fan", "Bedroom"]
    assert rows[0]["reply"]["relay_state"] == 1 and rows[2]["reply"]["device_on"] is True


def test_a_group_that_is_also_a_device_name_is_refused(known, home):
    assert known("switch", "Desk Lamp", "Hallway", "off").code == 0
    write_config(known, '[groups]\nhallway = ["Desk Lamp"]\n')
    result = known("switch", "Hallway", "on")
    assert result.code == 4 and "both a group" in one_line(result.stderr)
    assert not is_on(home, "Desk Lamp") and not is_on(home, "Hallway")


@pytest.mark.parametrize("config, code, message", [
    ('[groups]\nevening = ["Desk Lamp", "Nowhere"]\n', 4, 'group "evening": no device named "Nowhere"'),
    ('[groups]\nevening = "Desk Lamp"\n', 2, "must be a list"),
    ('[groups\nevening = []\n', 2, "not valid TOML"),
])
def test_a_broken_group_stops_the_command(known, home, config, code, message):
    assert known("switch", "Desk Lamp", "off").code == 0
    write_config(known, config)
    result = known("switch", "evening", "on")
    assert result.code == code and message in one_line(result.stderr), result
    assert not is_on(home, "Desk Lamp")


def test_groups_on_python_without_tomllib_say_what_is_needed(tmp_path, monkeypatch):
    import sys

    from tpcloud.config import load_groups
    from tpcloud.errors import UsageError

    (tmp_path / "config.toml").write_text('[groups]\nevening = ["Desk Lamp"]\n')
    assert load_groups(tmp_path) == {"evening": ("Desk Lamp",)}
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    with pytest.raises(UsageError, match="needs Python 3.11"):
        load_groups(tmp_path)
    assert load_groups(tmp_path / "absent") == {}


# -- state, and strips -------------------------------------------------------------------------


def test_state_of_several_devices(known, home):
    result = known("state", "Office Strip", "Power Strip", "Living Room")
    assert result.code == 0, result
    out = result.stdout
    assert out.index("Office Strip:") < out.index("Power Strip:") < out.index("Living Room:")
    for outlet in ("Monitor", "Printer", "Charger", "Fan", "Radio", "Heater"):
        assert f"outlet {outlet}:" in out


def test_strip_outlets_are_listed_under_their_strip_and_named_alone(known, home):
    table = known("list").stdout.splitlines()
    for strip, outlets in (("Office Strip", ["Monitor", "Printer", "Charger"]), ("Power Strip", ["Fan", "Radio", "Heater"])):
        at = next(i for i, line in enumerate(table) if line.startswith(strip))
        assert [line.split()[1] for line in table[at + 1:at + 4]] == outlets, table
    result = known("switch", "radio", "printer", "off")
    assert result.stdout.splitlines() == ["Power Strip/Radio: off", "Office Strip/Printer: off"]
    assert not is_on(home, "Power Strip/Radio") and not is_on(home, "Office Strip/Printer")
