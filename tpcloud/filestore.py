"""tpcloud's secrets in one owner-only JSON file, optionally encrypted with a passphrase.

It exists for the places with no usable OS keyring (headless Linux, cron without D-Bus, Termux):
tpcloud still needs somewhere to keep its token. It deliberately does not build on ``keyring``:
those are the places where every command runs unattended, and importing keyring costs about
70 ms of start-up that the file store has no use for.

Several tpcloud runs (cron jobs, a shell loop) may refresh the token at the same moment, so every
change is a read-modify-write under an exclusive lock, written to a temporary file and renamed into
place: readers see the old file or the new one, never half of one, and no update is lost.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpcloud.config import PASSPHRASE_VAR
from tpcloud.errors import SecretStoreError
from tpcloud.fsutil import FileLock, atomic_write

if TYPE_CHECKING:
    from tpcloud.keyringstore import Changes

FORMAT = "tpcloud-secrets"
VERSION = 1
PLAIN = "none"
ENCRYPTED = "scrypt+aes-256-gcm"
# About 0.1 s and 32 MiB per derivation: slow for guessing, quick enough for a CLI.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
# scrypt needs 128*n*r bytes; parameters read from a tampered file must not exhaust memory.
_MAX_SCRYPT_MEMORY = 2**28
# Binds the ciphertext to this format, so a future format can never be fed to this decoder.
_AAD = f"{FORMAT}/{VERSION}/{ENCRYPTED}".encode()

Secrets = dict[str, dict[str, str]]


class FileStore:
    """Secrets in ``secrets.json``: mode 0600, encrypted when a passphrase is given (an empty
    passphrase means "no encryption"). Entries are grouped by service, as in a keyring, so
    :class:`tpcloud.secrets.SecretStore` asks both kinds of store the same way."""

    def __init__(self, path: Path, passphrase: str) -> None:
        self.path = Path(path)
        self._passphrase = passphrase
        # The last derived key and what it was derived from: scrypt is deliberately slow, and a
        # run reads the same file several times.
        self._key_cache: tuple[tuple[bytes, int, int, int], bytes] | None = None

    @property
    def description(self) -> str:
        """One line telling the user where their secrets are and whether they are encrypted."""
        if self._passphrase:
            return f"file store {self.path} (encrypted with {PASSPHRASE_VAR})"
        return f"file store {self.path} (not encrypted: set {PASSPHRASE_VAR} to encrypt it)"

    def entries(self, service: str) -> dict[str, str]:
        """Every secret of SERVICE, by name."""
        secrets, _ = self._load()
        return secrets.get(service, {})

    def update(self, service: str, values: "Changes") -> dict[str, str]:
        """Set (or, for None, delete) several entries in one atomic write; SERVICE's entries now.

        VALUES may be a function of the entries as they are under the lock, giving the changes.
        A token and its refresh token must change together: a crash between two writes would
        leave a pair the cloud no longer accepts.
        """
        return self._modify(lambda secrets: _apply(secrets, service, values)).get(service, {})

    def clear(self, service: str) -> None:
        """Forget every secret of SERVICE."""
        self._modify(lambda secrets: secrets.pop(service, None))

    # Reading

    def _load(self) -> tuple[Secrets, str | None]:
        """The secrets in the file and its encryption (None when there is no file yet)."""
        try:
            with open(self.path, "rb") as file:
                mode = os.fstat(file.fileno()).st_mode & 0o777
                # Like ssh: a secret others can read is already leaked, one they can write may be
                # planted. Windows reports no such bits, so only POSIX is checked.
                if os.name == "posix" and mode & 0o077:
                    raise SecretStoreError(
                        f"refusing to use {self.path}: its mode {mode:04o} lets other users read or "
                        f"write it; fix it with: chmod 600 {self.path}"
                    )
                data = file.read()
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            raise SecretStoreError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(data)
        except ValueError:
            raise self._corrupt("not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise self._corrupt("not a tpcloud secrets file")
        if doc.get("version") != VERSION:
            raise SecretStoreError(
                f"{self.path} has format version {doc.get('version')!r}, this tpcloud reads only {VERSION}",
                hint="upgrade tpcloud, or move the file aside and log in again",
            )
        encryption = doc.get("encryption")
        if encryption == PLAIN:
            inner = doc.get("secrets")
        elif encryption == ENCRYPTED:
            inner = self._decrypt(doc)
        else:
            raise self._corrupt(f"unknown encryption {encryption!r}")
        if not (
            isinstance(inner, dict)
            and all(isinstance(entries, dict) for entries in inner.values())
            and all(isinstance(v, str) for entries in inner.values() for v in entries.values())
        ):
            raise self._corrupt("the secrets are not a mapping of names to strings")
        return inner, encryption

    def _decrypt(self, doc: dict[str, Any]) -> Any:
        if not self._passphrase:
            raise SecretStoreError(
                f"{self.path} is encrypted; set {PASSPHRASE_VAR} to the passphrase it was written with"
            )
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            kdf = doc["kdf"]
            salt = base64.b64decode(kdf["salt"], validate=True)
            n, r, p = kdf["n"], kdf["r"], kdf["p"]
            nonce = base64.b64decode(doc["nonce"], validate=True)
            ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise self._corrupt("its encryption fields are missing or not base64") from None
        if not (
            all(type(x) is int and x >= 1 for x in (n, r, p))
            and n > 1
            and n & (n - 1) == 0
            and 128 * n * r <= _MAX_SCRYPT_MEMORY
            and p <= 16
            and len(nonce) == 12
        ):
            raise self._corrupt("its scrypt parameters or nonce are out of range")
        try:
            plain = AESGCM(self._key(salt, n, r, p)).decrypt(nonce, ciphertext, _AAD)
        except InvalidTag:
            raise SecretStoreError(
                f"cannot decrypt {self.path}: {PASSPHRASE_VAR} is wrong, or the file was altered",
                hint=f"set {PASSPHRASE_VAR} to the passphrase the file was written with",
            ) from None
        try:
            return json.loads(plain)
        except ValueError:
            raise self._corrupt("its decrypted content is not valid JSON") from None

    def _key(self, salt: bytes, n: int, r: int, p: int) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        params = (salt, n, r, p)
        if self._key_cache is None or self._key_cache[0] != params:
            passphrase = self._passphrase.encode("utf-8", "surrogateescape")  # as the env gave it
            key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
            self._key_cache = (params, key)
        return self._key_cache[1]

    def _corrupt(self, why: str) -> SecretStoreError:
        return SecretStoreError(
            f"{self.path} is unreadable ({why}); it was left untouched",
            hint="restore it from a backup, or move it aside and log in again",
        )

    # Writing

    def _modify(self, change: Callable[[Secrets], object]) -> Secrets:
        """Read, change and write back under the lock, so concurrent runs never lose an update;
        the secrets as they are now.

        The file is read first even for a pure write: a file that cannot be read (wrong
        passphrase, bad mode, corrupt) must stop the write rather than be replaced.
        """
        try:
            self._make_folder()
            with FileLock(self.path.with_suffix(".lock")):
                secrets, encryption = self._load()
                before = {service: dict(entries) for service, entries in secrets.items()}
                change(secrets)
                # A passphrase that appeared since the last write encrypts the file right away.
                if secrets != before or (encryption == PLAIN and self._passphrase):
                    self._write(secrets)
                return secrets
        except OSError as exc:
            raise SecretStoreError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _make_folder(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another run made it first
                folder.mkdir(mode=0o700)

    def _write(self, secrets: Secrets) -> None:
        doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self._passphrase:
            doc.update(self._encrypt(json.dumps(secrets, sort_keys=True).encode()))
        else:
            doc.update(encryption=PLAIN, secrets=secrets)
        atomic_write(self.path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())

    def _encrypt(self, plain: bytes) -> dict[str, Any]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        # A fresh salt gives a fresh key on every write, so a nonce is never reused with a key.
        salt, nonce = os.urandom(16), os.urandom(12)
        ciphertext = AESGCM(self._key(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(nonce, plain, _AAD)
        return {
            "encryption": ENCRYPTED,
            "kdf": {"salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext),
        }


def _apply(secrets: Secrets, service: str, values: "Changes") -> None:
    entries = secrets.setdefault(service, {})
    if callable(values):
        values = values(dict(entries))
    for name, value in values.items():
        if value is None:
            entries.pop(name, None)
        else:
            entries[name] = value
    if not entries:
        del secrets[service]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
