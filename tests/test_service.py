"""The device service (tpcloud.service), built in-process.

DeviceService is what commands talk to: names in (devices, outlets, groups, --all), device
results out (outcomes in order, errors naming their target). Here it gets a fake device source
(the cloud's device list, counted), a fake router (records each (device_id, request) and answers
from small device states seeded with real recorded replies from tests/fixtures), a real
DeviceCache and a real AddressBook over an empty LanCache in a temporary folder. With no process,
socket or fake cloud between the test and the service, every request it builds and every refresh
it makes can be asserted exactly, and the whole file runs in well under a second.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from tpcloud import errors
from tpcloud.addresses import AddressBook
from tpcloud.cache import DeviceCache, LanCache
from tpcloud.devices import Device, Outlet, Target
from tpcloud.dialects.iot import BULB_SERVICE, STRIP_SERVICE
from tpcloud.lan.discovery import Found
from tpcloud.routes import Route
from tpcloud.service import DeviceService, Done, Outcome, StateResult, SwitchResult

FIXTURES = Path(__file__).parent / "fixtures"

DESK, BULB, SHELF, STRIP, DIMMER = "8006DESK", "8012BULB", "8012SHELF", "8006STRIP", "8006DIMMER"
TAPO, TSTRIP, KS, HUB, CAM, GARAGE = "8022TAPO", "8022TSTRIP", "8022KS", "8022HUB", "8022CAM", "8006GARAGE"
HS300_OUTLETS = ["Monitor", "Printer", "Charger", "Speaker", "Router", "Modem"]
P300_OUTLETS = {1: "Kettle", 2: "Toaster", 3: "Radio"}  # by position

CLOUD = Route("cloud")
KLAP = Route("local", "klap", "192.0.2.20:80")
SYSINFO = {"system": {"get_sysinfo": {}}}


def reads_only(request: dict) -> bool:
    """Whether REQUEST (of either dialect, to a device or one outlet) only asks (get_* methods)."""
    if request.get("method") == "control_child":
        return reads_only(request["params"]["requestData"])
    if "method" in request:
        return request["method"].startswith("get_")
    methods = [m for module, body in request.items() if module != "context" for m in body]
    return all(m.startswith("get_") for m in methods)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def fixture(kind: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / kind / name).read_text())


def entry(device_id: str, alias: str, model: str, device_type: str, *, online: bool = True) -> dict[str, Any]:
    """One entry of the cloud's deviceList, as getDeviceList sends it (SMART aliases base64)."""
    return {
        "deviceId": device_id,
        "alias": b64(alias) if device_type.startswith("SMART.") else alias,
        "deviceModel": model,
        "deviceType": device_type,
        "status": 1 if online else 0,
        "appServerUrl": "https://eu-wap.example",
        "deviceMac": ":".join(f"{b:02X}" for b in hashlib.sha256(device_id.encode()).digest()[:6]),
        "fwVer": "1.0.0",
        "deviceHwVer": "1.0",
    }


ACCOUNT = [
    entry(DESK, "Desk Lamp", "HS103(US)", "IOT.SMARTPLUGSWITCH"),
    entry(BULB, "Hall Bulb", "KL130(US)", "IOT.SMARTBULB"),
    entry(SHELF, "Shelf Strip", "KL430(US)", "IOT.SMARTBULB"),
    entry(STRIP, "Office Strip", "HS300(US)", "IOT.SMARTPLUGSWITCH"),
    entry(DIMMER, "Porch Dimmer", "HS220(US)", "IOT.SMARTPLUGSWITCH"),
    entry(TAPO, "Tapo Plug", "P110(EU)", "SMART.TAPOPLUG"),
    entry(TSTRIP, "Tapo Strip", "P300(EU)", "SMART.TAPOPLUG"),
    entry(KS, "Stair Switch", "KS205(US)", "SMART.KASASWITCH"),
    entry(HUB, "Hub", "H100(EU)", "SMART.TAPOHUB"),
    entry(CAM, "Door Cam", "C200(EU)", "SMART.IPCAMERA"),
    entry(GARAGE, "Garage", "HS103(US)", "IOT.SMARTPLUGSWITCH", online=False),
]


# ------------------------------------------------------------------------- the fake devices


