"""Which way a request goes to its device: the cloud's passthrough, or the LAN.

The rules, in :class:`Router` and nowhere else:

- ``auto``: a known LAN address → the LAN, briefly; that fails → the cloud; the cloud cannot
  reach the device (-20571, or no internet) → one bounded discovery → the LAN. Tapo (SMART)
  devices skip the cloud, which never reaches them.
- ``local``: the LAN only (discovering the device if its address is unknown).
- Either LAN route: a device that refuses the wire it was known by (firmware that changed its
  encryption, a port now closed) is asked at once how it talks now, at its address first, and
  the request retried once on the new wire; the stale entry is forgotten.
- ``cloud``: the cloud's passthrough only.

Each route is an object with one ``send(device, request) -> (reply, Route)``, so the rules can
be driven in a test with routes that never touch a network. A device the cloud no longer knows
(DeviceNotBound) is not this module's to fix: it goes up to the caller, which refreshes its list.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol

from tpcloud import errors

if TYPE_CHECKING:
    from tpcloud.addresses import AddressBook
    from tpcloud.cloud.session import CloudSession
    from tpcloud.devices import Device
    from tpcloud.lan.discovery import Found
    from tpcloud.lan.links import LanLinks

VIAS = ("auto", "local", "cloud")
# In `auto`, a cached LAN address gets this long before the cloud is tried instead.
QUICK_LOCAL_TIMEOUT = 2.0
# Failures on the LAN after which another route is worth trying (the device was not reached,
# or did not accept us); a device that answered with an error code is final.
LAN_MISSES = (errors.DeviceUnreachable, errors.NetworkError, errors.ProtocolError, errors.AuthError)
# Failures of the cloud after which the LAN is worth trying.
CLOUD_MISSES = (errors.DeviceOffline, errors.NetworkError, errors.CloudBusy)


class Route(NamedTuple):
    """How a request reached its device: ``cloud``, or ``local`` with the wire and address."""

    kind: str
    wire: str = ""
    address: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "cloud" else f"{self.kind} {self.wire} {self.address}"

    def to_dict(self) -> dict[str, str]:
        return {"route": self.kind, **({"wire": self.wire, "address": self.address} if self.kind == "local" else {})}


Reply = tuple[dict[str, Any], Route]


class CloudWay(Protocol):
    async def send(self, device: "Device", request: dict[str, Any]) -> Reply: ...


class LanWay(Protocol):
    async def send(self, device: "Device", request: dict[str, Any], *, at: "Found", quick: bool = False) -> Reply: ...


class CloudRoute:
    """Requests through the cloud's passthrough, each sent to its device's own appServerUrl."""

    def __init__(self, session: Callable[[], "CloudSession"]) -> None:
        self._session = session

    async def send(self, device: "Device", request: dict[str, Any]) -> Reply:
        result = await self._session().call(
            "passthrough",
            {"deviceId": device.device_id, "requestData": json.dumps(request, separators=(",", ":"))},
            url=device.app_server_url or None,
        )
        data = result.get("responseData")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise errors.ProtocolError("the cloud relayed a device reply that is not JSON") from None
        if not isinstance(data, dict):
            raise errors.ProtocolError("the cloud's passthrough reply has no responseData object")
        return data, Route("cloud")


class LanRoute:
    """Requests straight to a device's LAN address, over the wire discovery found there."""

    def __init__(self, links: "LanLinks", *, timeout: float) -> None:
        self._links = links
        self._timeout = timeout

    async def send(self, device: "Device", request: dict[str, Any], *, at: "Found", quick: bool = False) -> Reply:
        """QUICK: the device has only a short while to answer, as another route may follow."""
        timeout = min(self._timeout, QUICK_LOCAL_TIMEOUT) if quick else self._timeout
        reply = await self._links.send(at, request, dialect=device.dialect, timeout=timeout)
        return reply, Route("local", at.wire, f"{at.host}:{at.port}")


