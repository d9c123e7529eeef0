"""Several outlets of one strip in one command, end to end: one request per strip, on every route.

`switch --all`, a group or several names that take outlets of one strip send that strip one
request for them all: a Kasa strip (KP303) over XOR and through the cloud's passthrough gets one
``context.child_ids`` request that reads its sysinfo back; a Tapo strip over KLAP (P300) and AES
(P304M) gets one ``multipleRequest`` of ``control_child``. The wire emulators and the fake cloud
record what reached each device, and the device's own state, read afresh, says each outlet is as
the command printed. A strip that switches only the first outlet named (as an HS300 2.0 does), a
strip that refuses the one request, and an outlet that fails inside it show the way back to one
request per outlet, and that a failure is that outlet's alone.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from tests.conftest import one_line
from tests.doubles.home import serve_tapo
from tests.doubles.wires import AesServer
from tests.test_cli_many import is_on, known, write_config  # noqa: F401 (known is a fixture)

OFFICE = ["Office Strip/Monitor", "Office Strip/Printer", "Office Strip/Charger"]  # KP303, XOR
POWER = ["Power Strip/Fan", "Power Strip/Radio", "Power Strip/Heater"]  # P300, KLAP v2
BAR = ["Socket Bar/Kettle", "Socket Bar/Toaster", "Socket Bar/Mixer", "Socket Bar/Lamp"]  # P304M, AES


class Since:
    """The requests each emulated device received over its wire from now on."""

    def __init__(self, home) -> None:
        self.home = home
        self.start = {name: len(server.requests) for name, server in home.servers.items()}

    def __call__(self, name: str) -> list[dict]:
        return self.home.servers[name].requests[self.start[name]:]


def printed(result) -> list[str]:
    """The lines of RESULT's stdout without the route `-v` adds to them."""
    return [line.partition(" (via ")[0] for line in result.stdout.splitlines()]


def relay(home, state: int, *positions: int) -> dict:
    """The one request that switches the Office Strip's outlets at POSITIONS to STATE."""
    ids = home.devices["Office Strip"].child_ids
    return {
        "context": {"child_ids": [ids[p] for p in positions]},
        "system": {"set_relay_state": {"state": state}, "get_sysinfo": {}},
    }


def controls(home, name: str, request: dict) -> list[tuple[int, bool]]:
    """The outlets (by position) and states a Tapo strip's multipleRequest switches."""
    assert request["method"] == "multipleRequest", request
    ids = home.devices[name].child_ids()
    return [
        (ids.index(r["params"]["device_id"]), r["params"]["requestData"]["params"]["device_on"])
        for r in request["params"]["requests"] if r["method"] == "control_child"
    ]


@pytest.fixture
def with_bar(home, known):
    """The known home with a P304M strip over AES, its outlets read."""
    with ExitStack() as stack:
        serve_tapo(stack, home, "P304M(UK)_1.0_1.0.3.json", "Socket Bar", "A842A1000004", AesServer,
                   child_nicknames=["Kettle", "Toaster", "Mixer", "Lamp"])
        known.env["TPCLOUD_DISCOVERY_TARGET"] = home.targets
        assert known("discover", "--timeout", "1").code == 0
        assert known("list", "--refresh").code == 0
        yield known


@pytest.mark.parametrize("action", ["off", "on"])
def test_switch_all_sends_each_strip_one_request_on_every_wire(with_bar, home, action):
    on = action == "on"
    assert with_bar("switch", *OFFICE, *POWER, *BAR, "off" if on else "on").code == 0
    since = Since(home)

    result = with_bar("switch", "--all", action)

    assert result.code == 6, result  # Garage and Tapo Plug: offline, and not on this LAN
    assert all(f"{name}: {action}" in result.stdout.splitlines() for name in OFFICE + POWER + BAR)
    assert since("Office Strip") == [relay(home, int(on), 0, 1, 2)]
    [power] = since("Power Strip")
    assert controls(home, "Power Strip", power) == [(0, on), (1, on), (2, on)]
    [bar] = since("Socket Bar")
    assert controls(home, "Socket Bar", bar) == [(0, on), (1, on), (2, on), (3, on)]
    device = home.devices["Socket Bar"]
    assert [device.is_on(child) for child in device.child_ids()] == [on] * 4
    assert all(is_on(home, name) is on for name in OFFICE + POWER)


