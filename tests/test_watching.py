"""The loops of `watch` and `wait` (tpcloud.watching), in-process and in virtual time.

The real DeviceService runs each sample's exchange through a fake router that answers from the
device emulators' state (tests/doubles/devices) and counts, as the real router does, each request
that went through the cloud. The event loop's clock is virtual: when every task waits, it jumps to
the next one due instead of sleeping, so an hour of watching takes milliseconds and the time of
every sample is exact, however many devices are followed at once.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Callable

import pytest

from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice
from tpcloud import errors, watching
from tpcloud.addresses import AddressBook
from tpcloud.cache import DeviceCache, LanCache
from tpcloud.devices import Device, Target
from tpcloud.routes import Route
from tpcloud.service import DeviceService
from tpcloud.watching import CLOUD_FLOOR, Clock, Condition, Hold, Pace

LOCAL = Route("local", "xor", "192.0.2.10:9999")
CLOUD = Route("cloud")
SAMPLE_TAKES = 0.05  # virtual seconds each sample takes
EPOCH = 1_780_000_000.0  # the wall clock at virtual time 0


class _Jumping(selectors.DefaultSelector):
    """A selector that, asked to wait, moves its loop's clock on by the wait instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: "VirtualLoop | None" = None

    def select(self, timeout: float | None = None):
        if timeout is None:
            raise RuntimeError("every task waits on something that never comes")
        self.loop.now += max(0.0, timeout)  # type: ignore[union-attr]
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _Jumping()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now


def virtually(awaitable_of: Callable[[Clock], Any]) -> Any:
    """Run the coroutine AWAITABLE_OF(clock) in virtual time; its result."""
    loop = VirtualLoop()
    clock = Clock(lambda: EPOCH + loop.time(), loop.time, asyncio.sleep)
    try:
        return loop.run_until_complete(awaitable_of(clock))
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


class Router:
    """Answers from emulators by device id over ROUTES[id] (default LAN); FAILING[id](t) may
    raise instead; BEFORE(t) runs first, so a test changes a device as time goes by."""

    def __init__(self, emulators: dict[str, Any]) -> None:
        self.emulators = emulators
        self.routes: dict[str, Route] = {}
        self.failing: dict[str, Callable[[float], errors.TpcloudError | None]] = {}
        self.before: Callable[[float], None] = lambda t: None
        self.asked: dict[str, list[float]] = {}  # device id -> when each request came
        self.cloud: dict[str, int] = {}

    def may_reach(self, device) -> bool:
        return True

    def cloud_asks(self, device) -> int:
        return self.cloud.get(device.device_id, 0)

    async def send(self, device, request):
        t = now()
        self.before(t)
        self.asked.setdefault(device.device_id, []).append(t)
        route = self.routes.get(device.device_id, LOCAL)
        if route.kind == "cloud":
            self.cloud[device.device_id] = self.cloud_asks(device) + 1
        failure = self.failing.get(device.device_id, lambda t: None)(t)
        if failure is not None:
            raise failure
        return self.emulators[device.device_id].handle(request), route


class NoDevices:
    """The account's list, fetched again after "not bound": empty."""

    async def device_list(self) -> list[dict]:
        return []


class Slow(DeviceService):
    """The service, each sample taking SAMPLE_TAKES."""

    async def run_each(self, exchanges):
        await asyncio.sleep(SAMPLE_TAKES)
        return await super().run_each(exchanges)


def iot(fixture: str, alias: str) -> tuple[Target, IotDevice]:
    emulator = IotDevice.from_fixture(fixture, alias=alias)
    device = Device(emulator.device_id, alias, emulator.model, emulator.device_type, True, "")
    return Target(device), emulator


def tapo(fixture: str, alias: str) -> tuple[Target, SmartDevice]:
    emulator = SmartDevice.from_fixture(fixture, nickname=alias)
    device = Device(emulator.device_id, alias, emulator.model, emulator.device_type, True, "")
    return Target(device), emulator


@pytest.fixture
def home(tmp_path):
    kettle, kettle_emulator = iot("HS110(EU)_4.0_1.0.4.json", "Kettle")  # a meter in mW units
    lamp, lamp_emulator = iot("HS103(US)_2.1_1.1.4.json", "Desk Lamp")  # no meter
    plug, plug_emulator = tapo("P110(EU)_1.0_1.2.3.json", "Living Room")  # a Tapo meter
    router = Router({t.device.device_id: e for t, e in
                     ((kettle, kettle_emulator), (lamp, lamp_emulator), (plug, plug_emulator))})
    service = Slow(source=NoDevices(), router=router, cache=DeviceCache(tmp_path, ttl=60),
                   addresses=AddressBook(LanCache(tmp_path), targets=("192.0.2.255",), timeout=1.0))

    class Home:
        pass

    h = Home()
    h.router, h.service = router, service
    h.kettle, h.lamp, h.plug = kettle, lamp, plug
    h.emulators = {"Kettle": kettle_emulator, "Desk Lamp": lamp_emulator, "Living Room": plug_emulator}
    return h