class Iot:
    """A Kasa device's state (a fixture's sysinfo), which the requests it is sent change."""

    def __init__(self, name: str, alias: str, *, device_id: str = "", outlets: list[str] = ()) -> None:
        self.sysinfo = fixture("iot", name)["system"]["get_sysinfo"]
        self.sysinfo.pop("err_code", None)
        self.sysinfo["alias"] = alias
        for n, (child, outlet) in enumerate(zip(self.sysinfo.get("children", []), outlets)):
            child.update(id=f"{device_id}{n:02d}", alias=outlet)
        self.refuse: int | None = None  # an err_code the device answers every change with
        self.acts_on: int | None = None  # how many of several child_ids it switches (HS300 2.0: 1), None all

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Each module and method of REQUEST in turn, as the device answers them."""
        request = dict(request)
        context = request.pop("context", None)
        return {
            module: {method: self._method(module, method, params, context) for method, params in methods.items()}
            for module, methods in request.items()
        }

    def _method(self, module: str, method: str, params: dict, context: dict | None) -> dict[str, Any]:
        if (module, method) == ("system", "get_sysinfo"):
            return {**copy.deepcopy(self.sysinfo), "err_code": 0}
        if self.refuse is not None:
            return {"err_code": self.refuse}
        if method == "set_relay_state" and context:
            for child_id in context["child_ids"][:self.acts_on]:
                next(c for c in self.sysinfo["children"] if c["id"] == child_id)["state"] = params["state"]
        elif method == "set_relay_state":
            self.sysinfo["relay_state"] = params["state"]
        elif module in (BULB_SERVICE, STRIP_SERVICE):
            self.sysinfo["light_state"]["on_off"] = params["on_off"]
        elif method == "set_led_off":
            self.sysinfo["led_off"] = params["off"]
        return {"err_code": 0}


class Smart:
    """A Tapo device's state (a fixture's get_device_info and children)."""

    def __init__(self, name: str, nickname: str, outlets: dict[int, str] = {}) -> None:
        data = fixture("smart", name)
        self.info = data["get_device_info"]
        self.info["nickname"] = b64(nickname)
        self.children = data.get("get_child_device_list", {}).get("child_device_list", [])
        for child in self.children:
            child["nickname"] = b64(outlets[child["position"]])
        self.batch_error: int | None = None  # the error_code it answers every multipleRequest with
        self.refusing: dict[str, int] = {}  # children that answer set_device_info with an error_code
        # Children whose control_child fails inside a multipleRequest, with this error_code, which
        # ends it ("Multi requests don't continue after errors": python-kasa's SmartProtocol).
        self.entry_error: dict[str, int] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", {})
        if method == "multipleRequest":
            return self._multiple(params["requests"])
        if method == "get_device_info":
            return {"error_code": 0, "result": copy.deepcopy(self.info)}
        if method == "get_child_device_list":
            children = copy.deepcopy(self.children)
            return {"error_code": 0, "result": {"child_device_list": children, "start_index": 0, "sum": len(children)}}
        if method == "set_device_info":
            self.info.update(params)
            return {"error_code": 0}
        if method == "control_child":
            child = next(c for c in self.children if c["device_id"] == params["device_id"])
            inner = params["requestData"]
            if inner["method"] == "set_device_info" and child["device_id"] in self.refusing:
                return {"error_code": 0, "result": {"responseData": {"error_code": self.refusing[child["device_id"]]}}}
            if inner["method"] == "set_device_info":
                child.update(inner["params"])
                return {"error_code": 0, "result": {"responseData": {"error_code": 0}}}
            if inner["method"] == "get_device_info":
                return {"error_code": 0, "result": {"responseData": {"error_code": 0, "result": copy.deepcopy(child)}}}
            return {"error_code": 0, "result": {"responseData": {"error_code": -1002}}}
        return {"error_code": -1002}

    def _multiple(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        if self.batch_error is not None:
            return {"error_code": self.batch_error}
        replies = []
        for request in requests:
            failure = self.entry_error.get(request["params"]["device_id"])
            if failure is not None:
                replies.append({"method": request["method"], "error_code": failure})
                break
            replies.append({"method": request["method"], **self.handle(request)})
        return {"error_code": 0, "result": {"responses": replies}}


def account_devices() -> dict[str, Any]:
    return {
        DESK: Iot("HS103(US)_2.1_1.1.4.json", "Desk Lamp"),
        BULB: Iot("KL130(US)_1.0_1.8.11.json", "Hall Bulb"),
        SHELF: Iot("KL430(US)_2.0_1.0.11.json", "Shelf Strip"),
        STRIP: Iot("HS300(US)_2.0_1.0.12.json", "Office Strip", device_id=STRIP, outlets=HS300_OUTLETS),
        DIMMER: Iot("HS220(US)_1.0_1.5.7.json", "Porch Dimmer"),
        TAPO: Smart("P110(EU)_1.0_1.2.3.json", "Tapo Plug"),
        TSTRIP: Smart("P300(EU)_1.0_1.0.15.json", "Tapo Strip", P300_OUTLETS),
    }


# --------------------------------------------------------------------------------- the fakes


class FakeSource:
    """The account's device list; counts how often it is fetched."""

    def __init__(self, entries: list[dict[str, Any]] = ACCOUNT) -> None:
        self.entries = copy.deepcopy(entries)
        self.calls = 0

    async def device_list(self) -> list[dict[str, Any]]:
        self.calls += 1
        return copy.deepcopy(self.entries)


class FakeRouter:
    """Records (device_id, request); answers from the device states, or raises FAILURES[id]()."""

    def __init__(self, devices: dict[str, Any] | None = None, *, reachable: set[str] | None = None) -> None:
        self.devices = account_devices() if devices is None else devices
        self.reachable = set(self.devices) if reachable is None else reachable
        self.failures: dict[str, Callable[[], errors.TpcloudError]] = {}
        self.route: Callable[[Any, dict], Route] = lambda device, request: KLAP if device.dialect == "smart" else CLOUD
        self.requests: list[tuple[str, dict]] = []

    def may_reach(self, device) -> bool:
        return device.device_id in self.reachable

    async def send(self, device, request):
        self.requests.append((device.device_id, copy.deepcopy(request)))
        await asyncio.sleep(0)  # a real route yields: let the others run meanwhile
        if device.device_id in self.failures:
            raise self.failures[device.device_id]()
        return self.devices[device.device_id].handle(request), self.route(device, request)

    def of(self, device_id: str) -> list[dict]:
        return [request for sent_to, request in self.requests if sent_to == device_id]

    def changes(self) -> list[tuple[str, dict]]:
        """Every request that was not a read (of state, or of a pending countdown)."""
        return [(d, r) for d, r in self.requests if not reads_only(r)]


def make(tmp_path, source: FakeSource | None = None, router: FakeRouter | None = None, *, groups=None,
         host: str | None = None, log=None, clock=None, addresses: AddressBook | None = None) -> DeviceService:
    folder = tmp_path / "cache"
    cache = DeviceCache(folder, ttl=3600, **({"clock": clock} if clock else {}))
    return DeviceService(
        source=source or FakeSource(),
        router=router or FakeRouter(),
        cache=cache,
        addresses=addresses or AddressBook(LanCache(folder), targets=("192.0.2.255",), timeout=1.0, host=host),
        groups=lambda: dict(groups or {}),
        log=log or (lambda _line: None),
    )


