"""The staff password: only its argon2id hash is stored, in the store's settings.

There is no default password: until `booth passwd` sets one, the staff pages stay locked.
A random "session epoch" sits beside the hash; a staff session is valid only while it
carries the current epoch, and every new password renews it, so changing the password
logs out every staff session at once. No Flask here: the CLI uses this module too.
"""

from __future__ import annotations

import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from booth.errors import BoothError
from booth.store import Store

HASH_KEY = "staff_password_hash"
EPOCH_KEY = "staff_session_epoch"
MIN_LENGTH = 8

# argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, m=64 MiB, p=4),
# above OWASP's minimum. check_password() upgrades stored hashes when these defaults change.
_hasher = PasswordHasher()


def _new_epoch() -> str:
    return secrets.token_urlsafe(24)


def set_password(store: Store, password: str) -> None:
    """Store the hash of a new staff password and log out every staff session."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise BoothError(f"the staff password needs at least {MIN_LENGTH} characters")
    try:
        hashed = _hasher.hash(password)
    except UnicodeEncodeError:
        raise BoothError("the staff password contains characters that are not valid text; "
                         "type it again") from None
    # The epoch is renewed before and after the hash is written: a crash in between logs
    # everyone out rather than leaving old sessions valid, and a login that checked the old
    # password while the hash changed gets an epoch that is already stale.
    store.set_setting(EPOCH_KEY, _new_epoch())
    store.set_setting(HASH_KEY, hashed)
    store.set_setting(EPOCH_KEY, _new_epoch())


def has_password(store: Store) -> bool:
    return bool(store.get_setting(HASH_KEY))


def check_password(store: Store, password: str) -> bool:
    """True if password is the staff password. Never raises for wrong or malformed input
    (nor for a damaged stored hash: that simply matches nothing)."""
    stored = store.get_setting(HASH_KEY)
    if not stored or not isinstance(password, str):
        return False
    try:
        _hasher.verify(stored, password)
    except (Argon2Error, InvalidHashError, UnicodeError, ValueError, TypeError):
        return False
    try:
        if _hasher.check_needs_rehash(stored):
            # Same password, so the epoch stays: nobody is logged out by an upgrade. Only if
            # the hash is still the one just checked: a new password set meanwhile wins.
            # (The store has no compare-and-set, so this narrows the window to a moment.)
            upgraded = _hasher.hash(password)
            if store.get_setting(HASH_KEY) == stored:
                store.set_setting(HASH_KEY, upgraded)
    except (Argon2Error, ValueError):  # an odd but verifiable hash: keep it as it is
        pass
    return True


def is_current_epoch(store: Store, value: object) -> bool:
    """Whether a session's value is the current epoch while a password is set (read-only:
    unlike session_epoch(), it never writes to the store)."""
    current = store.get_setting(EPOCH_KEY)
    if not (isinstance(value, str) and current and has_password(store)):
        return False
    return hmac.compare_digest(value.encode(), current.encode())


def session_epoch(store: Store) -> str:
    """The value a staff session must carry to count as logged in.

    A login should read it *before* check_password(): set_password() renews it after
    writing the new hash, so a login that checked the old password during a change ends up
    with a stale epoch instead of a valid session."""
    return store.setting_or_create(EPOCH_KEY, _new_epoch)
