"""`tpcloud doctor`: what is set up, what answers, and what to do about what does not.

One check per line. A problem carries the exit code of the error behind it, and the command
exits with the first one, so a script can tell "log in again" from "no network". Only what a
check needs is asked: the secret store is read, never printed; the energy archive is opened
read-only and counted; the cloud gets one device list request; each device with a cached LAN
address gets one state read and one clock read there, all at once (a clock more than a minute
off is a warning: schedules fire by it).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tpcloud import errors
from tpcloud.config import KEYRING_BACKEND_VAR, SECRET_STORE_VAR
from tpcloud.output import duration

if TYPE_CHECKING:
    from tpcloud.devices import Device
    from tpcloud.factory import Factory
    from tpcloud.lan.discovery import Found

# A device on the LAN answers within this, or it counts as not answering.
LAN_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    # "ok", "problem", "warning" (worth knowing, not a failure), or "skipped" (an earlier problem
    # makes it meaningless)
    status: str
    detail: str
    fix: str | None = None
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The documented shape of `doctor --json`."""
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _problem(name: str, exc: errors.TpcloudError, fix: str | None = None) -> Check:
    """A failed check: the error's message, and its hint, else FIX."""
    return Check(name, "problem", exc.message, exc.hint or fix, exc.exit_code)


def exit_code(checks: list[Check]) -> int:
    """The exit code of the first problem, or 0 when there is none."""
    return next((c.exit_code for c in checks if c.status == "problem"), 0)


async def diagnose(factory: "Factory") -> list[Check]:
    """Every check, in the order a person would fix them."""
    store = _checked("secret store", lambda: _store(factory))
    choice = _checked("store choice", lambda: _store_choice(factory))
    login = _checked("login", lambda: _login(factory)) if store.status == "ok" else Check(
        "login", "skipped", "the secret store cannot be read"
    )
    cached = factory.cache.load()
    checks = [store, choice, login, _cache(factory, cached), _checked("energy archive", lambda: _archive(factory))]
    cloud = _cloud(factory) if login.status == "ok" else _skipped("cloud", "no session to ask it with")
    devices = cached[0] if cached else []
    lan = factory.addresses().of(devices)
    if not lan:
        return checks + [await cloud, Check(
            "LAN", "skipped", "no LAN address is known yet", fix="run `tpcloud discover` to find devices on the LAN"
        )]
    lan_factory = _lan_factory(factory)
    cloud_check, *on_lan = await asyncio.gather(
        cloud, *(_on_lan(lan_factory, d, lan[d.device_id]) for d in devices if d.device_id in lan)
    )
    return checks + [cloud_check] + [check for device_checks in on_lan for check in device_checks]