def test_a_group_or_several_names_of_one_strip_cost_it_one_request(known, home):
    write_config(known, '[groups]\nevening = ["Office Strip/Monitor", "Desk Lamp", "Power Strip/Heater", '
                        '"Office Strip/Charger", "Power Strip/Fan"]\n')
    since = Since(home)
    result = known("switch", "evening", "off")
    assert result.code == 0, result
    assert result.stdout.splitlines() == [f"{name}: off" for name in (
        "Office Strip/Monitor", "Desk Lamp", "Power Strip/Heater", "Office Strip/Charger", "Power Strip/Fan")]
    assert since("Office Strip") == [relay(home, 0, 0, 2)] and len(since("Desk Lamp")) == 1
    assert [controls(home, "Power Strip", r) for r in since("Power Strip")] == [[(2, False), (0, False)]]
    assert not any(is_on(home, name) for name in ("Office Strip/Monitor", "Office Strip/Charger", *POWER[::2]))

    since = Since(home)
    named = known("switch", "monitor", "fan", "charger", "heater", "on", "--json")  # outlets by their own alias
    assert named.code == 0, named
    assert [(row["name"], row["on"], row["wire"]) for row in json.loads(named.stdout)] == [
        ("Office Strip/Monitor", True, "xor"), ("Power Strip/Fan", True, "klap"),
        ("Office Strip/Charger", True, "xor"), ("Power Strip/Heater", True, "klap"),
    ]
    assert since("Office Strip") == [relay(home, 1, 0, 2)] and len(since("Power Strip")) == 1
    assert all(is_on(home, name) for name in ("Office Strip/Monitor", "Office Strip/Charger", *POWER[::2]))


def test_one_outlet_alone_and_a_strip_named_whole_is_every_outlet_in_one_request(known, home):
    since = Since(home)
    assert known("switch", "Office Strip/Printer", "on").stdout == "Office Strip/Printer: on\n"
    assert known("switch", "Office Strip", "off").stdout == "Office Strip: off\n"
    printer = home.devices["Office Strip"].child_ids[1]
    assert since("Office Strip") == [
        {"context": {"child_ids": [printer]}, "system": {"set_relay_state": {"state": 1}}},
        relay(home, 0, 0, 1, 2),
    ]
    assert not any(is_on(home, name) for name in OFFICE)


def test_a_tapo_strip_named_whole_switches_all_its_outlets_in_one_request(known, home):
    # A Tapo strip has no switch of its own (tapo#303): its outlets are the switch.
    since = Since(home)
    result = known("switch", "Power Strip", "on")
    assert (result.code, result.stdout) == (0, "Power Strip: on\n"), result
    assert [controls(home, "Power Strip", r) for r in since("Power Strip")] == [[(0, True), (1, True), (2, True)]]
    assert all(is_on(home, name) for name in POWER)
    # toggle: an outlet is on, so all go off (one read of the strip and its outlets, one write)
    since = Since(home)
    assert known("switch", "Power Strip", "toggle").stdout == "Power Strip: off\n"
    *read, write = since("Power Strip")
    assert [r["method"] for r in read] == ["get_device_info", "get_child_device_list"]
    assert controls(home, "Power Strip", write) == [(0, False), (1, False), (2, False)]
    assert not any(is_on(home, name) for name in POWER)
    known("switch", "Power Strip/Radio", "on")
    assert known("switch", "Power Strip", "toggle", "--json").stdout.count('"on": false') == 1
    assert not any(is_on(home, name) for name in POWER)


def test_toggle_reads_a_tapo_strip_once_and_switches_its_outlets_in_one_request(with_bar, home):
    device = home.devices["Socket Bar"]
    kettle, toaster, mixer, lamp = device.child_ids()
    device.set_on(True, toaster)
    since = Since(home)

    result = with_bar("switch", "Socket Bar/Kettle", "Socket Bar/Toaster", "Socket Bar/Lamp", "toggle")

    assert result.code == 0, result
    assert result.stdout.splitlines() == ["Socket Bar/Kettle: on", "Socket Bar/Toaster: off", "Socket Bar/Lamp: on"]
    reads, write = since("Socket Bar")[:2], since("Socket Bar")[2:]
    assert [r["method"] for r in reads] == ["get_device_info", "get_child_device_list"]
    assert [controls(home, "Socket Bar", r) for r in write] == [[(0, True), (1, False), (3, True)]]
    assert [device.is_on(child) for child in (kettle, toaster, mixer, lamp)] == [True, False, False, True]


