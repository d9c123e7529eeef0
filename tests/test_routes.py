"""The route rules (tpcloud.routes), driven in-process.

The Router decides which way each request goes (LAN first, the cloud, one fallback discovery);
here it is handed fake routes that record every call and answer or fail on cue, and a real
AddressBook over a LanCache in a temporary folder, whose one network step (discovery) is
replaced by a recorded list of answers. So each rule is proved exactly (which route, which
address, quick or not, in which order) in microseconds, without a subprocess, a socket or a
fake cloud, the way httpx's MockTransport tests a client. LanRoute and CloudRoute are tested
the same way, over a fake link set and a fake cloud session.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tpcloud import errors
from tpcloud.addresses import FALLBACK_DISCOVERY_TIMEOUT, REDISCOVER_AFTER, AddressBook
from tpcloud.cache import LanCache
from tpcloud.devices import Device
from tpcloud.lan.discovery import Found
from tpcloud.routes import QUICK_LOCAL_TIMEOUT, CloudRoute, LanRoute, Route, Router, no_route

SYSINFO = {"system": {"get_sysinfo": {}}}
TARGETS = ("192.0.2.255",)

KASA = Device(
    device_id="8006KASA", alias="Desk Lamp", model="HS103(US)", device_type="IOT.SMARTPLUGSWITCH",
    online=True, app_server_url="https://eu-wap.example", mac="AA:BB:CC:00:00:01",
)
TAPO = Device(
    device_id="8022TAPO", alias="Tapo Plug", model="P110(EU)", device_type="SMART.TAPOPLUG",
    online=False, app_server_url="https://euw1-app.example", mac="AA-BB-CC-00-00-02",
)

KASA_CACHED = Found("192.0.2.10", 9999, "xor", 0, "iot", "IOT.SMARTPLUGSWITCH", "HS103(US)", "AABBCC000001",
                    "8006KASA", "Desk Lamp", "XOR")
KASA_MOVED = Found("192.0.2.11", 9999, "xor", 0, "iot", "IOT.SMARTPLUGSWITCH", "HS103(US)", "AABBCC000001",
                   "8006KASA", "Desk Lamp", "XOR")
TAPO_CACHED = Found("192.0.2.20", 80, "klap", 2, "smart", "SMART.TAPOPLUG", "P110", "AABBCC000002",
                    "5F1D0000", "", "KLAP")
TAPO_MOVED = Found("192.0.2.21", 80, "klap", 2, "smart", "SMART.TAPOPLUG", "P110", "AABBCC000002",
                   "5F1D0000", "", "KLAP")
STRANGER = Found("192.0.2.99", 9999, "xor", 0, "iot", "IOT.SMARTPLUGSWITCH", "HS103(US)", "AABBCC0000FF",
                 "80FF", "Neighbour", "XOR")

CLOUD = Route("cloud")


def local(found: Found) -> Route:
    return Route("local", found.wire, f"{found.host}:{found.port}")


# ------------------------------------------------------------------------------------- fakes


class FakeCloud:
    """The cloud route: records (device_id, request); answers ANSWER or raises it."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = {"system": {"get_sysinfo": {"from": "cloud"}}} if answer is None else answer
        self.calls: list[tuple[str, dict]] = []

    async def send(self, device: Device, request: dict[str, Any]):
        self.calls.append((device.device_id, request))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer, CLOUD


class FakeLan:
    """The LAN route: records (device_id, request, host, quick); answers or raises per host."""

    def __init__(self, **by_host: Any) -> None:
        self.by_host = {host.replace("_", "."): outcome for host, outcome in by_host.items()}
        self.by_wire: dict[tuple[str, str], Any] = {}  # (host, wire) -> outcome, before by_host
        self.calls: list[tuple[str, dict, str, bool]] = []

    async def send(self, device: Device, request: dict[str, Any], *, at: Found, quick: bool = False):
        self.calls.append((device.device_id, request, at.host, quick))
        default = self.by_host.get(at.host, errors.DeviceUnreachable(f"nothing at {at.host}"))
        outcome = self.by_wire.get((at.host, at.wire), default)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, local(at)