def run(awaitable):
    return asyncio.run(awaitable)


def names(targets) -> list[str]:
    return [t.full_name for t in targets]


async def targets_of(service: DeviceService, *wanted: str) -> list[Target]:
    return (await service.select(list(wanted))).targets


def warm(tmp_path, source: FakeSource) -> None:
    """Fill the device cache the way an earlier command would have."""
    run(make(tmp_path, source, FakeRouter()).devices())


# -------------------------------------------------------------------------- the device list


def test_first_call_fetches_the_list_and_caches_it(tmp_path):
    source = FakeSource()
    devices = run(make(tmp_path, source, FakeRouter(reachable=set())).devices())

    assert source.calls == 1
    assert [d.alias for d in devices] == [
        "Desk Lamp", "Hall Bulb", "Shelf Strip", "Office Strip", "Porch Dimmer", "Tapo Plug", "Tapo Strip",
        "Stair Switch", "Hub", "Door Cam", "Garage",
    ]
    assert (devices[5].dialect, devices[5].device_id, devices[-1].online) == ("smart", TAPO, False)

    again = run(make(tmp_path, source, FakeRouter(reachable=set())).devices())
    assert again == devices
    assert source.calls == 1  # the second command read the cache


def test_stale_cache_is_fetched_again(tmp_path):
    source, now = FakeSource(), [1000.0]
    run(make(tmp_path, source, FakeRouter(reachable=set()), clock=lambda: now[0]).devices())
    now[0] += 3601
    run(make(tmp_path, source, FakeRouter(reachable=set()), clock=lambda: now[0]).devices())
    assert source.calls == 2


def test_strip_outlets_become_names_on_refresh_only_for_reachable_devices(tmp_path):
    source, router = FakeSource(), FakeRouter(reachable={STRIP, TSTRIP, BULB, DESK})
    devices = {d.device_id: d for d in run(make(tmp_path, source, router).devices())}

    assert devices[STRIP].outlets == tuple(Outlet(f"{STRIP}{n:02d}", alias) for n, alias in enumerate(HS300_OUTLETS))
    assert devices[TSTRIP].outlets == (  # in position order
        Outlet("SCRUBBED_CHILD_DEVICE_ID_3", "Kettle"),
        Outlet("SCRUBBED_CHILD_DEVICE_ID_2", "Toaster"),
        Outlet("SCRUBBED_CHILD_DEVICE_ID_1", "Radio"),
    )
    assert devices[DESK].outlets == () and devices[TAPO].outlets == ()
    assert router.of(STRIP) == [SYSINFO] and router.of(DESK) == [SYSINFO]
    assert router.of(TSTRIP) == [{"method": "get_device_info"}, {"method": "get_child_device_list"}]
    assert router.of(BULB) == []  # a bulb has no outlets: not asked, though reachable
    assert {d for d, _ in router.requests} == {STRIP, TSTRIP, DESK}

    # The outlets are names now, also for the next command (from the cache, no fetch).
    later = make(tmp_path, source, FakeRouter(reachable=set()))
    assert run(later.resolve("office strip/printer")) == Target(devices[STRIP], Outlet(f"{STRIP}01", "Printer"))
    assert run(later.resolve("Toaster")).full_name == "Tapo Strip/Toaster"
    assert source.calls == 1


def test_strips_the_router_may_not_reach_keep_no_outlets_and_are_not_asked(tmp_path):
    router = FakeRouter(reachable=set())
    devices = run(make(tmp_path, FakeSource(), router).devices())
    assert all(d.outlets == () for d in devices)
    assert router.requests == []


def test_outlets_not_read_are_logged_and_the_device_kept(tmp_path):
    lines: list[str] = []
    router = FakeRouter(reachable={STRIP, DESK})
    router.failures[STRIP] = lambda: errors.Timeout("no answer within 2 s")
    devices = {d.device_id: d for d in run(make(tmp_path, FakeSource(), router, log=lines.append).devices())}

    assert devices[STRIP].outlets == () and devices[STRIP].alias == "Office Strip"
    assert len(lines) == 1
    assert lines == ["outlets not read: Office Strip: no answer within 2 s"]


# ------------------------------------------------------------------------------------ names


