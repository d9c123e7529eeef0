"""What commands ask for, in the user's terms: names in, device results out.

The service turns a NAME into a device (through the cache, refreshing it when it must), builds
the request in the device's dialect, carries it over the cloud route, and checks the reply.
It is the only place that decides when the device list is fetched again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tpcloud import errors
from tpcloud.devices import Device, Target, resolve
from tpcloud.dialects import iot

if TYPE_CHECKING:
    import httpx

    from tpcloud.cloud.session import CloudSession
    from tpcloud.factory import Factory

# How many devices the device-list refresh asks for their outlets at once.
_OUTLET_LOOKUP_CONCURRENCY = 8


@dataclass(frozen=True)
class SwitchResult:
    target: Target
    on: bool
    route: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.target.full_name,
            "device_id": self.target.device.device_id,
            "outlet_id": self.target.outlet.id if self.target.outlet else None,
            "on": self.on,
            "state": "on" if self.on else "off",
            "route": self.route,
        }


class DeviceService:
    """One command's access to the account's devices; use as ``async with DeviceService(f) as s``."""

    def __init__(self, factory: "Factory") -> None:
        self._factory = factory
        self._http: "httpx.AsyncClient | None" = None
        self._cloud: "CloudSession | None" = None
        self._refreshed = False

    async def __aenter__(self) -> "DeviceService":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def cloud(self) -> "CloudSession":
        """The account's cloud session, opened on first use."""
        if self._cloud is None:
            from tpcloud.cloud.client import CloudClient
            from tpcloud.cloud.session import CloudSession

            factory = self._factory
            self._http = factory.http_client()
            client = CloudClient(self._http, factory.settings.cloud_url, timeout=factory.settings.timeout, log=factory.log)
            self._cloud = CloudSession(client, factory.secrets, factory.redactor)
        return self._cloud

    # -- the account -------------------------------------------------------------------------

    async def login(self, username: str, password: str, *, store_password: bool) -> tuple[str, str]:
        """Log in; return the account's e-mail and a description of where the secrets went."""
        secrets = self._factory.secrets
        previous = secrets.get("username")
        result = await self.cloud.login(username, password, store_password=store_password)
        if previous and previous.casefold() != username.casefold():
            self._factory.cache.clear()  # another account's devices
        return str(result.get("email") or username), secrets.description

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
        """Ask each online Kasa plug for its sysinfo, so strip outlets become names too."""
        limit = asyncio.Semaphore(_OUTLET_LOOKUP_CONCURRENCY)

        async def lookup(device: Device) -> Device:
            if device.dialect != "iot" or device.is_bulb or not device.online:
                return device
            async with limit:
                try:
                    sysinfo = iot.sysinfo_of(await self._cloud_request(device, iot.sysinfo_request()))
                except errors.TpcloudError as exc:
                    self._factory.log(f"{device.alias}: outlets not read: {exc}")
                    return device
            return device.with_outlets(iot.outlets_of(sysinfo, device.device_id))

        return list(await asyncio.gather(*(lookup(d) for d in devices)))

    async def resolve(self, name: str) -> Target:
        """The device or outlet NAME means; an unknown name refreshes the list once first."""
        devices = await self.devices()
        try:
            return resolve(devices, name)
        except errors.NameNotFound:
            if self._refreshed:
                raise
        return resolve(await self._refresh(), name)

    # -- commands ----------------------------------------------------------------------------

    async def switch(self, name: str, action: str) -> SwitchResult:
        """Turn NAME on, off, or to the opposite of its current state."""
        target = await self.resolve(name)
        if action == "toggle":
            on = not iot.is_on(await self._sysinfo(target), target.outlet)
        else:
            on = action == "on"
        request = iot.for_outlet(iot.power_request(on, bulb=target.device.is_bulb), target.outlet)
        iot.check(await self._request(target, request))
        return SwitchResult(target, on, route="cloud")

    async def state(self, name: str) -> tuple[Target, dict[str, Any]]:
        """NAME and its device's current sysinfo."""
        target = await self.resolve(name)
        return target, await self._sysinfo(target)

    async def send(self, name: str, request: dict[str, Any]) -> tuple[Target, dict[str, Any]]:
        """Send a raw request of the device's dialect and return the raw reply (outlets get their context)."""
        target = await self.resolve(name)
        return target, await self._request(target, iot.for_outlet(request, target.outlet))

    async def _sysinfo(self, target: Target) -> dict[str, Any]:
        return iot.sysinfo_of(await self._request(target, iot.sysinfo_request()))

    async def _request(self, target: Target, request: dict[str, Any]) -> dict[str, Any]:
        """Carry REQUEST to the target's device; errors name the device they are about."""
        try:
            try:
                return await self._cloud_request(target.device, request)
            except errors.DeviceNotBound:
                # The account changed under the cache: forget the stale list before stopping.
                await self._refresh()
                raise
        except errors.TpcloudError as exc:
            exc.message = f"{target.full_name}: {exc.message}"
            raise

    async def _cloud_request(self, device: Device, request: dict[str, Any]) -> dict[str, Any]:
        """One request through the cloud's passthrough, sent to the device's own appServerUrl."""
        result = await self.cloud.call(
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
        return data
