"""Secrets at rest: AES-256-GCM with a random 96-bit nonce per value.

A stored value is `nonce (12 bytes) || ciphertext+tag`; its associated data is the owner's
id and the secret's name, so a ciphertext copied to another row (another owner, another
name) does not decrypt. Each row keeps the id of the key that encrypted it (the first 16
hex digits of the key's SHA-256: it tells keys apart and reveals nothing of them), so a
process started with the wrong key finds out before it serves anything.

The key is 32 bytes, written as base64 (standard or URL-safe) in FLOWSYNC_SECRET_KEY or in
the file FLOWSYNC_SECRET_KEY_FILE; FLOWSYNC_SECRET_PREVIOUS_KEY is the key being rotated
away from (rows it encrypted still decrypt until `flowsync secrets rotate-key` has
encrypted them again with the current one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flowsync.config import Settings
from flowsync.errors import ConfigurationError

__all__ = [
    "DEV_SECRET_KEY_FILE",
    "NONCE_BYTES",
    "Key",
    "Keyring",
    "NoSecretKey",
    "SecretUnreadable",
    "ensure_dev_secret_key",
    "keyring_from_settings",
    "new_key_text",
    "parse_key",
]

NONCE_BYTES = 12
KEY_BYTES = 32
# Where `flowsync dev` keeps the key it made, in its data folder (mode 0600).
DEV_SECRET_KEY_FILE = "secret-key"  # noqa: S105 (a file name)


class NoSecretKey(ConfigurationError):
    """No secret key is configured (FLOWSYNC_SECRET_KEY or FLOWSYNC_SECRET_KEY_FILE), and
    something needs one: setting or reading a secret. An API call that needs one is
    answered 409 with this message (the server's configuration, not the request, must
    change); at start it is one line and exit 1, as every ConfigurationError."""

    code = "secret_key_missing"
    status = 409


class SecretUnreadable(ConfigurationError):
    """A stored secret does not decrypt with the configured keys: the key is not the one
    that encrypted it, or the row was tampered with."""

    code = "secret_key_wrong"


@dataclass(frozen=True, slots=True)
class Key:
    """One AES-256 key and its id (see the module docstring)."""

    material: bytes
    id: str

    @classmethod
    def of(cls, material: bytes) -> Key:
        return cls(material, hashlib.sha256(material).hexdigest()[:16])

    def __repr__(self) -> str:  # never the material, in a traceback or a log
        return f"Key(id={self.id!r})"


def _associated(owner_id: uuid.UUID, name: str) -> bytes:
    return owner_id.bytes + name.encode()


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (None: none configured) and the previous one, during a rotation."""

    current: Key | None
    previous: Key | None = None

    @property
    def key_ids(self) -> frozenset[str]:
        """The ids of the keys that can decrypt."""
        return frozenset(k.id for k in (self.current, self.previous) if k is not None)

    def require(self) -> Key:
        """The current key; NoSecretKey when there is none."""
        if self.current is None:
            raise NoSecretKey(
                "No secret key is configured: set FLOWSYNC_SECRET_KEY (32 random bytes in "
                'base64, e.g. `python -c "import os,base64;print(base64.urlsafe_b64encode('
                'os.urandom(32)).decode())"`) or FLOWSYNC_SECRET_KEY_FILE.'
            )
        return self.current

    def encrypt(self, owner_id: uuid.UUID, name: str, value: str) -> tuple[bytes, str]:
        """`value` encrypted with the current key for the row (owner, name): the stored
        bytes and the key's id."""
        key = self.require()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key.material).encrypt(nonce, value.encode(), _associated(owner_id, name))
        return nonce + sealed, key.id

    def decrypt(self, owner_id: uuid.UUID, name: str, stored: bytes, key_id: str) -> str:
        """The value of the row (owner, name); SecretUnreadable when no configured key
        decrypts it. The message names the secret and the key id, never a value."""
        for key in (self.current, self.previous):
            if key is None or key.id != key_id:
                continue
            try:
                plain = AESGCM(key.material).decrypt(
                    stored[:NONCE_BYTES], stored[NONCE_BYTES:], _associated(owner_id, name)
                )
            except InvalidTag:
                break
            return plain.decode()
        raise SecretUnreadable(
            f"The secret {name!r} does not decrypt with the configured keys (it was "
            f"encrypted with key {key_id}; the configured keys are "
            f"{', '.join(sorted(self.key_ids)) or 'none'})."
        )


def parse_key(text: str, setting: str) -> Key:
    """A key from its base64 text; ConfigurationError naming `setting` when it is not 32
    bytes of base64."""
    raw = text.strip()
    try:
        material = base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError):
        material = b""
    if len(material) != KEY_BYTES or not raw:
        raise ConfigurationError(
            f"{setting} is not a secret key: it must be {KEY_BYTES} random bytes written in "
            'base64 (44 characters), e.g. the output of `python -c "import os,base64;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`.'
        )
    return Key.of(material)


def new_key_text() -> str:
    """A new random key, as base64 text."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def _read_key_file(path: Path, setting: str) -> Key:
    try:
        text = path.expanduser().read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"{setting} names {path}, which cannot be read: {exc.strerror}."
        ) from None
    return parse_key(text, f"{setting} ({path})")


def keyring_from_settings(settings: Settings) -> Keyring:
    """The keys the settings name; ConfigurationError (one line naming the setting) for
    a malformed key, a key file that cannot be read, or both a key and a key file."""
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    if key is not None and settings.secret_key_file is not None:
        raise ConfigurationError(
            "Both FLOWSYNC_SECRET_KEY and FLOWSYNC_SECRET_KEY_FILE are set: set one."
        )
    current = None
    if key is not None:
        current = parse_key(key, "FLOWSYNC_SECRET_KEY")
    elif settings.secret_key_file is not None:
        current = _read_key_file(settings.secret_key_file, "FLOWSYNC_SECRET_KEY_FILE")
    previous = None
    if settings.secret_previous_key is not None:
        previous = parse_key(
            settings.secret_previous_key.get_secret_value(), "FLOWSYNC_SECRET_PREVIOUS_KEY"
        )
    if previous is not None and current is None:
        raise ConfigurationError(
            "FLOWSYNC_SECRET_PREVIOUS_KEY is set without a current key: set "
            "FLOWSYNC_SECRET_KEY (or FLOWSYNC_SECRET_KEY_FILE) to the new key."
        )
    if previous is not None and current is not None and previous.id == current.id:
        previous = None
    return Keyring(current, previous)


def ensure_dev_secret_key(settings: Settings) -> Settings:
    """`settings`, with FLOWSYNC_SECRET_KEY_FILE pointing at a key kept in the data folder
    (made on first use, mode 0600) when no key is configured: so that `flowsync dev` and
    the CLI next to it need no setup. Settings that name a key are returned as they are."""
    if settings.secret_key is not None or settings.secret_key_file is not None:
        return settings
    path = settings.data_dir.expanduser() / DEV_SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once keep one key, the first one's.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(new_key_text() + "\n")
    return settings.model_copy(update={"secret_key_file": path})