def test_unknown_name_refreshes_once_then_name_not_found_with_suggestion(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    service = make(tmp_path, source, FakeRouter(reachable=set()))

    with pytest.raises(errors.NameNotFound) as caught:
        run(service.resolve("Desk Lamq"))
    assert caught.value.message == 'no device named "Desk Lamq" in this account'
    assert caught.value.hint == 'did you mean "Desk Lamp"?'
    assert source.calls == 2  # the warm-up, and one refresh

    with pytest.raises(errors.NameNotFound):
        run(service.resolve("Nothing Like It"))
    assert source.calls == 2  # once per command


def test_unknown_name_is_found_after_the_refresh(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    source.entries.append(entry("8006NEW", "New Plug", "HS103(US)", "IOT.SMARTPLUGSWITCH"))

    target = run(make(tmp_path, source, FakeRouter(reachable=set())).resolve("new plug"))
    assert (target.device.device_id, target.outlet) == ("8006NEW", None)
    assert source.calls == 2


def test_a_cold_cache_is_fetched_once_even_for_an_unknown_name(tmp_path):
    source = FakeSource()
    with pytest.raises(errors.NameNotFound):
        run(make(tmp_path, source, FakeRouter(reachable=set())).resolve("Nope"))
    assert source.calls == 1


def test_select_resolves_all_names_before_anything_is_sent(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    router = FakeRouter()
    service = make(tmp_path, source, router, groups={"evening": ("Hall Bulb", "Tapo Plug")})

    with pytest.raises(errors.NameNotFound) as caught:
        run(service.select(["Desk Lamp", "evening", "Dsek Lamp"]))
    assert caught.value.message == 'no device named "Dsek Lamp" in this account'
    assert source.calls == 2
    assert router.changes() == []  # only the refresh's outlet reads went out: nothing switched


def test_groups_expand_and_dedupe(tmp_path):
    groups = {"evening": ("Desk Lamp", "Office Strip/Printer", "hall bulb"), "lights": ("Hall Bulb", "Shelf Strip")}
    service = make(tmp_path, groups=groups)

    selection = run(service.select(["Desk Lamp", "evening", " LIGHTS ", DESK, "printer"]))
    assert names(selection.targets) == ["Desk Lamp", "Office Strip/Printer", "Hall Bulb", "Shelf Strip"]
    assert selection.single is False

    assert run(service.select(["desk lamp"])).single is True
    one_member = run(make(tmp_path, groups={"desk": ("Desk Lamp",)}).select(["desk"]))
    assert names(one_member.targets) == ["Desk Lamp"] and one_member.single is False


def test_a_group_member_that_names_nothing_names_its_group(tmp_path):
    service = make(tmp_path, groups={"evening": ("Desk Lamp", "Hal Bulb")})
    with pytest.raises(errors.NameNotFound) as caught:
        run(service.select(["evening"]))
    assert caught.value.message == 'group "evening": no device named "Hal Bulb" in this account'


def test_a_name_that_is_both_group_and_device_is_an_error(tmp_path):
    service = make(tmp_path, groups={"desk lamp": ("Hall Bulb",)})
    with pytest.raises(errors.NameNotFound) as caught:
        run(service.select(["Desk Lamp"]))
    assert caught.value.message == '"Desk Lamp" is both a group in config.toml and a device (Desk Lamp)'
    assert caught.value.hint == "rename the group, or name the device by its id"


def test_all_picks_plugs_switches_bulbs_and_each_strip_outlet(tmp_path):
    selection = run(make(tmp_path).select([], every=True))
    assert names(selection.targets) == [
        "Desk Lamp", "Hall Bulb", "Shelf Strip",
        *(f"Office Strip/{outlet}" for outlet in HS300_OUTLETS),
        "Porch Dimmer", "Tapo Plug", "Tapo Strip/Kettle", "Tapo Strip/Toaster", "Tapo Strip/Radio",
        "Stair Switch", "Garage",
    ]  # not the hub nor the camera; offline devices too
    assert selection.single is False


def test_all_with_names_is_a_usage_error(tmp_path):
    with pytest.raises(errors.UsageError):
        run(make(tmp_path).select(["Desk Lamp"], every=True))


def test_host_names_one_device_only(tmp_path):
    service = make(tmp_path, host="192.0.2.50")
    assert names(run(service.select(["Desk Lamp"])).targets) == ["Desk Lamp"]
    with pytest.raises(errors.UsageError) as caught:
        run(service.select(["Desk Lamp", "Hall Bulb"]))
    assert caught.value.message == "--host is the address of one device; name only one with it"


# ---------------------------------------------------------------------------------- switching

SWITCHED = ["Desk Lamp", "Hall Bulb", "Shelf Strip", "Office Strip/Printer", "Tapo Plug", "Tapo Strip/Toaster"]


@pytest.mark.parametrize("action, on", [("on", True), ("off", False)])
def test_switch_many_builds_each_dialects_power_request_and_returns_outcomes_in_order(tmp_path, action, on):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, *SWITCHED))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, action))

    assert [(o.target, o.result, o.error) for o in outcomes] == [
        (t, SwitchResult(t, on, KLAP if t.device.dialect == "smart" else CLOUD), None) for t in targets
    ]
    state = int(on)
    assert router.requests == [  # no reads: on and off need none
        (DESK, {"system": {"set_relay_state": {"state": state}}}),
        (BULB, {BULB_SERVICE: {"transition_light_state": {"on_off": state, "ignore_default": 1 - state}}}),
        (SHELF, {STRIP_SERVICE: {"set_light_state": {"on_off": state, "ignore_default": 1 - state}}}),
        (STRIP, {"context": {"child_ids": [f"{STRIP}01"]}, "system": {"set_relay_state": {"state": state}}}),
        (TAPO, {"method": "set_device_info", "params": {"device_on": on}}),
        (TSTRIP, {"method": "control_child", "params": {
            "device_id": "SCRUBBED_CHILD_DEVICE_ID_2",
            "requestData": {"method": "set_device_info", "params": {"device_on": on}},
        }}),
    ]
    printer = router.devices[STRIP].sysinfo["children"][1]
    assert (printer["alias"], printer["state"]) == ("Printer", state)