class Seen:
    """What the loops report, in order."""

    def __init__(self) -> None:
        self.samples: list[watching.Sample] = []
        self.failures: list[errors.TpcloudError] = []
        self.slowed: list[str] = []
        self.waited: list[tuple[watching.Sample | None, errors.TpcloudError | None]] = []
        self.ended = 0.0

    def hooks(self) -> dict[str, Any]:
        return {"failed": self.failures.append, "slowed": self.slowed.append}

    def of(self, name: str) -> list[watching.Sample]:
        return [s for s in self.samples if s.target.full_name == name]


def watch(h, targets, *, interval=5.0, count=None, span=None) -> tuple[int, Seen]:
    seen = Seen()

    async def run(clock: Clock) -> int:
        code = await watching.watch(h.service, targets, interval=interval, count=count, span=span, clock=clock,
                                    show=seen.samples.append, **seen.hooks())
        seen.ended = now()
        return code

    return virtually(run), seen


def wait(h, target, condition, *, hold=0.0, timeout=3600.0, interval=10.0) -> Seen:
    seen = Seen()

    async def run(clock: Clock) -> None:
        try:
            await watching.wait(h.service, target, condition, hold=hold, timeout=timeout, interval=interval,
                                clock=clock, seen=lambda s, e: seen.waited.append((s, e)), **seen.hooks())
        finally:
            seen.ended = now()

    seen.run = lambda: virtually(run)
    return seen


def waited(h, target, condition, **kwargs) -> Seen:
    seen = wait(h, target, condition, **kwargs)
    seen.run()
    return seen


def at(sample: watching.Sample) -> float:
    """When SAMPLE's reply came, in virtual seconds."""
    return round(sample.at - EPOCH, 3)


# -- the pieces ----------------------------------------------------------------------------------


def test_a_hold_counts_from_the_first_of_an_unbroken_run():
    hold = Hold(120)
    assert [hold.observe(t, met) for t, met in [(0, True), (60, True), (100, False), (110, True), (200, True),
                                                 (230, True)]] == [False, False, False, False, False, True]
    assert Hold(0).observe(5, True) and not Hold(0).observe(5, False)


def test_the_cloud_sets_the_pace_to_a_minute_at_least():
    pace = Pace(5)
    assert (pace.next(100, cloud=False), pace.next(100, cloud=True)) == (105, 100 + CLOUD_FLOOR)
    assert pace.slowed(True) and not pace.slowed(False) and not Pace(90).slowed(True)
    assert Pace(90).next(0, cloud=True) == 90


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("0.5s", 0.5), ("2", 2), (".5", 0.5), ("1m", 60),
                                           ("1h30m", 5400), ("24h", 86400)])
def test_intervals_as_people_type_them(text, seconds):
    assert watching.parse_interval(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("0", "--interval 0: give one from 0.5s to 24h"),
    ("0.2s", "--interval 0.2s: give one from 0.5s to 24h"),
    ("25h", "--interval 25h: give one from 0.5s to 24h"),
    ("-5s", "--interval: '-5s' is not a duration"),
    ("soon", "--interval: 'soon' is not a duration"),
])
def test_absurd_intervals_are_refused(text, message):
    with pytest.raises(errors.UsageError, match="^" + message.replace(".", r"\.")):
        watching.parse_interval(text)


def test_spans_and_a_hold_of_nothing():
    assert watching.parse_span("2m", "--for") == 120 and watching.parse_span("0", "--for", zero=True) == 0
    with pytest.raises(errors.UsageError, match="^--duration: '0' is no time at all"):
        watching.parse_span("0", "--duration")


@pytest.mark.parametrize("options, message", [
    ({}, "give a condition: --power-below W"),
    ({"below": 3.0, "offline": True}, "give only one condition"),
    ({"state": "on", "online": True}, "give only one condition"),
    ({"below": 0.0}, "--power-below 0: power is never below that"),
    ({"above": -1.0}, "--power-above -1: give 0 or more"),
])
def test_exactly_one_possible_condition(options, message):
    given = {"below": None, "above": None, "state": None, "offline": False, "online": False, **options}
    with pytest.raises(errors.UsageError, match=message):
        watching.condition_from(**given)


def test_conditions_read_as_the_done_line_says_them():
    assert str(watching.condition_from(below=3, above=None, state=None, offline=False, online=False)) == "power below 3 W"
    assert str(Condition(watching.POWER_ABOVE, 1.5)) == "power above 1.5 W"
    assert str(Condition(watching.OFF)) == "off"


