"""Devices over time: a sample of each target at an interval (`tpcloud watch`), and a condition
waited for until it has held long enough (`tpcloud wait`).

A sample is one reading of a target's state and, where it has a meter, its power (the energy
capability's reading). The cloud is asked about a device at most once a minute whatever the
interval, as TP-Link blocks accounts that poll it (piekstra/tplink-cloud-api#76): the router
counts the requests that went to the cloud for each device, and a sample during which that count
rose puts its target's next sample a minute after it began. On the LAN the interval alone counts.
Time comes from a ``Clock`` (the Factory's), so tests run these loops on a clock of their own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from tpcloud import errors
from tpcloud.capabilities.sample import measuring
from tpcloud.output import duration

if TYPE_CHECKING:
    from tpcloud.capabilities import Exchange
    from tpcloud.capabilities.energy import Reading
    from tpcloud.capabilities.sample import Measured
    from tpcloud.devices import Target
    from tpcloud.routes import Route
    from tpcloud.service import DeviceService, Outcome

# Seconds between two samples of a target whose last sample asked the cloud.
CLOUD_FLOOR = 60.0
# The shortest and longest --interval: a device answers one request at a time, and polling it
# faster only keeps it busy; an interval of more than a day is a typo.
MIN_INTERVAL, MAX_INTERVAL = 0.5, 86400.0
# The fields a sample's reading has (null in JSON where a device has no meter).
READING_FIELDS = ("power_w", "voltage_v", "current_a", "today_kwh", "month_kwh", "total_kwh")
# Failures waiting cannot mend: `wait` ends with them at once instead of trying for hours.
FINAL = (errors.AuthError, errors.NameNotFound, errors.DeviceError, errors.SecretStoreError, errors.UsageError,
         errors.CertificateError)
# Failures that mean the device could not be reached: offline samples for `wait --offline`.
UNREACHABLE = (errors.DeviceUnreachable, errors.Timeout)

_DECIMAL_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)s?")


@dataclass(frozen=True)
class Clock:
    """WALL (seconds since the epoch) stamps samples; TICKS (never jumps) and SLEEP pace them."""

    wall: Callable[[], float]
    ticks: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Sample:
    """One target's sample and the route that carried it."""

    target: "Target"
    at: float
    on: bool | None
    reading: "Reading | None"
    route: "Route"

    @property
    def power(self) -> float | None:
        return self.reading.power_w if self.reading is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The `--json` line of `watch`: when, which target, on or off, the reading, the route."""
        import datetime

        when = datetime.datetime.fromtimestamp(self.at).astimezone().isoformat(timespec="milliseconds")
        state = None if self.on is None else "on" if self.on else "off"
        reading = self.reading.to_dict() if self.reading is not None else dict.fromkeys(READING_FIELDS)
        return {"time": when, **self.target.identity(), "on": self.on, "state": state,
                **{k: reading[k] for k in READING_FIELDS}, **self.route.to_dict()}


def parse_interval(text: str, option: str = "--interval") -> float:
    """``5s``, ``0.5s``, ``2``, ``1m`` → seconds, from MIN_INTERVAL to MAX_INTERVAL."""
    from tpcloud.timespec import parse_duration

    value = text.strip().lower()
    try:
        seconds = float(value.rstrip("s")) if _DECIMAL_SECONDS.fullmatch(value) else float(parse_duration(value))
    except errors.UsageError as exc:
        raise errors.UsageError(f"{option}: {exc.message}") from None
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise errors.UsageError(f"{option} {text}: give one from {MIN_INTERVAL:g}s to 24h")
    return seconds


def parse_span(text: str, option: str, *, zero: bool = False) -> int:
    """A duration option (``--for 2m``, ``--duration 1h``) in whole seconds; ``0`` only when ZERO."""
    from tpcloud.timespec import parse_duration

    if zero and text.strip().lower() in ("0", "0s"):
        return 0
    try:
        return parse_duration(text)
    except errors.UsageError as exc:
        raise errors.UsageError(f"{option}: {exc.message}") from None


@dataclass(frozen=True)
class Pace:
    """When a target is next due: INTERVAL after its last sample began, or CLOUD_FLOOR when that
    sample asked the cloud."""

    interval: float

    def next(self, began: float, cloud: bool) -> float:
        return began + (max(self.interval, CLOUD_FLOOR) if cloud else self.interval)

    def slowed(self, cloud: bool) -> bool:
        """Whether the cloud rule, not the interval, sets the next sample."""
        return cloud and self.interval < CLOUD_FLOOR


@dataclass
class Hold:
    """How long a condition has held: since the first of an unbroken run of samples that met it.

    A sample that does not meet it (or that failed) starts the run again, so a short dip between
    longer spells does not count as one long spell.
    """

    need: float
    since: float | None = None

    def observe(self, at: float, met: bool) -> bool:
        """Note a sample taken AT; whether the condition has now held for NEED."""
        if not met:
            self.since = None
            return False
        if self.since is None:
            self.since = at
        return at - self.since >= self.need


POWER_BELOW, POWER_ABOVE, ON, OFF, OFFLINE, ONLINE = "power below", "power above", "on", "off", "offline", "online"


@dataclass(frozen=True)
class Condition:
    """What `wait` waits for: power below or above WATTS, on, off, offline or online."""

    kind: str
    watts: float | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.watts:g} W" if self.watts is not None else self.kind

    @property
    def needs_power(self) -> bool:
        return self.kind in (POWER_BELOW, POWER_ABOVE)

    def met(self, sample: Sample | None, error: errors.TpcloudError | None) -> bool:
        """Whether a sample (or the error instead of one) meets the condition."""
        if self.kind == OFFLINE:
            return isinstance(error, UNREACHABLE)
        if sample is None:
            return False
        if self.kind == ONLINE:
            return True
        if self.kind in (ON, OFF):
            return sample.on == (self.kind == ON)
        power = sample.reading.power_w  # type: ignore[union-attr]  # asked for with a power condition
        return power < self.watts if self.kind == POWER_BELOW else power > self.watts  # type: ignore[operator]


def condition_from(*, below: float | None, above: float | None, state: str | None, offline: bool,
                   online: bool) -> Condition:
    """The one condition the options give; UsageError for none, several, or one never met."""
    given = []
    if below is not None:
        if not below > 0:
            raise errors.UsageError(f"--power-below {below:g}: power is never below that; give more than 0")
        given.append(Condition(POWER_BELOW, below))
    if above is not None:
        if not above >= 0:
            raise errors.UsageError(f"--power-above {above:g}: give 0 or more")
        given.append(Condition(POWER_ABOVE, above))
    given += [Condition(state)] if state is not None else []
    given += [Condition(OFFLINE)] if offline else []
    given += [Condition(ONLINE)] if online else []
    if len(given) != 1:
        raise errors.UsageError(("give only one condition" if given else "give a condition")
                                + ": --power-below W, --power-above W, --state on|off, --offline or --online")
    return given[0]


async def _sample(service: "DeviceService", targets: Sequence["Target"],
                  exchange: "Exchange[Measured]") -> list[tuple["Outcome", bool]]:
    """Each target's outcome (a Done with what was Measured), all at once, and whether its device
    was asked anything through the cloud meanwhile."""
    before = {t.device.device_id: service.cloud_asks(t.device) for t in targets}
    outcomes = await service.run_each(dict.fromkeys(targets, exchange))
    return [(o, service.cloud_asks(o.target.device) > before[o.target.device.device_id]) for o in outcomes]


def _sample_of(outcome: "Outcome") -> Sample:
    done = outcome.result
    return Sample(done.target, done.result.at, done.result.on, done.result.reading, done.route)


async def watch(
    service: "DeviceService", targets: Sequence["Target"], *, interval: float, count: int | None,
    span: float | None, clock: Clock, show: Callable[[Sample], None],
    failed: Callable[[errors.TpcloudError], None], slowed: Callable[[str], None],
) -> int:
    """Sample every target each INTERVAL (through the cloud: each minute) until each has had
    COUNT samples or SPAN seconds have passed (neither: until interrupted). SHOW each sample and
    report each failure as it comes (FAILED); SLOWED(name) the first time the cloud rule slows a
    device.

    Each device keeps its own pace, so one that is slow to answer (or to be found) holds up no
    other; the targets of one device (outlets of a strip) are sampled together, as the device
    takes one request at a time. The exit code: 0 when every target answered at least once, else
    the first failure's of the first target that never did.
    """
    import asyncio

    end = clock.ticks() + span if span is not None else math.inf
    first_failure: dict[Target, errors.TpcloudError] = {}
    answered: set[Target] = set()
    pace = Pace(interval)
    exchange = measuring(clock.wall, state=True, power=True, unmetered=set())
    by_device: dict[str, list[Target]] = {}
    for target in targets:
        by_device.setdefault(target.device.device_id, []).append(target)

    async def follow(group: list["Target"]) -> None:
        taken, noted = 0, False
        while (began := clock.ticks()) < end and (count is None or taken < count):
            results = await _sample(service, group, exchange)
            taken += 1
            cloud = any(asked for _, asked in results)
            if pace.slowed(cloud) and not noted:
                noted = True
                slowed(group[0].full_name if len(group) == 1 else group[0].device.alias)
            for outcome, _ in results:
                if outcome.error is not None:
                    first_failure.setdefault(outcome.target, outcome.error)
                    failed(outcome.error)
                else:
                    answered.add(outcome.target)
                    show(_sample_of(outcome))
            if count is None or taken < count:
                await clock.sleep(max(0.0, min(pace.next(began, cloud), end) - clock.ticks()))

    await asyncio.gather(*(follow(group) for group in by_device.values()))
    never = [first_failure[t] for t in targets if t not in answered and t in first_failure]
    return never[0].exit_code if never else 0


async def wait(
    service: "DeviceService", target: "Target", condition: Condition, *, hold: float, timeout: float,
    interval: float, clock: Clock, seen: Callable[[Sample | None, errors.TpcloudError | None], None],
    failed: Callable[[errors.TpcloudError], None], slowed: Callable[[str], None],
) -> None:
    """Sample TARGET each INTERVAL (the cloud: each minute) until CONDITION has held for HOLD
    seconds, telling SEEN of each sample (for --offline and --online, of each time the device
    was not reached too); WaitTimedOut when TIMEOUT seconds pass first.

    A failure that is not an offline sample breaks the hold: FAILED reports it and waiting goes
    on, unless waiting cannot mend it (FINAL: the login, the name, a device that refuses, such as
    one without a meter), which ends the wait with it.
    """
    end = clock.ticks() + timeout
    held, pace = Hold(hold), Pace(interval)
    exchange = measuring(clock.wall, state=not condition.needs_power, power=condition.needs_power)
    noted = False
    while (now := clock.ticks()) < end:
        [(outcome, cloud)] = await _sample(service, [target], exchange)
        error = outcome.error
        sample = _sample_of(outcome) if error is None else None
        if isinstance(error, FINAL):
            raise error
        if error is None or (condition.kind in (OFFLINE, ONLINE) and isinstance(error, UNREACHABLE)):
            seen(sample, error)
        else:
            failed(error)
        if held.observe(now, condition.met(sample, error)):
            return
        if pace.slowed(cloud) and not noted:
            noted = True
            slowed(target.full_name)
        await clock.sleep(max(0.0, min(pace.next(now, cloud), end) - clock.ticks()))
    spell = f" for {duration(int(hold))}" if hold else ""
    raise errors.WaitTimedOut(f"{target.full_name}: {condition}{spell} did not come within {duration(int(timeout))}")


async def interruptible(work: Awaitable[Any]) -> Any:
    """WORK, stopped by Ctrl-C (SIGINT) at its next await, as KeyboardInterrupt.

    The signal only cancels the task, so a line being written is finished first and the cleanup
    of what is open (connections, saved sessions) runs; the same on every Python version. Where
    SIGINT is ignored (a shell's background job), it stays ignored.
    """
    import asyncio
    import signal

    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()  # type: ignore[union-attr]

    if task is None or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return await work
    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows, a thread)
        return await work
    try:
        return await work
    except asyncio.CancelledError:
        if not interrupted:
            raise
        getattr(task, "uncancel", lambda: 0)()  # 3.11+: the cancel is spent
        raise KeyboardInterrupt from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)
