"""A real Secret Service of a test's own: a private D-Bus session bus and gnome-keyring-daemon.

Both run in a temporary HOME and XDG_RUNTIME_DIR and talk over a unix socket only. The bus
activates nothing: no second keyring daemon behind the test's back, and no prompter, so a locked
collection answers "dismissed" at once, as it does where nobody can see a prompt. ``env`` is what
a CLI process needs to reach the service (the bus address); the helpers look at and change the
keyring from the test process, as another program of the user would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path


NEEDED = ("dbus-daemon", "gnome-keyring-daemon")
BUS_NAME = "org.freedesktop.secrets"
# No <servicedir>: nothing is activated on this bus.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def missing() -> list[str]:
    """The programs a Secret Service needs that are not installed."""
    return [name for name in NEEDED if shutil.which(name) is None]


def skip_unless_installed() -> None:
    import pytest  # not at the top: make bench uses this module, without pytest

    if missing():
        pytest.skip(f"{' and '.join(missing())} not installed (Debian: apt-get install gnome-keyring dbus-daemon; "
                    ".ci/run does)")


class SecretService:
    """gnome-keyring-daemon on a bus of its own; UNLOCKED: started with the login keyring open."""

    def __init__(self, *, unlocked: bool = True) -> None:
        self._unlocked = unlocked
        # A short path of its own: a unix socket's path must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="tpcloud-ss-"))
        self._procs: list[subprocess.Popen] = []
        self.address = ""

    @property
    def env(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def start(self) -> "SecretService":
        run, home = self.root / "run", self.root / "home"
        run.mkdir(mode=0o700)
        home.mkdir(mode=0o700)
        config = self.root / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=run / "bus"))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(run),
               "LANG": "C.UTF-8"}
        bus = self._spawn(["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
                          env, stdout=subprocess.PIPE)
        self.address = bus.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError(f"dbus-daemon did not start: {self._log('dbus-daemon')}")
        keyring = self._spawn(
            ["gnome-keyring-daemon", "--foreground", "--components=secrets", *(["--unlock"] if self._unlocked else [])],
            {**env, **self.env}, stdin=subprocess.PIPE,
        )
        keyring.stdin.write(b"test keyring password" if self._unlocked else b"")
        keyring.stdin.close()
        self._wait_for_the_service(keyring)
        return self

    def stop(self) -> None:
        if len(self._procs) > 1 and self._procs[1].poll() is not None:  # it ended before it was stopped
            print(f"gnome-keyring-daemon exited with {self._procs[1].returncode} during the test; its log:\n"
                  f"{self._log('gnome-keyring-daemon')}", file=sys.stderr)
        for proc in reversed(self._procs):  # the keyring daemon first, then its bus
            proc.kill()  # also when it is stopped (freeze)
            proc.wait(10)
            if proc.stdout:
                proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, argv: list[str], env: dict[str, str], **streams) -> subprocess.Popen:
        with open(self.root / f"{Path(argv[0]).name}.log", "wb") as log:
            proc = subprocess.Popen(argv, env=env, stderr=log, cwd=self.root, **streams)
        self._procs.append(proc)
        return proc

    def _log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-2000:]

    def _wait_for_the_service(self, keyring: subprocess.Popen) -> None:
        from jeepney import message_bus

        deadline = time.monotonic() + 20
        with self._connection() as connection:
            while not connection.send_and_get_reply(message_bus.NameHasOwner(BUS_NAME), timeout=5).body[0]:
                if keyring.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gnome-keyring-daemon did not start: {self._log('gnome-keyring-daemon')}")
                time.sleep(0.02)

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        from jeepney.io.blocking import open_dbus_connection

        connection = open_dbus_connection(self.address)
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _collection(self) -> Iterator:
        import secretstorage

        with self._connection() as connection:
            yield secretstorage.get_default_collection(connection)

    # What another program of the user would do

    def items(self, service: str = "tpcloud") -> dict[str, str]:
        """SERVICE's items as keyring stores them: their username and secret."""
        with self._collection() as collection:
            return {
                item.get_attributes()["username"]: item.get_secret().decode()
                for item in collection.search_items({"service": service})
            }

    @contextlib.contextmanager
    def keyring(self) -> Iterator:
        """keyring's Secret Service backend, talking to this service while in the block."""
        from keyring.backends.SecretService import Keyring

        before = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = self.address
        try:
            yield Keyring()
        finally:
            if before is None:
                del os.environ["DBUS_SESSION_BUS_ADDRESS"]
            else:
                os.environ["DBUS_SESSION_BUS_ADDRESS"] = before

    def lock(self) -> None:
        """Lock the login keyring, as a screen locker does; unlocking it needs a prompt."""
        with self._collection() as collection:
            collection.lock()
            assert collection.is_locked()

    def freeze(self) -> None:
        """Stop the keyring daemon: calls to it wait for an answer that never comes."""
        os.kill(self._procs[1].pid, signal.SIGSTOP)

    @contextlib.contextmanager
    def calls(self, member: str) -> Iterator[list[str]]:
        """The methods named MEMBER called on the bus while in the block (the list of their
        interfaces fills when the block ends)."""
        from jeepney import MatchRule
        from jeepney.bus_messages import Monitoring
        from jeepney.low_level import HeaderFields, MessageType

        seen: list[str] = []
        with self._connection() as connection:
            rule = MatchRule(type="method_call", member=member)
            connection.send_and_get_reply(Monitoring().BecomeMonitor([rule.serialise()]), timeout=5)
            stop = threading.Event()

            def watch() -> None:
                while True:
                    try:
                        message = connection.receive(timeout=0.3)
                    except TimeoutError:
                        if stop.is_set():  # the bus has delivered all there was
                            return
                        continue
                    fields = message.header.fields
                    if message.header.message_type == MessageType.method_call and fields.get(HeaderFields.member) == member:
                        seen.append(fields.get(HeaderFields.interface, ""))

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                yield seen
            finally:
                stop.set()
                watcher.join(10)


@contextlib.contextmanager
def secret_service(*, unlocked: bool = True) -> Iterator[SecretService]:
    """A started SecretService, stopped and removed afterwards (skips when it is not installed)."""
    skip_unless_installed()
    service = SecretService(unlocked=unlocked)
    try:
        yield service.start()
    finally:
        service.stop()