class Router:
    """Applies the route rules of ``via`` to each request."""

    def __init__(self, via: str, *, cloud: CloudWay, lan: LanWay, addresses: "AddressBook") -> None:
        if via not in VIAS:
            raise errors.UsageError(f"--via must be one of {', '.join(VIAS)}, not {via!r}")
        self.via = via
        self._cloud = cloud
        self._lan = lan
        self._addresses = addresses
        self._cloud_asks: dict[str, int] = {}

    def may_reach(self, device: "Device") -> bool:
        """Whether asking DEVICE something is worth a try without discovery (the device list
        uses this to ask plugs for their outlets): through the cloud when this command may use it
        and the cloud reaches the device (a Kasa one it lists online), or at a known LAN address
        when this command may use the LAN."""
        by_cloud = self.via != "local" and device.dialect == "iot" and device.online
        return by_cloud or (self.via != "cloud" and self._addresses.cached(device) is not None)

    def cloud_asks(self, device: "Device") -> int:
        """How many requests about DEVICE went to the cloud so far, answered or not: `watch` and
        `wait` ask the cloud about a device at most once a minute."""
        return self._cloud_asks.get(device.device_id, 0)

    async def _through_cloud(self, device: "Device", request: dict[str, Any]) -> Reply:
        self._cloud_asks[device.device_id] = self.cloud_asks(device) + 1
        return await self._cloud.send(device, request)

    async def send(self, device: "Device", request: dict[str, Any]) -> Reply:
        """REQUEST's reply from DEVICE, and the route that carried it."""
        if self.via == "cloud":
            return await self._through_cloud(device, request)
        failures: list[tuple[str, errors.TpcloudError]] = []
        tried: list[Found] = []
        known = await self._addresses.known(device)
        if known is not None:
            reply = await self._on_lan(device, request, known, failures, tried, quick=self.via == "auto")
            if reply is not None:
                return reply
            if isinstance(failures[-1][1], errors.WireRefused):  # new firmware, new wire: ask again now
                # Retried even at the same address and wire: a device that opens its server only
                # once probed (P110 1.4.6, home-assistant-tapo-p100#958) answers now.
                again = await self._addresses.find_again(device, known)
                if again is not None:
                    reply = await self._on_lan(device, request, again, failures, tried)
                    if reply is not None:
                        return reply
        if self.via == "auto" and device.dialect == "iot":
            try:
                return await self._through_cloud(device, request)
            except CLOUD_MISSES as exc:
                failures.append(("cloud", exc))
        found = await self._addresses.find(device)
        if found is None:
            targets = ", ".join(self._addresses.targets)
            failures.append(("discovery", errors.DeviceUnreachable(f"no answer from it to {targets}")))
        elif not _among(found, tried):
            reply = await self._on_lan(device, request, found, failures, tried)
            if reply is not None:
                return reply
        raise no_route(failures)

    async def _on_lan(
        self, device: "Device", request: dict[str, Any], at: "Found",
        failures: list[tuple[str, errors.TpcloudError]], tried: list["Found"], *, quick: bool = False,
    ) -> Reply | None:
        """The reply over the LAN at AT, or None with the miss added to FAILURES. Under `local`
        a miss is final, unless the device refused the wire (it is then worth finding again)."""
        tried.append(at)
        try:
            return await self._lan.send(device, request, at=at, quick=quick)
        except LAN_MISSES as exc:
            if self.via == "local" and not isinstance(exc, errors.WireRefused):
                raise
            failures.append((f"LAN {at.host}:{at.port}", exc))
            return None


def _among(found: "Found", tried: list["Found"]) -> bool:
    """Whether FOUND's address and wire were tried already (its other fields may differ)."""
    return any((t.host, t.port, t.wire) == (found.host, found.port, found.wire) for t in tried)


def no_route(failures: list[tuple[str, errors.TpcloudError]]) -> errors.TpcloudError:
    """One error saying what was tried and why each failed.

    Its kind (and so the exit code) is that of the most telling failure: refused credentials
    first, then anything more specific than "not reachable" (a busy cloud, a timeout), then a
    wire the device refused.
    """
    detail = "; ".join(f"{where}: {exc.message}" for where, exc in failures)
    auth = [exc for _, exc in failures if isinstance(exc, errors.AuthError)]
    specific = [exc for _, exc in failures if not isinstance(exc, errors.DeviceUnreachable)]
    refused = [exc for _, exc in failures if isinstance(exc, errors.WireRefused)]
    chosen = (auth or specific or refused or [errors.DeviceUnreachable("")])[0]
    if isinstance(chosen, errors.DeviceUnreachable) and chosen.hint is None:
        chosen.hint = "check that the device is powered and on the same network"
    chosen.message = f"no route worked ({detail})"
    return chosen
