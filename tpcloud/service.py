"""What commands ask for, in the user's terms: names in, device results out.

The service turns a NAME into a target (through the device cache, refreshing it when it must),
builds the request in the device's dialect, and hands it to the router, which picks the route.
Work on several targets runs at once, each failure that target's own outcome.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any, Awaitable, Callable, NamedTuple, Protocol, Sequence, TypeVar

from tpcloud import dialects, errors
from tpcloud.addresses import matches
from tpcloud.devices import Device, Outlet, Target, resolve

if TYPE_CHECKING:
    from tpcloud.addresses import AddressBook
    from tpcloud.capabilities import Exchange
    from tpcloud.capabilities.timer import Countdown
    from tpcloud.cache import DeviceCache
    from tpcloud.lan.discovery import Found
    from tpcloud.routes import Reply, Route

T = TypeVar("T")
# How many devices one command switches (or reads) at once; more wait for a free turn.
_MANY_CONCURRENCY = 32
# Device types `switch --all` includes: plugs, wall switches and dimmers, strips, bulbs (not
# hubs, cameras or sensors, which have no relay).
_SWITCHABLE = ("PLUG", "SWITCH", "BULB")
# How many devices the device-list refresh asks for their outlets at once.
_OUTLET_LOOKUP_CONCURRENCY = 8


class DeviceSource(Protocol):
    """Where the account's device list comes from (the cloud, through the account)."""

    async def device_list(self) -> list[dict[str, Any]]: ...


class Routing(Protocol):
    """What the service needs of a router (tpcloud.routes.Router)."""

    def may_reach(self, device: Device) -> bool: ...

    def cloud_asks(self, device: Device) -> int: ...

    async def send(self, device: Device, request: dict[str, Any]) -> "Reply": ...


class SwitchResult(NamedTuple):
    """A target switched ON (or off), the route that did it, and the countdown it was given (``--for``)."""

    target: Target
    on: bool
    route: "Route"
    timer: "Countdown | None" = None

    def to_dict(self) -> dict[str, Any]:
        timer = {"timer": self.timer.to_dict()} if self.timer is not None else {}
        return {**self.target.identity(), "on": self.on, "state": "on" if self.on else "off", **timer,
                **self.route.to_dict()}


class StateResult(NamedTuple):
    """A target's state in its device's own terms (``info``), and the route that read it."""

    target: Target
    info: dict[str, Any]
    route: "Route"
    timer: "Countdown | None" = None

    def summary(self) -> dict[str, Any]:
        """The facts `tpcloud state` shows (power, model, on time, outlets, a pending countdown),
        whatever the dialect."""
        device = self.target.device
        facts = dialects.for_device(device).summary(device, self.info, self.target.outlet)
        return {**facts, "timer": self.timer} if self.timer is not None else facts

    def to_dict(self) -> dict[str, Any]:
        timer = None if self.timer is None else self.timer.to_dict()
        return {**self.target.identity(), "reply": self.info, "timer": timer, **self.route.to_dict()}


class Done(NamedTuple):
    """A capability's result for one target, and the route its last request took."""

    target: Target
    result: Any
    route: "Route"

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape of `light`, `energy` and `led`: which device, the result, the route."""
        return {**self.target.identity(), **self.result.to_dict(), **self.route.to_dict()}


class Selection(NamedTuple):
    """The targets a command's names mean, in order, each once.

    ``single`` is true when one NAME named one device directly (not a group, not ``--all``):
    the command then prints the one-device forms it always has.
    """

    targets: list[Target]
    single: bool


class Outcome(NamedTuple):
    """One target's share of a command run on several: its result, or the error that stopped it."""

    target: Target
    result: Any = None
    error: errors.TpcloudError | None = None

    def to_dict(self) -> dict[str, Any]:
        """An entry of the `--json` list: the result's fields and "error": null, or which target
        failed and why."""
        if self.error is None:
            return {**self.result.to_dict(), "error": None}
        return {
            **self.target.identity(),
            "error": {"message": self.error.message, "hint": self.error.hint, "exit_code": self.error.exit_code},
        }