class Book(AddressBook):
    """The real address book over a LanCache, its discovery replaced by ANSWERS (recorded)."""

    def __init__(self, cache: LanCache, answers: list[Found] = (), **kwargs: Any) -> None:
        super().__init__(cache, targets=TARGETS, timeout=5.0, **kwargs)
        self.answers = list(answers)
        self.discoveries: list[tuple[Any, float]] = []

    async def discover(self, targets, timeout):
        self.discoveries.append((targets, timeout))
        return list(self.answers)


def book(tmp_path, cached: list[Found] = (), answers: list[Found] = (), **kwargs: Any) -> Book:
    lan = LanCache(tmp_path)
    if cached:
        lan.merge([f.to_dict() for f in cached])
    return Book(lan, answers, **kwargs)


def send(router: Router, device: Device, request: dict = SYSINFO):
    return asyncio.run(router.send(device, request))


def fail(router: Router, device: Device, request: dict = SYSINFO) -> errors.TpcloudError:
    with pytest.raises(errors.TpcloudError) as caught:
        send(router, device, request)
    return caught.value


FALLBACK = [(None, FALLBACK_DISCOVERY_TIMEOUT)]  # the one fallback discovery: default targets


# -------------------------------------------------------------------------------- via=cloud


def test_via_cloud_uses_only_the_cloud(tmp_path):
    cloud, lan, addresses = FakeCloud(), FakeLan(**{"192_0_2_10": {"lan": 1}}), book(tmp_path, [KASA_CACHED])
    router = Router("cloud", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"system": {"get_sysinfo": {"from": "cloud"}}}, CLOUD)
    assert cloud.calls == [("8006KASA", SYSINFO)]
    assert lan.calls == [] and addresses.discoveries == []