def test_through_the_cloud_a_kasa_strip_gets_one_passthrough(account, populated_cloud):
    assert account("list").code == 0  # the strip's outlets, read through the cloud
    strip = populated_cloud.by_alias["Office Strip"]
    strip.set_state(True)
    populated_cloud.clear_requests()

    result = account("switch", "--all", "off", "--via", "cloud")

    assert result.code == 6, result  # Tapo Plug (-20571) and Garage (offline)
    assert all(f"{name}: off" in result.stdout.splitlines() for name in OFFICE)
    sent = [json.loads(r.params["requestData"]) for r in populated_cloud.calls("passthrough")
            if r.params["deviceId"] == strip.device_id]
    assert sent == [{"context": {"child_ids": strip.child_ids},
                     "system": {"set_relay_state": {"state": 0}, "get_sysinfo": {}}}]
    assert not any(strip.is_on(n) for n in range(3))

    populated_cloud.clear_requests()  # named whole, the same one request
    assert account("switch", "Office Strip", "on", "--via", "cloud").stdout == "Office Strip: on\n"
    assert [json.loads(r.params["requestData"]) for r in populated_cloud.calls("passthrough")] == [
        {"context": {"child_ids": strip.child_ids}, "system": {"set_relay_state": {"state": 1}, "get_sysinfo": {}}}]
    assert all(strip.is_on(n) for n in range(3))


def test_outlets_a_strip_did_not_switch_in_the_one_request_are_sent_alone(known, home):
    strip = home.devices["Office Strip"]
    strip.first_child_only = True  # as an HS300 2.0 takes several child_ids: the first only, err_code 0
    strip.set_state(True)
    since = Since(home)

    result = known("-v", "switch", *OFFICE, "off")

    assert result.code == 0 and printed(result) == [f"{name}: off" for name in OFFICE], result
    assert "Office Strip: 2 of 3 outlets not confirmed by the request for them all; sending one request each" \
        in result.stderr
    assert since("Office Strip") == [relay(home, 0, 0, 1, 2), *(
        {"context": {"child_ids": [child]}, "system": {"set_relay_state": {"state": 0}}}
        for child in strip.child_ids[1:]
    )]
    assert not any(is_on(home, name) for name in OFFICE)

    # Named whole, such a strip is switched the same way: the HS300 2.0 bug (python-kasa#637),
    # where only the first outlet followed the strip, does not happen.
    since = Since(home)
    assert known("switch", "Office Strip", "on").stdout == "Office Strip: on\n"
    assert len(since("Office Strip")) == 3 and all(is_on(home, name) for name in OFFICE)


def test_a_strip_that_refuses_the_one_request_gets_one_per_outlet(known, home):
    device = home.devices["Power Strip"]
    handle = device.handle
    device.handle = lambda request: (  # firmware that does not take control_child in a multipleRequest
        {"error_code": -1002} if request.get("method") == "multipleRequest" else handle(request))
    since = Since(home)

    result = known("-v", "switch", "Power Strip/Fan", "Power Strip/Heater", "off")

    assert result.code == 0 and printed(result) == ["Power Strip/Fan: off", "Power Strip/Heater: off"], result
    assert "Power Strip: 2 of 2 outlets not confirmed by the request for them all; sending one request each" \
        in result.stderr
    assert [r["method"] for r in since("Power Strip")] == ["multipleRequest", "control_child", "control_child"]
    assert not is_on(home, "Power Strip/Fan") and not is_on(home, "Power Strip/Heater")


def test_an_outlet_that_fails_in_the_one_request_is_the_only_failure(known, home):
    device = home.devices["Power Strip"]
    fan, radio, heater = device.child_ids()
    device.refusing[radio] = -1301
    since = Since(home)

    result = known("switch", *POWER, "off")

    assert result.code == 5, result  # the device refused: Radio's error is the first failure
    assert result.stdout.splitlines() == ["Power Strip/Fan: off", "Power Strip/Heater: off"]
    [failure] = result.stderr.splitlines()
    assert failure.startswith(
        "tpcloud: Power Strip/Radio: the device is busy or rate-limiting requests (error_code -1301)")
    assert len(since("Power Strip")) == 1
    assert [device.is_on(child) for child in (fan, radio, heater)] == [False, True, False]

    # Named whole, the strip is switched as far as it goes, and the outlet that failed is named.
    device.refusing[radio] = -1301
    result = known("switch", "Power Strip", "on")
    assert result.code == 5 and result.stdout == "", result
    assert one_line(result.stderr).startswith(
        "tpcloud: Power Strip: outlet Radio: the device is busy or rate-limiting requests (error_code -1301)")
    assert [device.is_on(child) for child in (fan, heater)] == [True, True]  # Radio refused, and stays on