def test_toggle_reads_each_state_then_switches_to_the_opposite(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Desk Lamp", "Office Strip/Printer", "Tapo Strip/Toaster", "Hall Bulb"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "toggle"))

    # Desk Lamp (HS103) and Hall Bulb (KL130) are off in their fixtures, the strips' outlets on.
    assert [(o.target.full_name, o.result.on) for o in outcomes] == [
        ("Desk Lamp", True), ("Office Strip/Printer", False), ("Tapo Strip/Toaster", False), ("Hall Bulb", True),
    ]
    assert router.of(DESK) == [SYSINFO, {"system": {"set_relay_state": {"state": 1}}}]
    assert router.of(STRIP) == [
        SYSINFO, {"context": {"child_ids": [f"{STRIP}01"]}, "system": {"set_relay_state": {"state": 0}}},
    ]
    assert router.of(TSTRIP) == [
        {"method": "get_device_info"},
        {"method": "get_child_device_list"},
        {"method": "control_child", "params": {
            "device_id": "SCRUBBED_CHILD_DEVICE_ID_2",
            "requestData": {"method": "set_device_info", "params": {"device_on": False}},
        }},
    ]
    assert router.of(BULB) == [SYSINFO, {BULB_SERVICE: {"transition_light_state": {"on_off": 1, "ignore_default": 0}}}]


def test_one_failing_device_does_not_stop_the_others_and_errors_name_their_target(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Desk Lamp", "Hall Bulb", "Office Strip/Printer", "Tapo Plug"))
    router.failures[BULB] = lambda: errors.DeviceUnreachable(
        "no route worked (cloud: the device is offline)", hint="check that the device is powered"
    )
    router.devices[STRIP].refuse = -3
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "on"))

    assert names(o.target for o in outcomes) == ["Desk Lamp", "Hall Bulb", "Office Strip/Printer", "Tapo Plug"]
    assert [o.error is None for o in outcomes] == [True, False, False, True]
    unreachable, refused = outcomes[1].error, outcomes[2].error
    assert type(unreachable) is errors.DeviceUnreachable
    assert unreachable.message == "Hall Bulb: no route worked (cloud: the device is offline)"
    assert type(refused) is errors.DeviceError and refused.code == -3
    assert refused.message == (
        "Office Strip/Printer: the device rejected the request (system.set_relay_state, err_code -3)"
    )
    assert outcomes[0].result == SwitchResult(targets[0], True, CLOUD)
    assert outcomes[3].result == SwitchResult(targets[3], True, KLAP)
    assert {d for d, _ in router.requests} == {DESK, BULB, STRIP, TAPO}


# ------------------------------------------------------------------- one request per strip


def outlets_of(device_id: str, *positions: int) -> list[str]:
    return [f"{device_id}{n:02d}" for n in positions]


def control(child: str, on: bool) -> dict[str, Any]:
    """A control_child switching CHILD, as it goes alone or inside a multipleRequest."""
    return {"method": "control_child", "params": {
        "device_id": child, "requestData": {"method": "set_device_info", "params": {"device_on": on}},
    }}


def several(*requests: dict[str, Any]) -> dict[str, Any]:
    return {"method": "multipleRequest", "params": {"requests": list(requests)}}


def test_outlets_of_one_strip_go_in_one_request_that_reads_the_sysinfo_back(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Office Strip/Monitor", "Desk Lamp", "Office Strip/Charger",
                             "Office Strip/Modem"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "off"))

    assert [(o.result, o.error) for o in outcomes] == [(SwitchResult(t, False, CLOUD), None) for t in targets]
    assert router.of(STRIP) == [{
        "context": {"child_ids": outlets_of(STRIP, 0, 2, 5)},
        "system": {"set_relay_state": {"state": 0}, "get_sysinfo": {}},
    }]
    assert [c["state"] for c in router.devices[STRIP].sysinfo["children"]] == [0, 1, 0, 1, 1, 0]


def test_outlets_a_strip_did_not_switch_in_the_one_request_go_alone(tmp_path):
    # An HS300 2.0 switches only the first of several child_ids, and says err_code 0 (python-kasa#639).
    lines: list[str] = []
    router = FakeRouter()
    router.devices[STRIP].acts_on = 1
    service = make(tmp_path, router=router, log=lines.append)
    targets = run(targets_of(service, "Office Strip/Monitor", "Office Strip/Charger", "Office Strip/Modem"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "off"))

    assert all(o.error is None and o.result.on is False for o in outcomes)
    assert router.of(STRIP)[1:] == [
        {"context": {"child_ids": [child]}, "system": {"set_relay_state": {"state": 0}}}
        for child in outlets_of(STRIP, 2, 5)
    ]
    assert [c["state"] for c in router.devices[STRIP].sysinfo["children"]] == [0, 1, 0, 1, 1, 0]
    assert lines == ["Office Strip: 2 of 3 outlets not confirmed by the request for them all; sending one request each"]


def test_toggling_outlets_of_a_strip_reads_it_once_and_writes_once_per_state(tmp_path):
    router = FakeRouter()
    router.devices[STRIP].sysinfo["children"][2]["state"] = 0
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Office Strip/Monitor", "Office Strip/Printer", "Office Strip/Charger",
                             "Office Strip/Speaker"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "toggle"))

    assert [(o.target.outlet.alias, o.result.on) for o in outcomes] == [
        ("Monitor", False), ("Printer", False), ("Charger", True), ("Speaker", False),
    ]
    assert router.of(STRIP) == [
        SYSINFO,
        {"context": {"child_ids": outlets_of(STRIP, 0, 1, 3)},
         "system": {"set_relay_state": {"state": 0}, "get_sysinfo": {}}},
        {"context": {"child_ids": outlets_of(STRIP, 2)}, "system": {"set_relay_state": {"state": 1}}},  # one: alone
    ]
    assert [c["state"] for c in router.devices[STRIP].sysinfo["children"]] == [0, 0, 1, 0, 1, 1]


@pytest.mark.parametrize("action, on", [("on", True), ("off", False)])
def test_outlets_of_a_tapo_strip_go_in_one_multiple_request(tmp_path, action, on):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Tapo Strip/Radio", "Tapo Strip/Kettle"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, action))

    assert [(o.target, o.result, o.error) for o in outcomes] == [(t, SwitchResult(t, on, KLAP), None) for t in targets]
    assert router.of(TSTRIP) == [
        several(control("SCRUBBED_CHILD_DEVICE_ID_1", on), control("SCRUBBED_CHILD_DEVICE_ID_3", on)),
    ]
    assert [c["device_on"] for c in router.devices[TSTRIP].children] == [on, True, on]