class DeviceService:
    """One command's access to the account's devices."""

    def __init__(
        self,
        *,
        source: DeviceSource,
        router: Routing,
        cache: "DeviceCache",
        addresses: "AddressBook",
        groups: Callable[[], dict[str, tuple[str, ...]]] = dict,
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self._source = source
        self._router = router
        self._cache = cache
        self._addresses = addresses
        self._groups = groups
        self._log = log
        self._refreshed = False
        self._devices: list[Device] | None = None  # the list this command works on, once read

    # -- the device list -------------------------------------------------------------------

    async def devices(self, *, refresh: bool = False) -> list[Device]:
        """The account's devices: from the cache while it is fresh, else from the cloud; read once
        per command (`schedule apply` resolves each name of its file on the same list)."""
        if not refresh and self._devices is None:
            self._devices = self._cache.load_fresh()
        if not refresh and self._devices is not None:
            return self._devices
        return await self._refresh()

    async def _refresh(self) -> list[Device]:
        """The list from the cloud, once per command: marked fetched before its outlet reads, so a
        device that answers "not bound" to one of them cannot start another fetch."""
        self._refreshed = True
        devices = [Device.from_cloud(entry) for entry in await self._source.device_list()]
        devices = await self._with_outlets(devices)
        self._cache.save(devices)
        self._devices = devices
        return devices

    async def _with_outlets(self, devices: list[Device]) -> list[Device]:
        """Ask each reachable plug for its state, so strip outlets become names too."""
        limit = asyncio.Semaphore(_OUTLET_LOOKUP_CONCURRENCY)

        async def lookup(device: Device) -> Device:
            if device.is_bulb or not self._router.may_reach(device):
                return device
            async with limit:
                try:
                    info, _ = await self._read(Target(device))
                except errors.TpcloudError as exc:
                    self._log(f"outlets not read: {exc}")  # EXC names the device
                    return device
            return device.with_outlets(dialects.for_device(device).outlets_of(info, device.device_id))

        return list(await asyncio.gather(*(lookup(d) for d in devices)))

    def cloud_asks(self, device: Device) -> int:
        """How many requests about DEVICE this command has sent through the cloud."""
        return self._router.cloud_asks(device)

    def lan_addresses(self, devices: list[Device]) -> dict[str, "Found"]:
        """Each device's last known LAN address, by deviceId."""
        return self._addresses.of(devices)

    # -- names -------------------------------------------------------------------------------

    async def resolve(self, name: str) -> Target:
        """The device or outlet NAME means; an unknown name refreshes the list once first."""
        return await self._looked_up(lambda devices: resolve(devices, name))

    async def _looked_up(self, pick: Callable[[list[Device]], T]) -> T:
        """PICK(devices) on the cached list; when it meets an unknown name, once more on a fresh one."""
        devices = await self.devices()
        try:
            return pick(devices)
        except errors.NameNotFound:
            if self._refreshed:
                raise
        return pick(await self._refresh())

    async def select(self, names: Sequence[str], *, every: bool = False) -> Selection:
        """What NAMES (devices, outlets, groups of config.toml) or EVERY mean, before anything is done.

        Every name is resolved first (one cache load, at most one refresh), so a typo fails the
        command before any device is switched. A device named twice, directly or in a group,
        is done once, where it first appears.
        """
        if every:
            if names:
                raise errors.UsageError("--all switches every device; name none with it")
            devices = await self.devices()
            return Selection([t for d in devices if _switchable(d) for t in _outlets_or_device(d)], single=False)
        groups = self._groups()
        targets = await self._looked_up(lambda devices: _expand(devices, names, groups))
        if self._addresses.pinned and len(targets) > 1:
            raise errors.UsageError("--host is the address of one device; name only one with it")
        single = len(names) == 1 and names[0].strip().casefold() not in groups
        return Selection(targets, single)

    # -- commands ----------------------------------------------------------------------------

    async def switch_many(self, targets: Sequence[Target], action: str, hold: int | None = None) -> list[Outcome]:
        """Turn each target on, off, or to the opposite of its state, all at once; in order.

        Several outlets of one strip go together (``_switch_outlets``), each still its own outcome.
        With HOLD (seconds), each target is switched alone and its own countdown switches it back
        (``_switch_for``); a strip's timers are per outlet, so ``outlets_apart`` comes first.
        """

        async def switch(group: list[Target]) -> list[Outcome]:
            if hold is not None:
                return [await _outcome(t, lambda target: self._switch_for(target, action, hold)) for t in group]
            if len(group) > 1:
                return await self._switch_outlets(group, action)
            return [await _outcome(group[0], lambda target: self._switch(target, action))]

        done = {o.target: o for o in await self._each(_by_strip(targets), switch)}
        return [done[target] for target in targets]

    async def state_many(self, targets: Sequence[Target]) -> list[Outcome]:
        """Each target's state and pending countdown (a strip's whole has none), all read at once; in order."""
        from tpcloud.capabilities import timer

        async def read(target: Target) -> StateResult:
            info, route = await self._read(target)
            if target.outlet is None and target.device.outlets:
                return StateResult(target, info, route)
            countdown, route = await self._run(target, timer.pending)
            return StateResult(target, info, route, countdown)

        return await self._each_alone(targets, read)

    async def run_many(self, targets: Sequence[Target], exchange: "Exchange[Any]") -> list[Outcome]:
        """A capability's exchange with each target, all at once; each outcome a ``Done``; in order."""
        return await self.run_each({target: exchange for target in targets})

    async def run_each(self, exchanges: dict[Target, "Exchange[Any]"]) -> list[Outcome]:
        """Each target's own exchange (`schedule apply`: its rules), all at once; in order."""

        async def done(target: Target) -> Done:
            return Done(target, *await self._run(target, exchanges[target]))

        return await self._each_alone(list(exchanges), done)

    async def _each_alone(self, targets: Sequence[Target], work: Callable[[Target], Awaitable[Any]]) -> list[Outcome]:
        async def alone(group: list[Target]) -> list[Outcome]:
            return [await _outcome(group[0], work)]

        return await self._each([[t] for t in targets], alone)

    @staticmethod
    def outlets_apart(selection: Selection) -> Selection:
        """SELECTION with each strip named whole replaced by its outlets (for what strips keep per
        outlet, such as timers)."""
        targets = [t for target in selection.targets
                   for t in (_outlets_or_device(target.device) if target.outlet is None else [target])]
        return Selection(list(dict.fromkeys(targets)), selection.single and len(targets) == 1)

    async def send(self, name: str, request: dict[str, Any]) -> tuple[Target, dict[str, Any], "Route"]:
        """Send a raw request of the device's dialect and return the raw reply (outlets get their context)."""
        target = await self.resolve(name)
        reply, route = await self._send(target, dialects.for_device(target.device).for_outlet(request, target.outlet))
        return target, reply, route

    async def run(self, name: str, exchange: "Exchange[Any]") -> Done:
        """Run a capability's exchange (``tpcloud.capabilities``) with NAME over the usual routes."""
        target = await self.resolve(name)
        try:
            result, route = await self._run(target, exchange)
        except errors.TpcloudError as exc:
            raise _about(target, exc) from None
        return Done(target, result, route)

    async def discover(self, targets: tuple[str, ...] | None, timeout: float) -> list[tuple["Found", Device | None]]:
        """Every device that answers discovery, with its account entry where there is one."""
        found = await self._addresses.discover(targets, timeout)
        try:
            devices = await self.devices()
        except errors.AuthError:
            devices = []  # not logged in: the LAN still answers
        return [(f, next((d for d in devices if matches(d, f)), None)) for f in found]

    async def _each(
        self, groups: Sequence[list[Target]], work: Callable[[list[Target]], Awaitable[list[Outcome]]]
    ) -> list[Outcome]:
        """WORK(group) for every group of targets of one device concurrently, a bounded number at a
        time, each target's outcome its own. Groups of one device (a strip whole and its outlets)
        take turns, as the device's link carries one request at a time."""
        limit = asyncio.Semaphore(_MANY_CONCURRENCY)
        turns = {group[0].device.device_id: asyncio.Lock() for group in groups}

        async def one(group: list[Target]) -> list[Outcome]:
            async with turns[group[0].device.device_id], limit:
                return await work(group)

        return [outcome for outcomes in await asyncio.gather(*(one(g) for g in groups)) for outcome in outcomes]

    async def _switch(self, target: Target, action: str) -> SwitchResult:
        if target.outlet is None and target.device.outlets:
            return await self._switch_strip(target, action)
        on = await self._wanted(target, action)
        return SwitchResult(target, on, await self._power(target, on))

    async def _wanted(self, target: Target, action: str) -> bool:
        """Whether ACTION switches TARGET on: a toggle reads its state first."""
        if action != "toggle":
            return action == "on"
        info, _ = await self._read(target)
        return not dialects.for_device(target.device).is_on(info, target.outlet)

    async def _switch_for(self, target: Target, action: str, seconds: int) -> SwitchResult:
        """Switch TARGET and have the device switch it back in SECONDS: its own countdown is set
        first (so a device that refuses it is left as it was), then the power. Should the switch
        fail, the countdown just set is cleared again where the device still answers."""
        from tpcloud.capabilities import timer

        on = await self._wanted(target, action)
        countdown, _ = await self._run(target, timer.arm(seconds, not on))
        try:
            route = await self._power(target, on)
        except errors.TpcloudError:
            try:
                await self._run(target, timer.exchange(clear=True))
            except errors.TpcloudError as failure:
                self._log(f"{target.full_name}: the countdown set before the failed switch stays: {failure}")
            raise
        return SwitchResult(target, on, route, countdown)

    async def _switch_strip(self, target: Target, action: str) -> SwitchResult:
        """A strip named whole: every outlet it has, in as few requests as it takes. The strip's own
        switch is not used: a Tapo strip has none (mihai-dinculescu/tapo#303: on and off are per
        plug), and an HS300 of hardware 2.0 told to switch as a whole switches its first outlet
        only (python-kasa#637, #639, seen on hardware). Toggling turns all off when any is on.
        The first outlet that failed fails the command; the others are switched all the same."""
        device = target.device
        if action == "toggle":
            dialect = dialects.for_device(device)
            info = await dialect.read_state(self._reply_from(device), device.outlets[0])
            on = not any(dialect.is_on(info, outlet) for outlet in device.outlets)
        else:
            on = action == "on"
        outcomes = await self._switch_outlets([Target(device, o) for o in device.outlets], "on" if on else "off")
        for outcome in outcomes:
            if outcome.error is not None:
                failed, own = outcome.error, f"{outcome.target.full_name}: "
                alias = outcome.target.outlet.alias  # type: ignore[union-attr]
                failed.message = f"{target.full_name}: outlet {alias}: {failed.message.removeprefix(own)}"
                raise failed
        return SwitchResult(target, on, outcomes[0].result.route)

    async def _power(self, target: Target, on: bool) -> "Route":
        """Switch TARGET on or off with a request of its own; the route it took."""
        device = target.device
        dialect = dialects.for_device(device)
        power = dialect.power_request(on, bulb=device.is_bulb, strip=device.is_light_strip)
        reply, route = await self._send(target, dialect.for_outlet(power, target.outlet))
        dialect.check(reply)
        return route

    async def _switch_outlets(self, targets: list[Target], action: str) -> list[Outcome]:
        """Several outlets of one strip, in as few requests as the strip takes (``_power_outlets``);
        a toggle reads the strip once first. A failure is that outlet's alone."""
        done: dict[Outlet, "Route | errors.TpcloudError"] = {}
        if action != "toggle":
            wanted = {target.outlet: action == "on" for target in targets}
        else:
            try:
                wanted = await self._toggled(targets, done)
            except errors.TpcloudError as exc:
                return [Outcome(t, error=_named(t, exc)) for t in targets]
        await self._power_outlets(targets[0].device, wanted, done)
        return [_switched(t, wanted, done[t.outlet]) for t in targets]

    async def _toggled(
        self, targets: list[Target], done: dict[Outlet, "Route | errors.TpcloudError"]
    ) -> dict[Outlet, bool]:
        """The opposite of each outlet's state, from one read of the strip; an outlet it no longer
        reports goes into DONE with its error."""
        device = targets[0].device
        dialect = dialects.for_device(device)
        info = await dialect.read_state(self._reply_from(device), targets[0].outlet)
        wanted: dict[Outlet, bool] = {}
        for target in targets:
            try:
                wanted[target.outlet] = not dialect.is_on(info, target.outlet)
            except errors.TpcloudError as exc:
                done[target.outlet] = exc
        return wanted

    async def _power_outlets(
        self, device: Device, wanted: dict[Outlet, bool], done: dict[Outlet, "Route | errors.TpcloudError"]
    ) -> None:
        """Switch each outlet of DEVICE to the state it is WANTED in; into DONE, the route that did
        it or the error that stopped it.

        The dialect's batches carry the outlets together (IOT: one request per state; SMART: one
        for all). Each outlet a batch's reply does not settle (a strip that refused the batch, or,
        on IOT, did not switch it) is switched alone, as one outlet always is; a batch that fails
        fails its outlets.
        """
        dialect = dialects.for_device(device)
        for request, outlets in dialect.outlet_batches(wanted):
            try:
                reply, route = await self._routed(device, request)
            except errors.TpcloudError as exc:
                done.update(dict.fromkeys(outlets, exc))
                continue
            answers = dialect.settled(reply, outlets, wanted)
            done.update({outlet: route if failure is None else failure for outlet, failure in answers.items()})
            if len(answers) < len(outlets):
                self._log(f"{device.alias}: {len(outlets) - len(answers)} of {len(outlets)} outlets not confirmed "
                          "by the request for them all; sending one request each")
        for outlet, on in wanted.items():
            if outlet not in done:
                try:
                    done[outlet] = await self._power(Target(device, outlet), on)
                except errors.TpcloudError as exc:
                    done[outlet] = exc

    async def _read(self, target: Target) -> tuple[dict[str, Any], "Route"]:
        """The device's state, read over whichever route works."""
        return await self._run(target, lambda t, send: dialects.for_device(t.device).read_state(send, t.outlet))

    async def _run(self, target: Target, exchange: "Exchange[T]") -> tuple[T, "Route"]:
        """EXCHANGE(target, send), each of its requests routed; its result and the last route."""
        routes: list[Route] = []

        async def send(request: dict[str, Any]) -> dict[str, Any]:
            reply, route = await self._send(target, request)
            routes.append(route)
            return reply

        result = await exchange(target, send)
        return result, routes[-1]

    async def _send(self, target: Target, request: dict[str, Any]) -> "Reply":
        """REQUEST to the target's device over the router; errors name the target they are about."""
        try:
            return await self._routed(target.device, request)
        except errors.TpcloudError as exc:
            exc.message = f"{target.full_name}: {exc.message}"
            raise

    async def _routed(self, device: Device, request: dict[str, Any]) -> "Reply":
        """REQUEST to DEVICE over the router.

        A device the cloud no longer knows means the cached list is stale: it is fetched again,
        once per command (so the next command sees the account as it is now), and the error stands.
        """
        try:
            return await self._router.send(device, request)
        except errors.DeviceNotBound:
            if not self._refreshed:
                try:
                    await self._refresh()
                except errors.TpcloudError as failure:  # the device's own answer is the news
                    self._log(f"the device list was not fetched again: {failure}")
            raise

    def _reply_from(self, device: Device) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        """A dialect's ``send``: DEVICE's reply to each request."""

        async def send(request: dict[str, Any]) -> dict[str, Any]:
            reply, _ = await self._routed(device, request)
            return reply

        return send


def _about(target: Target, exc: errors.TpcloudError) -> errors.TpcloudError:
    """EXC, its message naming TARGET (errors of routed requests name it already)."""
    if not exc.message.startswith(f"{target.full_name}: "):
        exc.message = f"{target.full_name}: {exc.message}"
    return exc


def _named(target: Target, exc: errors.TpcloudError) -> errors.TpcloudError:
    """A copy of EXC naming TARGET, for an error several outlets share (a batch that failed)."""
    return _about(target, copy.copy(exc))


async def _outcome(target: Target, work: Callable[[Target], Awaitable[Any]]) -> Outcome:
    """WORK(target)'s result as TARGET's outcome, or the error that stopped it."""
    try:
        return Outcome(target, await work(target))
    except errors.TpcloudError as exc:
        return Outcome(target, error=_about(target, exc))


def _switched(target: Target, wanted: dict[Outlet, bool], done: "Route | errors.TpcloudError") -> Outcome:
    """An outlet's outcome from ``_switch_outlets``: the route that switched it, or its error."""
    if isinstance(done, errors.TpcloudError):
        return Outcome(target, error=_named(target, done))
    return Outcome(target, SwitchResult(target, wanted[target.outlet], done))


def _by_strip(targets: Sequence[Target]) -> list[list[Target]]:
    """TARGETS in groups: the outlets of one strip together, every other target alone; in the
    order each group first appears."""
    groups: dict[object, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.device.device_id if target.outlet else target, []).append(target)
    return list(groups.values())


def _switchable(device: Device) -> bool:
    return any(kind in device.device_type.upper() for kind in _SWITCHABLE)


def _outlets_or_device(device: Device) -> list[Target]:
    """A strip's outlets each on its own (as `state` shows them); any other device whole."""
    return [Target(device, outlet) for outlet in device.outlets] or [Target(device)]


def _expand(devices: list[Device], names: Sequence[str], groups: dict[str, tuple[str, ...]]) -> list[Target]:
    """The targets NAMES mean, groups replaced by their members, each target once."""
    chosen: dict[Target, None] = {}
    for name in names:
        members = groups.get(name.strip().casefold())
        if members is None:
            chosen.setdefault(resolve(devices, name))
            continue
        try:
            device = resolve(devices, name)
        except errors.NameNotFound:
            pass  # no device has this name: it is the group's
        else:
            raise errors.NameNotFound(
                f'"{name}" is both a group in config.toml and a device ({device.full_name})',
                hint="rename the group, or name the device by its id",
            )
        for member in members:
            try:
                chosen.setdefault(resolve(devices, member))
            except errors.NameNotFound as exc:
                exc.message = f'group "{name}": {exc.message}'
                raise
    return list(chosen)
