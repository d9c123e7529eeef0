"""What commands ask for, in the user's terms: names in, device results out.

The service turns a NAME into a device (through the cache, refreshing it when it must), builds
the request in the device's dialect, and picks the route that carries it. The route rules live
here and nowhere else, in ``_carry``:

- ``auto``: a known LAN address → the LAN, briefly; that fails → the cloud; the cloud cannot
  reach the device (-20571, or no internet) → one bounded discovery → the LAN. Tapo (SMART)
  devices skip the cloud, which never reaches them.
- ``local``: the LAN only (discovering the device if its address is unknown).
- ``cloud``: the cloud's passthrough only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

from tpcloud import errors
from tpcloud.config import load_groups
from tpcloud.devices import Device, Target, resolve
from tpcloud.dialects import iot, smart
from tpcloud.lan.discovery import Found, discover, normalise_mac

if TYPE_CHECKING:
    import httpx

    from tpcloud.cloud.session import CloudSession
    from tpcloud.factory import Factory
    from tpcloud.lan.links import LanLinks

VIAS = ("auto", "local", "cloud")
T = TypeVar("T")
# What a capability runs against one device: given the target and a `send` for raw requests in
# the device's dialect (each carried over the route rules), it returns its result.
Exchange = Callable[[Target, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]], Awaitable[T]]
# How many devices one command switches (or reads) at once; more wait for a free turn.
_MANY_CONCURRENCY = 32
# Device types `switch --all` includes: plugs, wall switches and dimmers, strips, bulbs (not
# hubs, cameras or sensors, which have no relay).
_SWITCHABLE = ("PLUG", "SWITCH", "BULB")
# How many devices the device-list refresh asks for their outlets at once.
_OUTLET_LOOKUP_CONCURRENCY = 8
# In `auto`, a cached LAN address gets this long before the cloud is tried instead.
_QUICK_LOCAL_TIMEOUT = 2.0
# The discovery `auto` runs when the cloud cannot reach a device.
_FALLBACK_DISCOVERY_TIMEOUT = 2.0
# Failures on the LAN after which another route is worth trying (the device was not reached,
# or did not accept us); a device that answered with an error code is final.
_LAN_MISSES = (errors.DeviceUnreachable, errors.NetworkError, errors.ProtocolError, errors.AuthError)
# Failures of the cloud after which the LAN is worth trying.
_CLOUD_MISSES = (errors.DeviceOffline, errors.NetworkError, errors.CloudBusy)


def dialect_of(device: Device) -> ModuleType:
    return smart if device.dialect == "smart" else iot


def parse_host(value: str) -> tuple[str, int | None]:
    """`HOST` or `HOST:PORT` (a bracketed IPv6 address may carry a port too)."""
    host, sep, port = value.rpartition(":") if value.count(":") == 1 or value.startswith("[") else ("", "", "")
    if not sep:
        return value.strip("[]"), None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.UsageError(f"--host wants HOST or HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Route:
    """How a request reached its device: ``cloud``, or ``local`` with the wire and address."""

    kind: str
    wire: str = ""
    address: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "cloud" else f"{self.kind} {self.wire} {self.address}"

    def to_dict(self) -> dict[str, str]:
        return {"route": self.kind, **({"wire": self.wire, "address": self.address} if self.kind == "local" else {})}


def _identity(target: Target) -> dict[str, Any]:
    """How JSON output names a target."""
    return {
        "name": target.full_name,
        "device_id": target.device.device_id,
        "outlet_id": target.outlet.id if target.outlet else None,
    }


@dataclass(frozen=True)
class SwitchResult:
    target: Target
    on: bool
    route: Route

    def to_dict(self) -> dict[str, Any]:
        return {**_identity(self.target), "on": self.on, "state": "on" if self.on else "off", **self.route.to_dict()}


@dataclass(frozen=True)
class StateResult:
    """A target's state in its device's own terms (``info``), and the route that read it."""

    target: Target
    info: dict[str, Any]
    route: Route

    def to_dict(self) -> dict[str, Any]:
        return {**_identity(self.target), "reply": self.info, **self.route.to_dict()}


@dataclass(frozen=True)
class Selection:
    """The targets a command's names mean, in order, each once.

    ``single`` is true when one NAME named one device directly (not a group, not ``--all``):
    the command then prints the one-device forms it always has.
    """

    targets: list[Target]
    single: bool


@dataclass(frozen=True)
class Outcome:
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
            **_identity(self.target),
            "error": {"message": self.error.message, "hint": self.error.hint, "exit_code": self.error.exit_code},
        }


class DeviceService:
    """One command's access to the account's devices; use as ``async with DeviceService(f) as s``."""

    def __init__(self, factory: "Factory", *, via: str = "auto", host: str | None = None) -> None:
        if via not in VIAS:
            raise errors.UsageError(f"--via must be one of {', '.join(VIAS)}, not {via!r}")
        self._factory = factory
        self._via = via
        self._host = parse_host(host) if host else None
        self._http: "httpx.AsyncClient | None" = None
        self._cloud: "CloudSession | None" = None
        self._links: "LanLinks | None" = None
        self._refreshed = False
        self._terminal_uuid = ""
        # The fallback discovery of this command, shared by every device that needs one.
        self._fallback_discovery: "asyncio.Task[list[Found]] | None" = None

    async def __aenter__(self) -> "DeviceService":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._links is not None:
            await self._links.close()
        if self._http is not None:
            await self._http.aclose()

    @property
    def cloud(self) -> "CloudSession":
        """The account's cloud session, opened on first use, on the API (V1 or V2) it logged in with."""
        if self._cloud is None:
            secrets = self._factory.secrets
            self._cloud = self._open_cloud(secrets.get("cloud_api") or "v1", secrets.get("cloud_url"))
        return self._cloud

    def _open_cloud(self, api: str, app_url: str | None = None) -> "CloudSession":
        """A session on API ("v1" or "v2", whose account calls go to APP_URL), with its own HTTP client."""
        from tpcloud.cloud.client import CloudClient
        from tpcloud.cloud.session import CloudSession

        factory = self._factory
        settings = factory.settings
        client: CloudClient
        if api == "v2":
            from tpcloud.cloud import v2

            self._http = v2.http_client(settings.timeout, v2.extra_ca_files(factory.env))
            client = v2.V2Client(
                self._http, v2.base_url(factory.env), app_url=app_url, timeout=settings.timeout,
                clock=factory.clock, log=factory.log,
            )
        else:
            self._http = factory.http_client()
            client = CloudClient(self._http, settings.cloud_url, timeout=settings.timeout, log=factory.log)
        return CloudSession(
            client, factory.secrets, factory.redactor,
            renewal_lock=settings.config_dir / "renewal.lock", lock_wait=settings.timeout,
        )

    @property
    def links(self) -> "LanLinks":
        """Links to devices on the LAN, opened on first use."""
        if self._links is None:
            from tpcloud.lan.links import LanLinks

            self._links = LanLinks(
                credentials=self._lan_credentials, http_client=self._factory.lan_http_client,
                sessions=self._factory.lan_sessions, log=self._factory.log,
            )
        return self._links

    def _lan_credentials(self) -> tuple[str, str] | None:
        """KLAP and AES devices check the cloud account's e-mail and password."""
        secrets = self._factory.secrets
        username, password = secrets.get("username"), secrets.get("password")
        self._factory.redactor.add(password)
        return (username, password) if username and password else None

    # -- the account -------------------------------------------------------------------------

    async def login(
        self,
        username: str,
        password: str,
        *,
        store_password: bool,
        api: str = "auto",
        code_via: str | None = None,
        ask_code: Callable[[str], str] | None = None,
    ) -> tuple[str, str]:
        """Log in; return the account's e-mail and a description of where the secrets went.

        API "auto" tries V1 first and moves to V2 when V1 refuses the way it does for accounts
        with 2-step verification. For code_via and ask_code, see ``CloudSession.login``.
        """
        before = self._account_now()
        options: dict[str, Any] = {"store_password": store_password, "code_via": code_via, "ask_code": ask_code}
        await self._reopen_cloud("v2" if api == "v2" else "v1")
        try:
            result = await self._cloud.login(username, password, **options)
        except errors.NeedsV2Login:
            if api != "auto":
                raise
            self._factory.log("the V1 login was refused as it is for 2-step verification; trying the V2 login")
            await self._reopen_cloud("v2")
            result = await self._cloud.login(username, password, **options)
        return self._logged_in(before, result)

    async def finish_login(self, code: str) -> tuple[str, str]:
        """Finish the login that waits for a 2-step verification CODE (``tpcloud login --code``)."""
        from tpcloud.cloud.session import pending_mfa

        before = self._account_now()
        pending = pending_mfa(self._factory.secrets)
        await self._reopen_cloud("v2", pending["url"] if pending else None)
        result = await self.cloud.finish_mfa(code)
        return self._logged_in(before, result)

    async def _reopen_cloud(self, api: str, app_url: str | None = None) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._cloud = self._open_cloud(api, app_url)

    def _account_now(self) -> tuple[str, str]:
        secrets = self._factory.secrets
        return (secrets.get("username") or "").casefold(), secrets.get("cloud_api") or "v1"

    def _logged_in(self, before: tuple[str, str], result: dict[str, Any]) -> tuple[str, str]:
        """Forget cached devices of another account or API (their appServerUrls), and say who logged in."""
        now = self._account_now()
        if before[0] and before != now:
            self._factory.cache.clear()
        return str(result.get("email") or self._factory.secrets.get("username")), self._factory.secrets.description

    def logout(self) -> None:
        """Forget every secret and everything cached."""
        self._factory.secrets.clear()
        self._factory.cache.clear()

    # -- the device list -------------------------------------------------------------------

    async def devices(self, *, refresh: bool = False) -> list[Device]:
        """The account's devices: from the cache while it is fresh, else from the cloud."""
        if not refresh:
            cached = self._factory.cache.load_fresh()
            if cached is not None:
                return cached
        return await self._refresh()

    async def _refresh(self) -> list[Device]:
        result = await self.cloud.call("getDeviceList")
        entries = result.get("deviceList")
        if not isinstance(entries, list):
            raise errors.CloudError("the cloud's device list has no deviceList")
        devices = [Device.from_cloud(e) for e in entries if isinstance(e, dict) and e.get("deviceId")]
        devices = await self._with_outlets(devices)
        self._factory.cache.save(devices)
        self._refreshed = True
        return devices

    async def _with_outlets(self, devices: list[Device]) -> list[Device]:
        """Ask each reachable plug for its state, so strip outlets become names too."""
        limit = asyncio.Semaphore(_OUTLET_LOOKUP_CONCURRENCY)

        async def lookup(device: Device) -> Device:
            reachable = device.online if device.dialect == "iot" else self._cached_lan(device) is not None
            if device.is_bulb or not reachable or self._via == "local" and self._cached_lan(device) is None:
                return device
            async with limit:
                try:
                    info, _ = await self._read(Target(device))
                except errors.TpcloudError as exc:
                    self._factory.log(f"{device.alias}: outlets not read: {exc}")
                    return device
            return device.with_outlets(dialect_of(device).outlets_of(info, device.device_id))

        return list(await asyncio.gather(*(lookup(d) for d in devices)))

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
        groups = load_groups(self._factory.settings.config_dir)
        targets = await self._looked_up(lambda devices: _expand(devices, names, groups))
        if self._host is not None and len(targets) > 1:
            raise errors.UsageError("--host is the address of one device; name only one with it")
        single = len(names) == 1 and names[0].strip().casefold() not in groups
        return Selection(targets, single)

    def lan_addresses(self, devices: list[Device]) -> dict[str, Found]:
        """Each device's last known LAN address, by deviceId."""
        return {d.device_id: found for d in devices if (found := self._cached_lan(d)) is not None}

    # -- commands ----------------------------------------------------------------------------

    async def switch_many(self, targets: Sequence[Target], action: str) -> list[Outcome]:
        """Turn each target on, off, or to the opposite of its state, all at once; in order."""
        return await self._each(targets, lambda target: self._switch(target, action))

    async def state_many(self, targets: Sequence[Target]) -> list[Outcome]:
        """Each target's state, all read at once; in order."""

        async def read(target: Target) -> StateResult:
            return StateResult(target, *await self._read(target))

        return await self._each(targets, read)

    async def _each(self, targets: Sequence[Target], work: Callable[[Target], Awaitable[Any]]) -> list[Outcome]:
        """WORK(target) for every target concurrently, a bounded number at a time; a failure is
        that target's outcome and stops no other. Targets of one device (outlets of a strip) take
        turns, as the device's link carries one request at a time."""
        limit = asyncio.Semaphore(_MANY_CONCURRENCY)
        turns = {target.device.device_id: asyncio.Lock() for target in targets}

        async def one(target: Target) -> Outcome:
            async with turns[target.device.device_id], limit:
                try:
                    return Outcome(target, await work(target))
                except errors.TpcloudError as exc:
                    return Outcome(target, error=_about(target, exc))

        return list(await asyncio.gather(*(one(target) for target in targets)))

    async def _switch(self, target: Target, action: str) -> SwitchResult:
        dialect = dialect_of(target.device)
        if action == "toggle":
            info, _ = await self._read(target)
            on = not dialect.is_on(info, target.outlet)
        else:
            on = action == "on"
        device = target.device
        power = dialect.power_request(on, bulb=device.is_bulb, strip=device.is_light_strip)
        request = dialect.for_outlet(power, target.outlet)
        reply, route = await self._request(target, request)
        dialect.check(reply)
        return SwitchResult(target, on, route)

    async def state(self, name: str) -> tuple[Target, dict[str, Any], Route]:
        """NAME, its device's current state in the device's own terms, and the route used."""
        target = await self.resolve(name)
        info, route = await self._read(target)
        return target, info, route

    async def send(self, name: str, request: dict[str, Any]) -> tuple[Target, dict[str, Any], Route]:
        """Send a raw request of the device's dialect and return the raw reply (outlets get their context)."""
        target = await self.resolve(name)
        reply, route = await self._request(target, dialect_of(target.device).for_outlet(request, target.outlet))
        return target, reply, route

    async def call(self, name: str, work: "Exchange[T]") -> tuple[Target, T, Route]:
        """Run a capability's exchange (``tpcloud.capabilities``) with NAME over the usual routes."""
        target = await self.resolve(name)
        try:
            result, route = await self._exchange(target, work)
        except errors.TpcloudError as exc:
            raise _about(target, exc) from None
        return target, result, route

    async def discover(self, targets: tuple[str, ...] | None, timeout: float) -> list[tuple[Found, Device | None]]:
        """Every device that answers discovery, with its account entry where there is one."""
        found = await self._discover(targets, timeout)
        try:
            devices = await self.devices()
        except errors.AuthError:
            devices = []  # not logged in: the LAN still answers
        return [(f, next((d for d in devices if self._matches(d, f)), None)) for f in found]

    # -- routes ------------------------------------------------------------------------------

    async def _read(self, target: Target) -> tuple[dict[str, Any], Route]:
        """The device's state, read over whichever route works."""
        return await self._exchange(target, lambda t, send: dialect_of(t.device).read_state(send, t.outlet))

    async def _exchange(self, target: Target, work: "Exchange[T]") -> tuple[T, Route]:
        """WORK(target, send), each of its requests carried over whichever route works; the last route."""
        routes: list[Route] = []

        async def send(request: dict[str, Any]) -> dict[str, Any]:
            reply, route = await self._request(target, request)
            routes.append(route)
            return reply

        result = await work(target, send)
        return result, routes[-1]

    async def _request(self, target: Target, request: dict[str, Any]) -> tuple[dict[str, Any], Route]:
        """Carry REQUEST to the target's device; errors name the device they are about."""
        try:
            return await self._carry(target.device, request)
        except errors.TpcloudError as exc:
            exc.message = f"{target.full_name}: {exc.message}"
            raise

    async def _carry(self, device: Device, request: dict[str, Any]) -> tuple[dict[str, Any], Route]:
        if self._via == "cloud":
            return await self._cloud_request(device, request), Route("cloud")
        failures: list[tuple[str, errors.TpcloudError]] = []
        known = await self._known_lan(device)
        if known is not None:
            try:
                return await self._local(known, device, request, quick=self._via == "auto")
            except _LAN_MISSES as exc:
                if self._via == "local":
                    raise
                failures.append((f"LAN {known.host}:{known.port}", exc))
        if self._via == "auto" and device.dialect == "iot":
            try:
                return await self._cloud_request(device, request), Route("cloud")
            except _CLOUD_MISSES as exc:
                failures.append(("cloud", exc))
        found = await self._find_on_lan(device)
        if found is None:
            failures.append(("discovery", errors.DeviceUnreachable(f"no answer from it to {', '.join(self._discovery_targets())}")))
        elif found != known:
            try:
                return await self._local(found, device, request, quick=False)
            except _LAN_MISSES as exc:
                if self._via == "local":
                    raise
                failures.append((f"LAN {found.host}:{found.port}", exc))
        raise self._no_route(failures)

    @staticmethod
    def _no_route(failures: list[tuple[str, errors.TpcloudError]]) -> errors.TpcloudError:
        """One error saying what was tried and why each failed.

        Its kind (and so the exit code) is that of the most telling failure: refused credentials
        first, then anything more specific than "not reachable" (a busy cloud, a timeout).
        """
        detail = "; ".join(f"{where}: {exc.message}" for where, exc in failures)
        auth = [exc for _, exc in failures if isinstance(exc, errors.AuthError)]
        specific = [exc for _, exc in failures if not isinstance(exc, errors.DeviceUnreachable)]
        chosen = (auth or specific or [errors.DeviceUnreachable(
            "", hint="check that the device is powered and on the same network"
        )])[0]
        chosen.message = f"no route worked ({detail})"
        return chosen

    async def _local(self, found: Found, device: Device, request: dict[str, Any], *, quick: bool) -> tuple[dict[str, Any], Route]:
        from tpcloud.lan.xor import json_object

        timeout = self._factory.settings.timeout
        if quick:
            timeout = min(timeout, _QUICK_LOCAL_TIMEOUT)
        if device.dialect == "smart":
            if not self._terminal_uuid:
                from tpcloud.lan.aes import new_terminal_uuid

                self._terminal_uuid = new_terminal_uuid()
            request = smart.envelope(request, self._terminal_uuid)
        payload = json.dumps(request, separators=(",", ":")).encode()
        self._factory.log(f"> {found.wire} {found.host}:{found.port} {payload.decode()}")
        raw = await self.links.request(found, payload, timeout=timeout)
        self._factory.log(f"< {found.wire} {found.host}:{found.port} {raw.decode(errors='replace')}")
        return json_object(raw, f"reply from {found.host}"), Route("local", found.wire, f"{found.host}:{found.port}")

    async def _known_lan(self, device: Device) -> Found | None:
        """The address --host names (asking it how it talks), else the cached one."""
        if self._host is None:
            return self._cached_lan(device)
        host, port = self._host
        found = next((f for f in self._lan_entries() if f.host == host and port in (None, f.port)), None)
        if found is None:
            answers = await self._discover((host,), self._discovery_timeout())
            found = next((f for f in answers if f.host == host), None)
        if found is None:  # a device that does not answer discovery: assume its dialect's usual wire
            wire, default_port, version = ("xor", 9999, 0) if device.dialect == "iot" else ("klap", 80, 2)
            found = Found(host, default_port, wire, version, device.dialect, device.device_type, device.model,
                          normalise_mac(device.mac), device.device_id, device.alias, wire.upper())
        return replace(found, port=port) if port else found

    def _lan_entries(self) -> list[Found]:
        """Everything discovery has learned so far (unreadable entries are skipped)."""
        entries = []
        for entry in self._factory.lan_cache.load():
            try:
                entries.append(Found.from_dict(entry))
            except (KeyError, TypeError, ValueError):
                continue
        return entries

    def _cached_lan(self, device: Device) -> Found | None:
        return next((f for f in self._lan_entries() if self._matches(device, f)), None)

    @staticmethod
    def _matches(device: Device, found: Found) -> bool:
        """A discovered device is an account device when its MAC (or its XOR deviceId) is the same."""
        mac = normalise_mac(device.mac)
        return bool(mac and mac == normalise_mac(found.mac)) or bool(found.device_id and found.device_id == device.device_id)

    async def _find_on_lan(self, device: Device) -> Found | None:
        """DEVICE's answer to discovery; one discovery serves all the devices of a command."""
        if self._fallback_discovery is None:
            self._fallback_discovery = asyncio.ensure_future(self._discover(None, self._discovery_timeout()))
        answers = await self._fallback_discovery
        return next((f for f in answers if self._matches(device, f)), None)

    def _discovery_timeout(self) -> float:
        return min(self._factory.settings.timeout, _FALLBACK_DISCOVERY_TIMEOUT)

    def _discovery_targets(self) -> tuple[str, ...]:
        return self._factory.settings.discovery_targets

    async def _discover(self, targets: tuple[str, ...] | None, timeout: float) -> list[Found]:
        found = await discover(targets or self._discovery_targets(), timeout=timeout, log=self._factory.log)
        if found:
            self._factory.lan_cache.merge([f.to_dict() for f in found])
        return found

    async def _cloud_request(self, device: Device, request: dict[str, Any]) -> dict[str, Any]:
        """One request through the cloud's passthrough, sent to the device's own appServerUrl."""
        try:
            result = await self.cloud.call(
                "passthrough",
                {"deviceId": device.device_id, "requestData": json.dumps(request, separators=(",", ":"))},
                url=device.app_server_url or None,
            )
        except errors.DeviceNotBound:
            await self._refresh()  # the account changed under the cache: forget the stale list, then stop
            raise
        data = result.get("responseData")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise errors.ProtocolError("the cloud relayed a device reply that is not JSON") from None
        if not isinstance(data, dict):
            raise errors.ProtocolError("the cloud's passthrough reply has no responseData object")
        return data


def _about(target: Target, exc: errors.TpcloudError) -> errors.TpcloudError:
    """EXC, its message naming TARGET (errors of carried requests name it already)."""
    if not exc.message.startswith(f"{target.full_name}: "):
        exc.message = f"{target.full_name}: {exc.message}"
    return exc


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