def test_toggling_outlets_of_a_tapo_strip_takes_both_states_in_one_request(tmp_path):
    router = FakeRouter()
    router.devices[TSTRIP].children[0]["device_on"] = False  # Radio
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Tapo Strip/Kettle", "Tapo Strip/Toaster", "Tapo Strip/Radio"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "toggle"))

    assert [(o.target.outlet.alias, o.result.on) for o in outcomes] == [
        ("Kettle", False), ("Toaster", False), ("Radio", True),
    ]
    assert router.of(TSTRIP) == [
        {"method": "get_device_info"},
        {"method": "get_child_device_list"},
        several(control("SCRUBBED_CHILD_DEVICE_ID_3", False), control("SCRUBBED_CHILD_DEVICE_ID_2", False),
                control("SCRUBBED_CHILD_DEVICE_ID_1", True)),
    ]


def test_an_outlet_that_fails_inside_the_one_request_fails_alone(tmp_path):
    router = FakeRouter()
    router.devices[TSTRIP].refusing["SCRUBBED_CHILD_DEVICE_ID_2"] = -1301
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Tapo Strip/Kettle", "Tapo Strip/Toaster", "Tapo Strip/Radio", "Desk Lamp"))
    router.requests.clear()

    kettle, toaster, radio, lamp = run(service.switch_many(targets, "off"))

    assert (kettle.error, radio.error, lamp.error) == (None, None, None)
    assert type(toaster.error) is errors.DeviceError and toaster.error.code == -1301
    assert toaster.error.message == (
        "Tapo Strip/Toaster: the device is busy or rate-limiting requests (error_code -1301)"
    )
    assert len(router.of(TSTRIP)) == 1
    assert [c["device_on"] for c in router.devices[TSTRIP].children] == [False, True, False]


def test_a_strip_that_refuses_the_one_request_gets_one_per_outlet(tmp_path):
    lines: list[str] = []
    router = FakeRouter()
    router.devices[TSTRIP].batch_error = -1002
    service = make(tmp_path, router=router, log=lines.append)
    targets = run(targets_of(service, "Tapo Strip/Kettle", "Tapo Strip/Radio"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "off"))

    assert all(o.error is None and o.result.on is False for o in outcomes)
    assert router.of(TSTRIP) == [
        several(control("SCRUBBED_CHILD_DEVICE_ID_3", False), control("SCRUBBED_CHILD_DEVICE_ID_1", False)),
        control("SCRUBBED_CHILD_DEVICE_ID_3", False),
        control("SCRUBBED_CHILD_DEVICE_ID_1", False),
    ]
    assert lines == ["Tapo Strip: 2 of 2 outlets not confirmed by the request for them all; sending one request each"]


def test_outlets_after_a_failed_entry_of_the_one_request_go_alone(tmp_path):
    router = FakeRouter()
    router.devices[TSTRIP].entry_error["SCRUBBED_CHILD_DEVICE_ID_2"] = -1008
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Tapo Strip/Kettle", "Tapo Strip/Toaster", "Tapo Strip/Radio"))
    router.requests.clear()

    outcomes = run(service.switch_many(targets, "off"))

    assert all(o.error is None for o in outcomes)
    assert router.of(TSTRIP)[1:] == [
        control("SCRUBBED_CHILD_DEVICE_ID_2", False), control("SCRUBBED_CHILD_DEVICE_ID_1", False),
    ]
    assert [c["device_on"] for c in router.devices[TSTRIP].children] == [False, False, False]