# -- watch ---------------------------------------------------------------------------------------


def test_watch_samples_each_target_count_times_at_the_interval(home):
    kettle_emulator = home.emulators["Kettle"]
    home.router.before = lambda t: kettle_emulator.realtime.update(power_mw=int(1000 * (10 + t)))
    code, seen = watch(home, [home.kettle, home.lamp, home.plug], interval=5, count=3)
    assert code == 0 and seen.failures == [] and seen.slowed == []
    kettle = seen.of("Kettle")
    assert [at(s) for s in kettle] == [0.05, 5.05, 10.05]
    assert [s.power for s in kettle] == [10.05, 15.05, 20.05] and all(s.on for s in kettle)
    assert kettle[0].reading.voltage_v == pytest.approx(230.837)
    lamp = seen.of("Desk Lamp")
    assert len(lamp) == 3 and all(s.reading is None and s.on is not None for s in lamp)
    plug = seen.of("Living Room")
    assert [s.reading.today_kwh for s in plug] == [0.046] * 3
    # the lamp's missing meter was asked about once, not at every sample
    assert len([r for r in home.emulators["Desk Lamp"].requests if "emeter" in r]) == 1
    assert seen.ended == pytest.approx(10.05)  # no wait after the last sample


def test_watch_stops_when_its_span_is_over(home):
    code, seen = watch(home, [home.kettle], interval=2, span=9)
    assert code == 0 and [at(s) for s in seen.samples] == [0.05, 2.05, 4.05, 6.05, 8.05]
    assert seen.ended == pytest.approx(9)


def test_a_target_that_went_through_the_cloud_is_sampled_once_a_minute(home):
    home.router.routes[home.kettle.device.device_id] = CLOUD
    code, seen = watch(home, [home.kettle, home.lamp], interval=5, span=150)
    assert code == 0
    assert [at(s) for s in seen.of("Kettle")] == [0.05, 60.05, 120.05]
    assert len(seen.of("Desk Lamp")) == 30  # the LAN keeps its interval
    assert seen.slowed == ["Kettle"]  # said once, not at every sample
    assert len(home.router.asked[home.kettle.device.device_id]) == 3 * 2  # state and reading, each time


def test_a_slow_device_holds_up_no_other(home):
    lamp, answer = home.lamp.device.device_id, home.router.send

    async def send(device, request):
        if device.device_id == lamp:
            await asyncio.sleep(4)  # a device that takes 4 s to answer (or to be found)
        return await answer(device, request)

    home.router.send = send
    code, seen = watch(home, [home.kettle, home.lamp], interval=1, span=10)
    assert code == 0 and len(seen.of("Kettle")) == 10
    assert [at(s) for s in seen.of("Desk Lamp")] == [8.05, 12.1]  # state and meter, 4 s each; then state


def test_a_failed_sample_is_reported_and_watching_goes_on(home):
    lamp_id = home.lamp.device.device_id
    home.router.failing[lamp_id] = lambda t: errors.DeviceUnreachable("cannot connect") if 4 < t < 11 else None
    code, seen = watch(home, [home.lamp], interval=5, count=4)
    assert code == 0  # it answered at other times
    assert len(seen.samples) == 2 and len(seen.failures) == 2
    assert str(seen.failures[0]) == "Desk Lamp: cannot connect"


def test_the_exit_code_is_that_of_the_first_target_that_never_answered(home):
    home.router.failing[home.plug.device.device_id] = lambda t: errors.Timeout("did not answer")
    home.router.failing[home.lamp.device.device_id] = lambda t: errors.DeviceUnreachable("cannot connect")
    code, seen = watch(home, [home.kettle, home.plug, home.lamp], interval=5, count=2)
    assert code == errors.Timeout.exit_code == 7
    assert len(seen.samples) == 2 and len(seen.failures) == 4


def test_a_cloud_failure_slows_the_target_too(home):
    # An unreachable Kasa device in `auto` asks the cloud every time: that is counted too.
    kettle_id = home.kettle.device.device_id
    home.router.routes[kettle_id] = CLOUD
    home.router.failing[kettle_id] = lambda t: errors.DeviceOffline("the cloud cannot reach the device")
    code, seen = watch(home, [home.kettle], interval=1, span=130)
    assert code == 6 and len(seen.failures) == 3 and seen.slowed == ["Kettle"]


# -- wait ----------------------------------------------------------------------------------------