def _checked(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except errors.TpcloudError as exc:
        return _problem(name, exc)


def _store(factory: "Factory") -> Check:
    """Which store, and whether it opens (an encrypted file needs its passphrase to be read)."""
    secrets = factory.secrets
    secrets.get("username")
    return Check("secret store", "ok", secrets.description)


def _store_choice(factory: "Factory") -> Check:
    """What chooses the store, what is remembered for runs that force none, and what a full probe
    of keyring's backends finds now."""
    settings, secrets = factory.settings, factory.secrets
    found = secrets.probe()
    name = "store choice"
    if settings.secret_store:
        return Check(name, "ok", f"{SECRET_STORE_VAR}={settings.secret_store} chooses; a fresh probe finds {found}")
    if settings.keyring_backend:
        return Check(name, "ok", f"{KEYRING_BACKEND_VAR} chooses, on every run; a fresh probe finds {found}")
    remembered, where = secrets.remembered(), settings.store_choice_file
    if remembered is None:
        return Check(name, "ok", f"nothing is remembered in {where}; a fresh probe finds {found}")
    if remembered == found:
        return Check(name, "ok", f"{remembered} is remembered in {where}; a fresh probe finds the same")
    return Check(
        name, "warning", f"{remembered} is remembered in {where}, but a fresh probe finds {found} now",
        fix="commands use what is remembered while it is usable; `tpcloud login` remembers what the probe finds",
    )


def _login(factory: "Factory") -> Check:
    secrets = factory.secrets
    token = secrets.get("token")
    if not token:
        raise errors.LoginRequired("no session is stored", hint="run `tpcloud login`")
    factory.redactor.add(token)
    password = secrets.get("password")
    factory.redactor.add(password)
    detail = f"a session is stored for {secrets.get('username') or 'an unknown user'}"
    if password:
        return Check("login", "ok", detail + ", with the password")
    return Check("login", "ok", detail + ", without the password: Tapo and KLAP devices on the LAN need it "
                 "(log in again without --no-store-password)")


def _cache(factory: "Factory", cached: "tuple[list[Device], float] | None") -> Check:
    cache, settings = factory.cache, factory.settings
    if cached is None:
        why = f"{cache.path} cannot be read" if cache.path.exists() else "no device list is cached yet"
        return Check("cache", "ok", f"{why}; the next command fetches it")
    devices, fetched_at = cached
    age = factory.clock() - fetched_at
    detail = f"{len(devices)} devices, fetched {duration(int(age))} ago"
    if not 0 <= age < settings.cache_ttl:
        detail += f"; older than {duration(int(settings.cache_ttl))}, so the next command fetches it again"
    return Check("cache", "ok", detail)


def _archive(factory: "Factory") -> Check:
    """Where the energy archive is and what it holds, read without changing it (sqlite3 is loaded
    only when there is a file)."""
    path = factory.settings.energy_db
    if not path.exists():
        return Check("energy archive", "ok", f"none yet at {path}; `tpcloud energy --all --archive` starts it")
    from tpcloud.archive import Archive

    with Archive.for_reading(path) as archive:
        held = archive.summary()
    size = path.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB" if size >= 1e3 else f"{size} bytes"
    hours = f", {held['hours']} hours" if held["hours"] else ""
    return Check("energy archive", "ok", f"{path}: {shown}, {held['meters']} meters, {held['days']} days, "
                 f"{held['months']} months{hours}, {held['events']} resets and gaps seen")


async def _skipped(name: str, why: str) -> Check:
    return Check(name, "skipped", why)


async def _cloud(factory: "Factory") -> Check:
    """One authenticated request, with the normal timeout and retries."""
    try:
        async with factory.open_account() as account:
            count = len(await account.device_list())
    except errors.TpcloudError as exc:
        return _problem("cloud", exc, fix="check the internet connection (and TPCLOUD_CLOUD_URL if set); "
                        "-v shows each exchange")
    return Check("cloud", "ok", f"answers ({count} devices in the account){_through_proxy(factory)}")


def _through_proxy(factory: "Factory") -> str:
    """", through the proxy at URL" when the environment sends the cloud through one."""
    from urllib.parse import urlsplit

    from tpcloud.cloud.http import proxy_for

    url = urlsplit(factory.settings.cloud_url)
    proxy = proxy_for(url.scheme, url.hostname or "", factory.env)  # one tpcloud cannot use failed the check
    return f", through the proxy at {proxy.shown}" if proxy else ""


def _lan_factory(factory: "Factory") -> "Factory":
    """The same setup with a short timeout, trusting the cached device list whatever its age:
    a LAN check must not turn into a device list refresh through the cloud."""
    return dataclasses.replace(
        factory,
        env={**factory.env, "TPCLOUD_CACHE_TTL": "inf"},
        timeout=min(factory.settings.timeout, LAN_TIMEOUT),
    )


async def _on_lan(factory: "Factory", device: "Device", found: "Found") -> list[Check]:
    """Read DEVICE's state at its cached address only, as `state --via local --host` would; then its
    clock, with a warning when it is off by more than a minute (schedules fire by it)."""
    from tpcloud.capabilities import clock

    name = f"LAN {device.alias}"
    try:
        async with factory.open_service(via="local", at=found) as service:
            target = await service.resolve(device.device_id)
            (outcome,) = await service.state_many([target])
            if outcome.error is not None:
                raise outcome.error
            (timed,) = await service.run_many([target], clock.exchange(factory.clock))
        route = outcome.result.route
    except errors.TpcloudError as exc:
        exc.message = exc.message.removeprefix(f"{device.alias}: ")  # the check's name says which device
        return [_problem(name, exc, fix="check that it is powered and on this network; "
                         "`tpcloud discover` finds it again if its address changed")]
    checks = [Check(name, "ok", f"answers at {route.address} ({route.wire})")]
    if timed.error is None and timed.result.result.off:
        drift = timed.result.result.drift
        checks.append(Check(
            f"clock {device.alias}", "warning",
            f"{duration(round(abs(drift)))} {'ahead of' if drift > 0 else 'behind'} this machine: schedules fire off time",
            fix=f'run `tpcloud time "{device.alias}" --sync`',
        ))
    return checks