def test_a_one_request_that_fails_fails_each_of_its_outlets_by_name(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Office Strip/Monitor", "Office Strip/Printer", "Desk Lamp"))
    router.failures[STRIP] = lambda: errors.Timeout("no answer within 2 s")
    router.requests.clear()

    monitor, printer, lamp = run(service.switch_many(targets, "off"))

    assert [monitor.error.message, printer.error.message] == [
        "Office Strip/Monitor: no answer within 2 s", "Office Strip/Printer: no answer within 2 s",
    ]
    assert type(printer.error) is errors.Timeout and lamp.error is None
    assert len(router.of(STRIP)) == 1  # not sent again, outlet by outlet


def test_device_not_bound_refreshes_the_device_list_and_the_error_stands(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    router = FakeRouter(reachable=set())
    service = make(tmp_path, source, router)
    targets = run(targets_of(service, "Desk Lamp", "Hall Bulb"))
    source.entries = [e for e in source.entries if e["deviceId"] != DESK]  # removed from the account meanwhile
    router.failures[DESK] = lambda: errors.DeviceNotBound(
        "the device is not bound to this account", hint="run `tpcloud list --refresh`"
    )

    outcomes = run(service.switch_many(targets, "on"))

    error = outcomes[0].error
    assert isinstance(error, errors.DeviceNotBound) and error.exit_code == 4
    assert error.message == "Desk Lamp: the device is not bound to this account"
    assert error.hint == "run `tpcloud list --refresh`"
    assert outcomes[1].error is None
    assert source.calls == 2  # refreshed
    cached, _ = DeviceCache(tmp_path / "cache", ttl=3600).load()
    assert DESK not in {d.device_id for d in cached}


def test_a_device_not_bound_during_the_refresh_does_not_start_another_refresh(tmp_path):
    # The cloud still lists the strip, yet answers "not bound" to it: the outlet read of the
    # refresh meets that answer, and must not fetch the list again (it once did, without end).
    source = FakeSource()
    router = FakeRouter(reachable={STRIP})
    router.failures[STRIP] = lambda: errors.DeviceNotBound("the device is not bound to this account")
    lines: list[str] = []
    devices = run(make(tmp_path, source, router, log=lines.append).devices())

    assert source.calls == 1
    assert next(d for d in devices if d.device_id == STRIP).outlets == ()
    assert lines == ["outlets not read: Office Strip: the device is not bound to this account"]


def test_several_unbound_targets_cost_one_refresh(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    router = FakeRouter(reachable=set())
    service = make(tmp_path, source, router)
    targets = run(targets_of(service, "Desk Lamp", "Hall Bulb", "Porch Dimmer"))
    for device_id in (DESK, BULB, DIMMER):
        router.failures[device_id] = lambda: errors.DeviceNotBound("the device is not bound to this account")

    outcomes = run(service.switch_many(targets, "off"))

    assert [type(o.error) for o in outcomes] == [errors.DeviceNotBound] * 3
    assert source.calls == 2  # the warm-up, and one refresh for all three


def test_a_failed_refresh_leaves_the_not_bound_error_standing(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    router = FakeRouter(reachable=set())
    router.failures[DESK] = lambda: errors.DeviceNotBound("the device is not bound to this account")
    lines: list[str] = []
    service = make(tmp_path, source, router, log=lines.append)
    target = run(service.resolve("Desk Lamp"))

    async def no_internet() -> list:
        raise errors.NetworkError("cannot reach the cloud")

    source.device_list = no_internet
    (outcome,) = run(service.switch_many([target], "on"))

    assert isinstance(outcome.error, errors.DeviceNotBound)
    assert outcome.error.message == "Desk Lamp: the device is not bound to this account"
    assert lines == ["the device list was not fetched again: cannot reach the cloud"]


def test_device_not_bound_on_a_raw_send_refreshes_too(tmp_path):
    source = FakeSource()
    warm(tmp_path, source)
    router = FakeRouter(reachable=set())
    router.failures[TAPO] = lambda: errors.DeviceNotBound("the cloud does not know this device id")
    with pytest.raises(errors.DeviceNotBound) as caught:
        run(make(tmp_path, source, router).send("Tapo Plug", {"method": "get_device_info"}))
    assert caught.value.message == "Tapo Plug: the cloud does not know this device id"
    assert source.calls == 2


# ---------------------------------------------------------------------------------- reading


def test_state_many_reads_each_target_and_summarises_it(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    targets = run(targets_of(
        service, "Desk Lamp", "Office Strip/Printer", "Tapo Plug", "Tapo Strip/Toaster", "Hall Bulb",
    ))
    router.requests.clear()

    outcomes = run(service.state_many(targets))

    assert all(o.error is None and isinstance(o.result, StateResult) for o in outcomes)
    assert [o.result.target for o in outcomes] == targets
    assert [o.result.route for o in outcomes] == [CLOUD, CLOUD, KLAP, KLAP, CLOUD]
    assert [o.result.summary() for o in outcomes] == [
        {"name": "Desk Lamp", "on": False, "model": "HS103(US)", "on_time": 0},
        {"name": "Printer", "on": True, "model": "HS300(US)", "on_time": 710216},
        {"name": "Tapo Plug", "on": False, "model": "P110", "on_time": 0},
        {"name": "Toaster", "on": True, "model": "P300", "on_time": 441972},
        {"name": "Hall Bulb", "on": False, "model": "KL130(US)"},
    ]
    # a plug: no children to list; then its pending countdown, which state shows
    assert router.of(TAPO) == [{"method": "get_device_info"}, {"method": "get_countdown_rules", "params": {"start_index": 0}}]
    assert router.changes() == []


def test_state_of_a_whole_strip_lists_its_outlets(tmp_path):
    service = make(tmp_path)
    [outcome] = run(service.state_many(run(targets_of(service, "Office Strip"))))
    summary = outcome.result.summary()
    assert summary["name"] == "Office Strip" and summary["model"] == "HS300(US)"
    assert [(o["name"], o["on"]) for o in summary["outlets"]] == [(name, True) for name in HS300_OUTLETS]


def test_state_result_to_dict_is_identity_reply_and_route(tmp_path):
    service = make(tmp_path)
    [outcome] = run(service.state_many(run(targets_of(service, "Tapo Plug"))))
    shape = outcome.to_dict()
    assert list(shape) == ["name", "device_id", "outlet_id", "reply", "timer", "route", "wire", "address", "error"]
    assert (shape["name"], shape["device_id"], shape["outlet_id"]) == ("Tapo Plug", TAPO, None)
    assert shape["reply"]["device_on"] is False
    assert (shape["route"], shape["wire"], shape["address"], shape["error"]) == ("local", "klap", "192.0.2.20:80", None)


# ------------------------------------------------------------------------------ send and run


def test_send_addresses_a_raw_request_to_the_outlet(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)
    run(service.devices())
    router.requests.clear()

    target, reply, route = run(service.send("Office Strip/Printer", SYSINFO))
    assert target.full_name == "Office Strip/Printer" and route == CLOUD
    assert reply["system"]["get_sysinfo"]["model"] == "HS300(US)"
    run(service.send("Tapo Strip/Radio", {"method": "get_device_info"}))
    assert router.requests == [
        (STRIP, {"context": {"child_ids": [f"{STRIP}01"]}, "system": {"get_sysinfo": {}}}),
        (TSTRIP, {"method": "control_child", "params": {
            "device_id": "SCRUBBED_CHILD_DEVICE_ID_1", "requestData": {"method": "get_device_info"},
        }}),
    ]


@dataclass(frozen=True)
class Led:
    on: bool

    def to_dict(self) -> dict[str, Any]:
        return {"led": "on" if self.on else "off"}


async def led_off(target: Target, send) -> Led:
    """A tiny capability: read the sysinfo, then turn the LED off."""
    sysinfo = (await send(SYSINFO))["system"]["get_sysinfo"]
    assert sysinfo["alias"] == target.device.alias
    await send({"system": {"set_led_off": {"off": 1}}})
    return Led(on=False)


def test_run_returns_the_result_and_the_route_of_the_last_request(tmp_path):
    router = FakeRouter()
    xor = Route("local", "xor", "192.0.2.10:9999")
    router.route = lambda device, request: xor if "set_led_off" in request.get("system", {}) else CLOUD
    service = make(tmp_path, router=router)
    run(service.devices())
    router.requests.clear()

    done = run(service.run("Desk Lamp", led_off))

    assert done == Done(run(service.resolve("Desk Lamp")), Led(on=False), xor)
    assert router.requests == [(DESK, SYSINFO), (DESK, {"system": {"set_led_off": {"off": 1}}})]
    assert router.devices[DESK].sysinfo["led_off"] == 1
    assert done.to_dict() == {
        "name": "Desk Lamp", "device_id": DESK, "outlet_id": None, "led": "off",
        "route": "local", "wire": "xor", "address": "192.0.2.10:9999",
    }


def test_run_names_the_target_in_its_errors_once(tmp_path):
    router = FakeRouter()
    service = make(tmp_path, router=router)

    async def lacking(target, send):
        raise errors.DeviceError("the device has no status LED")

    with pytest.raises(errors.DeviceError) as caught:
        run(service.run("Tapo Plug", lacking))
    assert caught.value.message == "Tapo Plug: the device has no status LED"

    router.failures[DESK] = lambda: errors.Timeout("no answer within 2 s")
    with pytest.raises(errors.Timeout) as caught:
        run(service.run("Desk Lamp", led_off))
    assert caught.value.message == "Desk Lamp: no answer within 2 s"


# ------------------------------------------------------------------------------- JSON shapes


def test_switch_result_and_outcome_to_dict_shapes(tmp_path):
    router = FakeRouter()
    router.failures[BULB] = lambda: errors.DeviceUnreachable("no route worked (cloud: offline)", hint="check power")
    service = make(tmp_path, router=router)
    targets = run(targets_of(service, "Office Strip/Printer", "Hall Bulb", "Tapo Plug"))

    printer, bulb, tapo = run(service.switch_many(targets, "off"))

    assert printer.result.to_dict() == {
        "name": "Office Strip/Printer", "device_id": STRIP, "outlet_id": f"{STRIP}01",
        "on": False, "state": "off", "route": "cloud",
    }
    assert printer.to_dict() == {**printer.result.to_dict(), "error": None}
    assert tapo.to_dict() == {
        "name": "Tapo Plug", "device_id": TAPO, "outlet_id": None, "on": False, "state": "off",
        "route": "local", "wire": "klap", "address": "192.0.2.20:80", "error": None,
    }
    assert bulb.to_dict() == {
        "name": "Hall Bulb", "device_id": BULB, "outlet_id": None,
        "error": {"message": "Hall Bulb: no route worked (cloud: offline)", "hint": "check power", "exit_code": 6},
    }
    assert json.loads(json.dumps([o.to_dict() for o in (printer, bulb, tapo)])) == [
        printer.to_dict(), bulb.to_dict(), tapo.to_dict()
    ]


def test_outcome_to_dict_of_a_failure_without_result():
    device = Device.from_cloud(ACCOUNT[0])
    outcome = Outcome(Target(device), error=errors.NameNotFound("gone", hint=None))
    assert outcome.to_dict() == {
        "name": "Desk Lamp", "device_id": DESK, "outlet_id": None,
        "error": {"message": "gone", "hint": None, "exit_code": 4},
    }


# ---------------------------------------------------------------------------------- discover


class Discovering(AddressBook):
    """The real book, its discovery answering ANSWERS."""

    def __init__(self, cache: LanCache, answers: list[Found]) -> None:
        super().__init__(cache, targets=("192.0.2.255",), timeout=1.0)
        self.answers = answers
        self.asked: list[tuple] = []

    async def discover(self, targets, timeout):
        self.asked.append((targets, timeout))
        return self.answers


DESK_FOUND = Found("192.0.2.10", 9999, "xor", 0, "iot", "IOT.SMARTPLUGSWITCH", "HS103(US)",
                   ACCOUNT[0]["deviceMac"].replace(":", ""), DESK, "Desk Lamp", "XOR")
STRANGER = Found("192.0.2.99", 80, "klap", 2, "smart", "SMART.TAPOPLUG", "P100", "AABBCCDDEEFF", "x", "", "KLAP")


def test_discover_pairs_each_answer_with_its_account_device(tmp_path):
    addresses = Discovering(LanCache(tmp_path / "cache"), [DESK_FOUND, STRANGER])
    service = make(tmp_path, router=FakeRouter(reachable=set()), addresses=addresses)

    pairs = run(service.discover(("192.0.2.255",), 0.5))
    assert [(f, d and d.alias) for f, d in pairs] == [(DESK_FOUND, "Desk Lamp"), (STRANGER, None)]
    assert addresses.asked == [(("192.0.2.255",), 0.5)]


def test_discover_without_a_login_still_lists_what_answered(tmp_path):
    class LoggedOut(FakeSource):
        async def device_list(self):
            self.calls += 1
            raise errors.LoginRequired("not logged in to the TP-Link cloud")

    addresses = Discovering(LanCache(tmp_path / "cache"), [DESK_FOUND])
    service = make(tmp_path, LoggedOut(), FakeRouter(reachable=set()), addresses=addresses)
    assert run(service.discover(None, 0.5)) == [(DESK_FOUND, None)]
