"""Every error tpcloud reports, in one hierarchy.

Each class carries the exit code the CLI returns for it, so scripts can tell "log in again" from
"the device is unreachable" without parsing text. The message is one line a person can act on;
``hint`` optionally says what to do next. Messages never contain secrets: code that builds them
passes names and codes, not tokens or passwords.
"""

from __future__ import annotations


class TpcloudError(Exception):
    """Base of all errors tpcloud expects and reports as one line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(TpcloudError):
    """The command line or its input (JSON, options, environment) is not usable."""

    exit_code = 2


class AuthError(TpcloudError):
    """Not logged in, credentials refused, or the account cannot be used."""

    exit_code = 3


class LoginRequired(AuthError):
    """No usable session: nothing stored, or the stored one cannot be renewed."""


class TokenRejected(AuthError):
    """The cloud no longer accepts the token (expired, incorrect, or logged in elsewhere)."""


class RefreshTokenRejected(AuthError):
    """The cloud no longer accepts the refresh token."""


class NeedsV2Login(AuthError):
    """The V1 login was refused the way it is for accounts with 2-step verification (-23003)."""


class MfaRequired(AuthError):
    """The cloud wants a 2-step verification code before it gives a token.

    ``process_id`` (the cloud's MFAProcessId, when it sent one) ties the code to this login;
    ``mfa_types`` are the ways the cloud offers to send the code (1 app push, 2 e-mail).
    """

    def __init__(
        self, message: str, *, process_id: str | None = None, mfa_types: tuple[int, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.process_id = process_id
        self.mfa_types = mfa_types


class MfaCodeSent(TpcloudError):
    """A 2-step verification code is on its way and no one is at a terminal to type it.

    Not a failure: a script finishes the login with ``tpcloud login --code CODE``. Its own exit
    code lets the script tell this from a refused login.
    """

    exit_code = 10


class NameNotFound(TpcloudError):
    """No device, or more than one, matches the name given."""

    exit_code = 4


class DeviceNotBound(NameNotFound):
    """The cloud says the device is not (or no longer) in this account."""


class DeviceError(TpcloudError):
    """The device answered, but refused or failed the command (an ``err_code`` in its reply)."""

    exit_code = 5

    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class NotSupported(DeviceError):
    """The device has no such module or method: it lacks what was asked of it (an energy meter, a
    status LED, a countdown timer). `energy --all` and `metrics` pass over devices that answer
    this."""


class DeviceUnreachable(TpcloudError):
    """The device cannot be reached on this route (cloud says offline, LAN connect failed)."""

    exit_code = 6


class DeviceOffline(DeviceUnreachable):
    """The cloud cannot reach the device (-20571); Tapo devices always answer this way."""


class WireRefused(DeviceUnreachable):
    """The device at this address would not take this wire: connection refused, or its handshake
    refused as firmware that changed its encryption refuses it. Its address is worth finding again."""


class HandshakeRefused(WireRefused):
    """The device answered, and refused this wire's handshake (HTTP 400/403/404, AES error 1003)."""


class NetworkError(TpcloudError):
    """The network failed us: connection refused or reset, name resolution, TLS."""

    exit_code = 7


class Timeout(NetworkError):
    """A peer did not answer within the timeout."""


class CertificateError(NetworkError):
    """The server's TLS certificate did not verify; asking again cannot change that."""


class CloudError(TpcloudError):
    """The TP-Link cloud answered with an error code, or with something that is not its API."""

    exit_code = 8

    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class CloudBusy(CloudError):
    """The cloud timed out or is busy; worth a bounded retry."""


class RateLimited(CloudError):
    """The cloud is throttling this account; retrying soon only makes it worse."""


class ProtocolError(TpcloudError):
    """A peer sent bytes that do not follow its protocol (bad frame, bad JSON, bad crypto)."""

    exit_code = 8


class SecretStoreError(TpcloudError):
    """The secret store cannot be read or written (locked keyring, wrong passphrase, bad file)."""

    exit_code = 9


class WaitTimedOut(TpcloudError):
    """`tpcloud wait` reached its --timeout before the condition had held for --for.

    Not a failure of anything: a script tells "not yet" from "could not look" by its own code.
    """

    exit_code = 11


class ArchiveError(TpcloudError):
    """The energy archive cannot be read or written: a folder tpcloud may not write in, a damaged
    file, or one from a newer tpcloud. Its own code: a script fixes it otherwise than a mistake in
    its command line (2) or a device's refusal (5), and nothing was changed."""

    exit_code = 12


EXIT_INTERRUPTED = 130

# What each exit code means, in code order: the table `tpcloud --help` states (the README's
# "Exit codes and errors" gives examples), kept level with the classes above by tests/test_errors.py.
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "unexpected error",
    2: "bad usage or input",
    3: "login needed or refused",
    4: "no such device",
    5: "the device refused the command",
    6: "device unreachable",
    7: "network error or timeout",
    8: "cloud or protocol error",
    9: "secret store problem",
    10: "a 2-step verification code was sent (finish with `login --code`)",
    11: "waited until --timeout, and the condition did not come",
    12: "the energy archive cannot be read or written",
    EXIT_INTERRUPTED: "interrupted",
}