def test_via_cloud_does_not_look_further_when_the_cloud_cannot_reach_the_device(tmp_path):
    offline = errors.DeviceOffline("the device is offline")
    cloud, lan, addresses = FakeCloud(offline), FakeLan(), book(tmp_path, [KASA_CACHED], [KASA_CACHED])
    router = Router("cloud", cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is offline
    assert lan.calls == [] and addresses.discoveries == []


# --------------------------------------------------------------------------------- via=auto


def test_auto_with_cached_address_tries_lan_first_quickly_and_stops_on_success(tmp_path):
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_10": {"system": {"get_sysinfo": {"from": "lan"}}}})
    addresses = book(tmp_path, [KASA_CACHED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"system": {"get_sysinfo": {"from": "lan"}}}, local(KASA_CACHED))
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.10", True)]
    assert cloud.calls == [] and addresses.discoveries == []


@pytest.mark.parametrize(
    "miss",
    [
        errors.DeviceUnreachable("connection refused"),
        errors.NetworkError("connection reset"),
        errors.Timeout("no answer within 2 s"),
        errors.ProtocolError("bad frame"),
        errors.AuthError("KLAP handshake refused"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_auto_lan_miss_falls_back_to_cloud_for_iot(tmp_path, miss):
    cloud, lan, addresses = FakeCloud(), FakeLan(**{"192_0_2_10": miss}), book(tmp_path, [KASA_CACHED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"system": {"get_sysinfo": {"from": "cloud"}}}, CLOUD)
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.10", True)]
    assert cloud.calls == [("8006KASA", SYSINFO)]
    assert addresses.discoveries == []


def test_auto_without_cached_address_goes_to_the_cloud_first_for_iot(tmp_path):
    cloud, lan, addresses = FakeCloud(), FakeLan(), book(tmp_path, [STRANGER], [KASA_CACHED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA)[1] == CLOUD
    assert cloud.calls == [("8006KASA", SYSINFO)]
    assert lan.calls == [] and addresses.discoveries == []


@pytest.mark.parametrize("via", ["auto", "local"])
def test_device_error_on_lan_is_final(tmp_path, via):
    refused = errors.DeviceError("the device rejected the request (system.set_relay_state, err_code -3)", code=-3)
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_10": refused})
    addresses = book(tmp_path, [KASA_CACHED], [KASA_MOVED])
    router = Router(via, cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is refused
    assert len(lan.calls) == 1
    assert cloud.calls == [] and addresses.discoveries == []


def test_smart_devices_never_go_to_the_cloud_in_auto(tmp_path):
    cloud = FakeCloud()
    lan = FakeLan(**{"192_0_2_20": errors.Timeout("no answer"), "192_0_2_21": {"error_code": 0, "result": {}}})
    addresses = book(tmp_path, [TAPO_CACHED], [TAPO_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    request = {"method": "get_device_info"}
    assert send(router, TAPO, request) == ({"error_code": 0, "result": {}}, local(TAPO_MOVED))
    assert lan.calls == [("8022TAPO", request, "192.0.2.20", True), ("8022TAPO", request, "192.0.2.21", False)]
    assert addresses.discoveries == FALLBACK
    assert cloud.calls == []


def test_smart_device_without_cached_address_is_discovered_not_sent_to_the_cloud(tmp_path):
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_20": {"error_code": 0}})
    addresses = book(tmp_path, [], [STRANGER, TAPO_CACHED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, TAPO, {"method": "get_device_info"})[1] == local(TAPO_CACHED)
    assert lan.calls == [("8022TAPO", {"method": "get_device_info"}, "192.0.2.20", False)]
    assert cloud.calls == [] and addresses.discoveries == FALLBACK


@pytest.mark.parametrize(
    "miss",
    [errors.DeviceOffline("the device is offline"), errors.NetworkError("no internet"), errors.CloudBusy("busy")],
    ids=lambda exc: type(exc).__name__,
)
def test_cloud_miss_leads_to_discovery_then_lan_at_found_address(tmp_path, miss):
    cloud, lan = FakeCloud(miss), FakeLan(**{"192_0_2_11": {"system": {"get_sysinfo": {"from": "lan"}}}})
    addresses = book(tmp_path, [], [STRANGER, KASA_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"system": {"get_sysinfo": {"from": "lan"}}}, local(KASA_MOVED))
    assert cloud.calls == [("8006KASA", SYSINFO)]
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.11", False)]
    assert addresses.discoveries == FALLBACK


def test_stale_cached_address_then_cloud_miss_then_lan_at_discovered_address(tmp_path):
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    lan = FakeLan(**{"192_0_2_10": errors.DeviceUnreachable("refused"), "192_0_2_11": {"ok": 1}})
    addresses = book(tmp_path, [KASA_CACHED], [KASA_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"ok": 1}, local(KASA_MOVED))
    assert [(host, quick) for _, _, host, quick in lan.calls] == [("192.0.2.10", True), ("192.0.2.11", False)]
    assert len(cloud.calls) == 1


def test_the_router_counts_each_devices_requests_through_the_cloud_answered_or_not(tmp_path):
    # `watch` and `wait` keep the cloud to one sample a minute by this count: a LAN answer after a
    # cloud miss still asked the cloud.
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    lan = FakeLan(**{"192_0_2_10": {"ok": 1}, "192_0_2_11": {"ok": 1}, "192_0_2_20": {"ok": 1}})
    router = Router("auto", cloud=cloud, lan=lan, addresses=book(tmp_path, [KASA_CACHED, TAPO_CACHED], [KASA_MOVED]))

    send(router, KASA)
    send(router, TAPO)
    assert (router.cloud_asks(KASA), router.cloud_asks(TAPO)) == (0, 0)
    lan.by_host["192.0.2.10"] = errors.DeviceUnreachable("refused")
    assert send(router, KASA) == ({"ok": 1}, local(KASA_MOVED))
    assert router.cloud_asks(KASA) == 1
    forced = Router("cloud", cloud=FakeCloud(), lan=lan, addresses=book(tmp_path))
    send(forced, KASA)
    send(forced, KASA)
    assert (forced.cloud_asks(KASA), forced.cloud_asks(TAPO)) == (2, 0)


def test_cloud_errors_that_are_not_misses_are_final(tmp_path):
    refused = errors.RateLimited("the cloud is throttling this account")
    cloud, lan, addresses = FakeCloud(refused), FakeLan(), book(tmp_path, [], [KASA_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is refused
    assert lan.calls == [] and addresses.discoveries == []


def test_device_not_bound_from_the_cloud_propagates(tmp_path):
    unbound = errors.DeviceNotBound("the device is not bound to this account")
    cloud = FakeCloud(unbound)
    lan = FakeLan(**{"192_0_2_10": errors.DeviceUnreachable("refused")})
    addresses = book(tmp_path, [KASA_CACHED], [KASA_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is unbound
    assert len(lan.calls) == 1  # the cached address only: no discovery, no LAN retry
    assert addresses.discoveries == []


def test_discovery_finding_nothing_raises_one_error_listing_every_attempt(tmp_path):
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    lan = FakeLan(**{"192_0_2_10": errors.DeviceUnreachable("connection refused")})
    addresses = book(tmp_path, [KASA_CACHED], [STRANGER])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    error = fail(router, KASA)
    assert type(error) is errors.DeviceUnreachable and error.exit_code == 6
    assert error.message == (
        "no route worked (LAN 192.0.2.10:9999: connection refused; cloud: the device is offline; "
        "discovery: no answer from it to 192.0.2.255)"
    )
    assert error.hint == "check that the device is powered and on the same network"
    assert addresses.discoveries == FALLBACK


def test_discovery_over_loopback_where_nothing_answers_gives_the_no_route_error(tmp_path):
    # The one test with the real discovery: a target where nothing listens, a short timeout.
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    addresses = AddressBook(LanCache(tmp_path), targets=("127.0.0.1",), timeout=0.05)
    router = Router("auto", cloud=cloud, lan=FakeLan(), addresses=addresses)

    error = fail(router, KASA)
    assert type(error) is errors.DeviceUnreachable
    assert error.message == "no route worked (cloud: the device is offline; discovery: no answer from it to 127.0.0.1)"


def test_no_route_error_is_the_auth_error_when_credentials_were_refused(tmp_path):
    refused = errors.AuthError("the device refused the account's credentials")
    cloud = FakeCloud(errors.CloudBusy("the cloud is busy"))
    lan = FakeLan(**{"192_0_2_10": refused})
    router = Router("auto", cloud=cloud, lan=lan, addresses=book(tmp_path, [KASA_CACHED], []))

    error = fail(router, KASA)
    assert error is refused and error.exit_code == 3
    assert error.message == (
        "no route worked (LAN 192.0.2.10:9999: the device refused the account's credentials; "
        "cloud: the cloud is busy; discovery: no answer from it to 192.0.2.255)"
    )


def test_no_route_error_is_the_most_specific_failure_when_none_is_an_auth_error(tmp_path):
    busy = errors.CloudBusy("the cloud is busy")
    lan = FakeLan(**{"192_0_2_10": errors.DeviceUnreachable("refused")})
    router = Router("auto", cloud=FakeCloud(busy), lan=lan, addresses=book(tmp_path, [KASA_CACHED], []))

    error = fail(router, KASA)
    assert error is busy and error.exit_code == 8
    assert error.message.startswith("no route worked (LAN 192.0.2.10:9999: refused; cloud: the cloud is busy; ")


@pytest.mark.parametrize(
    "failures, kind",
    [
        ([errors.DeviceOffline("a"), errors.Timeout("b"), errors.AuthError("c")], errors.AuthError),
        ([errors.Timeout("a"), errors.AuthError("b")], errors.AuthError),
        ([errors.DeviceOffline("a"), errors.Timeout("b"), errors.ProtocolError("c")], errors.Timeout),
        ([errors.DeviceUnreachable("a"), errors.DeviceOffline("b")], errors.DeviceUnreachable),
    ],
)
def test_no_route_picks_auth_first_then_anything_more_specific_than_unreachable(failures, kind):
    error = no_route([(f"where {i}", exc) for i, exc in enumerate(failures)])
    assert type(error) is kind and error.exit_code == kind.exit_code
    detail = "; ".join(f"where {i}: {exc.args[0]}" for i, exc in enumerate(failures))
    assert error.message == f"no route worked ({detail})"
    if kind is errors.DeviceUnreachable:
        assert all(error is not exc for exc in failures)  # a fresh one: none of the misses is the whole story


# Discovery may describe the known address differently (the device was renamed since): the
# address and wire say whether another try is worth it, not the whole entry.
@pytest.mark.parametrize("found", [KASA_CACHED, KASA_CACHED._replace(alias="Renamed Lamp")], ids=["same", "renamed"])
def test_found_at_the_known_address_is_not_tried_twice(tmp_path, found):
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    lan = FakeLan(**{"192_0_2_10": errors.Timeout("no answer")})
    addresses = book(tmp_path, [KASA_CACHED], [found])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    error = fail(router, KASA)
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.10", True)]
    assert addresses.discoveries == FALLBACK
    assert isinstance(error, errors.Timeout)
    assert error.message == "no route worked (LAN 192.0.2.10:9999: no answer; cloud: the device is offline)"


def test_one_fallback_discovery_serves_every_device_of_a_command(tmp_path):
    cloud = FakeCloud(errors.DeviceOffline("the device is offline"))
    lan = FakeLan(**{"192_0_2_11": {"ok": 1}, "192_0_2_21": {"ok": 2}})
    addresses = book(tmp_path, [], [KASA_MOVED, TAPO_MOVED])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    async def both():
        return await asyncio.gather(router.send(KASA, SYSINFO), router.send(TAPO, {"method": "get_device_info"}))

    assert asyncio.run(both()) == [({"ok": 1}, local(KASA_MOVED)), ({"ok": 2}, local(TAPO_MOVED))]
    assert addresses.discoveries == FALLBACK


def test_a_command_that_runs_for_long_discovers_again_after_a_while(tmp_path):
    # `watch` and `wait` run for hours: a device switched off when discovery ran may come back.
    now = [0.0]
    cloud, lan = FakeCloud(errors.DeviceOffline("the device is offline")), FakeLan(**{"192_0_2_11": {"ok": 1}})
    addresses = book(tmp_path, [], [], ticks=lambda: now[0])
    router = Router("auto", cloud=cloud, lan=lan, addresses=addresses)

    assert isinstance(fail(router, KASA), errors.DeviceUnreachable)
    addresses.answers = [KASA_MOVED]
    now[0] = REDISCOVER_AFTER - 0.1
    assert isinstance(fail(router, KASA), errors.DeviceUnreachable)  # the same discovery, still fresh
    assert len(addresses.discoveries) == 1
    now[0] = REDISCOVER_AFTER
    assert send(router, KASA) == ({"ok": 1}, local(KASA_MOVED))
    assert addresses.discoveries == FALLBACK * 2


# -------------------------------------------------------------------------------- via=local


@pytest.mark.parametrize(
    "miss", [errors.Timeout("no answer"), errors.AuthError("refused"), errors.ProtocolError("bad frame")],
    ids=lambda exc: type(exc).__name__,
)
def test_via_local_raises_the_lan_error_itself_and_never_touches_the_cloud(tmp_path, miss):
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_10": miss})
    addresses = book(tmp_path, [KASA_CACHED], [KASA_MOVED])
    router = Router("local", cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is miss
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.10", False)]  # not quick: nothing follows
    assert cloud.calls == [] and addresses.discoveries == []


def test_via_local_discovers_an_unknown_address_and_raises_its_lan_error(tmp_path):
    miss = errors.Timeout("no answer")
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_11": miss})
    addresses = book(tmp_path, [], [KASA_MOVED])
    router = Router("local", cloud=cloud, lan=lan, addresses=addresses)

    assert fail(router, KASA) is miss
    assert lan.calls == [("8006KASA", SYSINFO, "192.0.2.11", False)]
    assert cloud.calls == [] and addresses.discoveries == FALLBACK


def test_via_local_with_nothing_discovered_is_unreachable_without_the_cloud(tmp_path):
    cloud, lan, addresses = FakeCloud(), FakeLan(), book(tmp_path, [], [STRANGER])
    router = Router("local", cloud=cloud, lan=lan, addresses=addresses)

    error = fail(router, KASA)
    assert type(error) is errors.DeviceUnreachable
    assert error.message == "no route worked (discovery: no answer from it to 192.0.2.255)"
    assert cloud.calls == [] and lan.calls == []


def test_via_local_uses_the_host_address_given_with_the_dialects_usual_wire(tmp_path):
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_50": {"ok": 1}})
    addresses = book(tmp_path, [KASA_CACHED], [], host="192.0.2.50")
    router = Router("local", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"ok": 1}, Route("local", "xor", "192.0.2.50:9999"))
    assert addresses.discoveries == [(("192.0.2.50",), FALLBACK_DISCOVERY_TIMEOUT)]  # asked how it talks
    assert cloud.calls == []


def test_an_address_already_found_is_used_as_it_is(tmp_path):
    # `doctor` hands over the entry it found, not a string to parse and look up again.
    cloud, lan = FakeCloud(), FakeLan(**{"192_0_2_11": {"ok": 1}})
    addresses = book(tmp_path, [KASA_CACHED], [], at=KASA_MOVED)
    router = Router("local", cloud=cloud, lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"ok": 1}, local(KASA_MOVED))
    assert addresses.discoveries == [] and addresses.pinned


# ------------------------------------------------------------------- a wire that changed (part 9)
# A Tapo device cached as AES that firmware moved to KLAP answers the AES handshake with 1003
# (python-kasa SmartErrorCode: "seen after an encryption-changing fw upgrade"; tp-link-tapo-connect
# #41); a Kasa device moved off XOR refuses TCP 9999. The entry is dropped, the device asked at
# its address, and the request retried once on what it says now, in the same command.

TAPO_AES = TAPO_CACHED._replace(wire="aes", version=2, encrypt_type="AES")


@pytest.mark.parametrize("via", ["auto", "local"])
def test_a_refused_wire_is_found_again_at_its_address_and_retried_once(tmp_path, via):
    lan = FakeLan(**{"192_0_2_20": {"ok": "klap"}})
    lan.by_wire[("192.0.2.20", "aes")] = errors.WireRefused("192.0.2.20 refused the AES handshake (error 1003)")
    addresses = book(tmp_path, [TAPO_AES], [TAPO_CACHED])
    router = Router(via, cloud=FakeCloud(), lan=lan, addresses=addresses)

    assert send(router, TAPO) == ({"ok": "klap"}, local(TAPO_CACHED))
    assert [call[2:] for call in lan.calls] == [("192.0.2.20", via == "auto"), ("192.0.2.20", False)]
    assert addresses.discoveries == [(("192.0.2.20",), FALLBACK_DISCOVERY_TIMEOUT)]  # the address alone
    assert addresses.cached(TAPO) is None  # the AES entry is forgotten (the real discovery re-learns it)


def test_a_refused_wire_not_answering_at_its_address_is_looked_for_everywhere(tmp_path):
    lan = FakeLan(**{"192_0_2_11": {"ok": 1}, "192_0_2_10": errors.WireRefused("connection refused")})

    class Moved(Book):  # silent at its old address; the broadcast finds it elsewhere
        async def discover(self, targets, timeout):
            self.discoveries.append((targets, timeout))
            return [] if targets == ("192.0.2.10",) else [KASA_MOVED]

    addresses = Moved(LanCache(tmp_path))
    addresses._cache.merge([KASA_CACHED.to_dict()])
    router = Router("local", cloud=FakeCloud(), lan=lan, addresses=addresses)

    assert send(router, KASA) == ({"ok": 1}, local(KASA_MOVED))
    assert [targets for targets, _ in addresses.discoveries] == [("192.0.2.10",), None]


def test_a_device_refusing_until_probed_is_retried_at_the_same_address(tmp_path):
    # A P110 on 1.4.6 opens its server only after a 20002 probe (home-assistant-tapo-p100#958).
    answers = iter([errors.WireRefused("cannot connect to 192.0.2.20"), {"ok": 1}])

    class WakesWhenProbed(FakeLan):
        async def send(self, device, request, *, at, quick=False):
            self.calls.append((device.device_id, request, at.host, quick))
            outcome = next(answers)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome, local(at)

    lan = WakesWhenProbed()
    router = Router("auto", cloud=FakeCloud(), lan=lan, addresses=book(tmp_path, [TAPO_CACHED], [TAPO_CACHED]))
    assert send(router, TAPO) == ({"ok": 1}, local(TAPO_CACHED))
    assert len(lan.calls) == 2


def test_a_refused_wire_found_nowhere_says_so(tmp_path):
    lan = FakeLan(**{"192_0_2_20": errors.WireRefused("192.0.2.20 refused the AES handshake (HTTP 404)")})
    router = Router("local", cloud=FakeCloud(), lan=lan, addresses=book(tmp_path, [TAPO_AES], []))
    error = fail(router, TAPO)
    assert isinstance(error, errors.WireRefused) and error.exit_code == 6
    assert error.message == (
        "no route worked (LAN 192.0.2.20:80: 192.0.2.20 refused the AES handshake (HTTP 404); "
        "discovery: no answer from it to 192.0.2.255)"
    )


# ------------------------------------------------------------------------------ construction


def test_unknown_via_is_a_usage_error(tmp_path):
    with pytest.raises(errors.UsageError) as caught:
        Router("lan", cloud=FakeCloud(), lan=FakeLan(), addresses=book(tmp_path))
    assert caught.value.exit_code == 2
    assert caught.value.message == "--via must be one of auto, local, cloud, not 'lan'"


# -------------------------------------------------------------------------------- may_reach


def reaches(tmp_path, via: str, device: Device, cached: list[Found]) -> bool:
    return Router(via, cloud=FakeCloud(), lan=FakeLan(), addresses=book(tmp_path, cached)).may_reach(device)


def test_may_reach_iot_online_through_the_cloud(tmp_path):
    assert reaches(tmp_path, "auto", KASA, []) is True


def test_may_reach_not_an_offline_iot_device(tmp_path):
    assert reaches(tmp_path, "auto", Device(**{**KASA.to_dict(), "online": False, "outlets": ()}), []) is False


def test_may_reach_smart_device_only_with_a_cached_address(tmp_path):
    assert reaches(tmp_path, "auto", TAPO, [TAPO_CACHED]) is True
    assert reaches(tmp_path / "empty", "auto", TAPO, [KASA_CACHED]) is False
    # The cloud lists it online, but the cloud never reaches a Tapo device: that does not count.
    online = Device(**{**TAPO.to_dict(), "online": True, "outlets": ()})
    assert reaches(tmp_path / "online", "auto", online, []) is False


def test_may_reach_nothing_without_an_address_via_local(tmp_path):
    assert reaches(tmp_path, "local", KASA, []) is False  # online in the cloud, but the cloud is not used
    assert reaches(tmp_path / "other", "local", KASA, [KASA_CACHED]) is True


def test_may_reach_an_offline_kasa_device_at_its_cached_address(tmp_path):
    offline = Device(**{**KASA.to_dict(), "online": False, "outlets": ()})
    assert reaches(tmp_path, "auto", offline, [KASA_CACHED]) is True
    assert reaches(tmp_path / "local", "local", offline, [KASA_CACHED]) is True
    assert reaches(tmp_path / "cloud", "cloud", offline, [KASA_CACHED]) is False


def test_may_reach_no_tapo_device_through_the_cloud_only(tmp_path):
    # A cached address is no use to a command that may not take the LAN.
    assert reaches(tmp_path, "cloud", TAPO, [TAPO_CACHED]) is False
    assert reaches(tmp_path / "kasa", "cloud", KASA, []) is True


def test_may_reach_does_no_discovery(tmp_path):
    addresses = book(tmp_path, [], [TAPO_CACHED])
    assert Router("auto", cloud=FakeCloud(), lan=FakeLan(), addresses=addresses).may_reach(TAPO) is False
    assert addresses.discoveries == []


# ---------------------------------------------------------------------------------- LanRoute


class FakeLinks:
    """tpcloud.lan.links.LanLinks' send: records what it was asked, answers REPLY."""

    def __init__(self, reply: Any = None) -> None:
        self.reply = {"system": {"get_sysinfo": {"err_code": 0}}} if reply is None else reply
        self.calls: list[tuple[Found, dict, str, float]] = []

    async def send(self, found: Found, request: dict[str, Any], *, dialect: str, timeout: float):
        self.calls.append((found, request, dialect, timeout))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


def test_lan_route_quick_caps_the_timeout_at_quick_local_timeout():
    links = FakeLinks()
    route = LanRoute(links, timeout=10.0)
    asyncio.run(route.send(KASA, SYSINFO, at=KASA_CACHED, quick=True))
    asyncio.run(route.send(KASA, SYSINFO, at=KASA_CACHED))
    assert [timeout for *_, timeout in links.calls] == [QUICK_LOCAL_TIMEOUT, 10.0]


def test_lan_route_quick_keeps_a_timeout_already_shorter():
    links = FakeLinks()
    asyncio.run(LanRoute(links, timeout=0.5).send(KASA, SYSINFO, at=KASA_CACHED, quick=True))
    assert links.calls[0][3] == 0.5


def test_lan_route_says_local_wire_and_address_and_passes_the_devices_dialect():
    links = FakeLinks({"error_code": 0, "result": {"device_on": True}})
    reply, route = asyncio.run(LanRoute(links, timeout=5.0).send(TAPO, {"method": "get_device_info"}, at=TAPO_CACHED))

    assert reply == {"error_code": 0, "result": {"device_on": True}}
    assert route == Route("local", "klap", "192.0.2.20:80")
    assert str(route) == "local klap 192.0.2.20:80"
    assert route.to_dict() == {"route": "local", "wire": "klap", "address": "192.0.2.20:80"}
    assert links.calls == [(TAPO_CACHED, {"method": "get_device_info"}, "smart", 5.0)]

    asyncio.run(LanRoute(links, timeout=5.0).send(KASA, SYSINFO, at=KASA_CACHED))
    assert links.calls[-1] == (KASA_CACHED, SYSINFO, "iot", 5.0)


def test_lan_route_lets_the_links_errors_through():
    refused = errors.AuthError("KLAP handshake refused")
    with pytest.raises(errors.AuthError) as caught:
        asyncio.run(LanRoute(FakeLinks(refused), timeout=5.0).send(TAPO, {"method": "x"}, at=TAPO_CACHED))
    assert caught.value is refused


def test_cloud_route_to_dict_and_str():
    assert str(CLOUD) == "cloud"
    assert CLOUD.to_dict() == {"route": "cloud"}


# -------------------------------------------------------------------------------- CloudRoute


class FakeSession:
    """CloudSession.call: records (method, params, url); answers RESULT or raises it."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[str, dict, str | None]] = []

    async def call(self, method: str, params: dict | None = None, *, url: str | None = None):
        self.calls.append((method, params, url))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def cloud_route(result: Any) -> tuple[CloudRoute, FakeSession, list[int]]:
    session, lookups = FakeSession(result), []
    return CloudRoute(lambda: lookups.append(1) or session), session, lookups


def test_cloud_route_sends_a_passthrough_with_compact_request_data_to_the_devices_server():
    route, session, lookups = cloud_route({"responseData": '{"system":{"set_relay_state":{"err_code":0}}}'})
    assert lookups == []  # the session is taken when a request goes, not before

    request = {"system": {"set_relay_state": {"state": 1}}}
    reply, how = asyncio.run(route.send(KASA, request))

    assert session.calls == [(
        "passthrough",
        {"deviceId": "8006KASA", "requestData": '{"system":{"set_relay_state":{"state":1}}}'},
        "https://eu-wap.example",
    )]
    assert reply == {"system": {"set_relay_state": {"err_code": 0}}}
    assert how == CLOUD and lookups == [1]


def test_cloud_route_without_app_server_url_uses_the_default_server():
    route, session, _ = cloud_route({"responseData": "{}"})
    asyncio.run(route.send(Device(**{**KASA.to_dict(), "app_server_url": "", "outlets": ()}), SYSINFO))
    assert session.calls[0][2] is None


def test_cloud_route_takes_response_data_as_an_object_too():
    route, _, _ = cloud_route({"responseData": {"error_code": 0, "result": {"device_on": False}}})
    assert asyncio.run(route.send(TAPO, {"method": "get_device_info"})) == (
        {"error_code": 0, "result": {"device_on": False}}, CLOUD,
    )


@pytest.mark.parametrize(
    "result, message",
    [
        ({"responseData": "<html>busy</html>"}, "the cloud relayed a device reply that is not JSON"),
        ({"responseData": "[1, 2]"}, "the cloud's passthrough reply has no responseData object"),
        ({"responseData": None}, "the cloud's passthrough reply has no responseData object"),
        ({}, "the cloud's passthrough reply has no responseData object"),
    ],
    ids=["not-json", "json-list", "null", "missing"],
)
def test_cloud_route_non_json_or_missing_response_data_is_a_protocol_error(result, message):
    route, _, _ = cloud_route(result)
    with pytest.raises(errors.ProtocolError) as caught:
        asyncio.run(route.send(KASA, SYSINFO))
    assert caught.value.message == message


def test_cloud_route_lets_the_sessions_errors_through():
    offline = errors.DeviceOffline("the device is offline")
    route, _, _ = cloud_route(offline)
    with pytest.raises(errors.DeviceOffline) as caught:
        asyncio.run(route.send(KASA, SYSINFO))
    assert caught.value is offline


def test_passthrough_request_data_is_compact_json_of_the_request():
    route, session, _ = cloud_route({"responseData": "{}"})
    request = {"method": "control_child", "params": {"device_id": "X", "requestData": {"method": "set_device_info"}}}
    asyncio.run(route.send(TAPO, request))
    sent = session.calls[0][1]["requestData"]
    assert json.loads(sent) == request and " " not in sent