def test_wait_ends_once_power_has_stayed_below_for_the_hold_and_a_short_dip_does_not_count(home):
    kettle = home.emulators["Kettle"]

    def power(t: float) -> None:  # 60 W, a dip to 1 W from 30 to 60 s, 60 W again, then 1 W from 200 s
        kettle.realtime["power_mw"] = 1000 if 30 <= t < 60 or t >= 200 else 60000

    home.router.before = power
    seen = waited(home, home.kettle, Condition(watching.POWER_BELOW, 3), hold=120, interval=10)
    assert at(seen.waited[-1][0]) == 320.05 and seen.ended == pytest.approx(320.05)
    assert [s.power for s, _ in seen.waited][-14:] == [60] + [1] * 13


def test_wait_with_no_hold_ends_at_the_first_sample_that_meets_it(home):
    home.emulators["Kettle"].realtime["power_mw"] = 500
    seen = waited(home, home.kettle, Condition(watching.POWER_BELOW, 3))
    assert len(seen.waited) == 1 and seen.ended == pytest.approx(SAMPLE_TAKES)


def test_wait_times_out_with_its_own_code(home):
    seen = wait(home, home.kettle, Condition(watching.POWER_BELOW, 3), hold=120, timeout=600)
    with pytest.raises(errors.WaitTimedOut) as caught:
        seen.run()
    assert caught.value.exit_code == 11
    assert str(caught.value) == "Kettle: power below 3 W for 2m 0s did not come within 10m 0s"
    assert seen.ended == pytest.approx(600)


def test_wait_for_a_state_reads_no_meter(home):
    lamp = home.emulators["Desk Lamp"]
    home.router.before = lambda t: lamp.set_state(t >= 25)
    seen = waited(home, home.lamp, Condition(watching.ON), interval=10)
    assert [s.on for s, _ in seen.waited] == [False, False, False, True]
    assert not any("emeter" in r for r in lamp.requests)


def test_wait_offline_counts_an_unreachable_device_and_a_timeout_and_online_the_opposite(home):
    lamp_id = home.lamp.device.device_id
    failures = {20: errors.DeviceUnreachable("cannot connect"), 30: errors.Timeout("did not answer")}
    home.router.failing[lamp_id] = lambda t: failures.get(int(t)) or (errors.DeviceOffline("gone") if t > 35 else None)
    seen = waited(home, home.lamp, Condition(watching.OFFLINE), hold=30, interval=10)
    assert [type(e).__name__ if e else "ok" for _, e in seen.waited] == [
        "ok", "ok", "DeviceUnreachable", "Timeout", "DeviceOffline", "DeviceOffline"]
    assert seen.failures == [] and seen.ended == pytest.approx(50 + SAMPLE_TAKES)
    home.router.failing[lamp_id] = lambda t: errors.DeviceUnreachable("cannot connect") if t < 25 else None
    again = waited(home, home.lamp, Condition(watching.ONLINE), interval=10)
    assert [e is None for _, e in again.waited] == [False, False, False, True]
    assert again.failures == []  # offline samples: what is waited out, not failures


def test_wait_goes_on_through_a_failure_that_may_pass_and_restarts_the_hold(home):
    home.emulators["Kettle"].realtime["power_mw"] = 0
    kettle_id = home.kettle.device.device_id
    home.router.failing[kettle_id] = lambda t: errors.CloudBusy("the cloud is busy") if 25 < t < 35 else None
    seen = waited(home, home.kettle, Condition(watching.POWER_BELOW, 3), hold=60, interval=10)
    assert [str(e) for e in seen.failures] == ["Kettle: the cloud is busy"]
    assert at(seen.waited[-1][0]) == 100.05  # 60 s from the sample after the failure at 30 s


@pytest.mark.parametrize("failure", [errors.AuthError("credentials refused"), errors.DeviceNotBound("not bound")])
def test_wait_ends_at_once_on_a_failure_waiting_cannot_mend(home, failure):
    home.router.failing[home.kettle.device.device_id] = lambda t: failure
    seen = wait(home, home.kettle, Condition(watching.POWER_BELOW, 3), hold=60)
    with pytest.raises(type(failure)):
        seen.run()
    assert seen.ended == pytest.approx(SAMPLE_TAKES)


def test_wait_for_power_on_a_device_without_a_meter_fails_at_once(home):
    with pytest.raises(errors.DeviceError, match="Desk Lamp: the device has no energy meter"):
        waited(home, home.lamp, Condition(watching.POWER_ABOVE, 10))


def test_wait_through_the_cloud_samples_once_a_minute(home):
    home.router.routes[home.kettle.device.device_id] = CLOUD
    home.emulators["Kettle"].realtime["power_mw"] = 0
    seen = waited(home, home.kettle, Condition(watching.POWER_BELOW, 3), hold=120, interval=10)
    assert [at(s) for s, _ in seen.waited] == [0.05, 60.05, 120.05]
    assert seen.slowed == ["Kettle"]
