"""The staff password: only its argon2id hash is stored, in a file only the booth's user can
read (data_dir/secrets, see booth.store.keys), never in the database.

There is no default password: until `booth passwd` sets one, the staff pages stay locked.
Setting a password ends every staff session (booth.store.sessions), so changing it logs
everyone out at once. No Flask here: the CLI uses this module too.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from booth.errors import BoothError
from booth.store import Store
from booth.store.schema import PASSWORD_FILE

MIN_LENGTH = 8

# argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, m=64 MiB, p=4),
# above OWASP's minimum. check_password() upgrades stored hashes when these defaults change.
_hasher = PasswordHasher()


def stored_hash(store: Store) -> str | None:
    return store.secrets.read(PASSWORD_FILE)


def store_hash(store: Store, hashed: str) -> None:
    store.secrets.write(PASSWORD_FILE, hashed)


def set_password(store: Store, password: str) -> None:
    """Store the hash of a new staff password and log out every staff session."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise BoothError(f"the staff password needs at least {MIN_LENGTH} characters")
    try:
        hashed = _hasher.hash(password)
    except UnicodeEncodeError:
        raise BoothError("the staff password contains characters that are not valid text; "
                         "type it again") from None
    # Sessions end before and after the hash is written: a crash in between logs everyone
    # out rather than leaving old sessions valid, and a login that checked the old password
    # while the hash changed has its session ended too.
    store.end_sessions()
    store_hash(store, hashed)
    store.end_sessions()


def has_password(store: Store) -> bool:
    return bool(stored_hash(store))


def check_password(store: Store, password: str) -> bool:
    """True if password is the staff password. Never raises for wrong or malformed input
    (nor for a damaged stored hash: that simply matches nothing)."""
    stored = stored_hash(store)
    if not stored or not isinstance(password, str):
        return False
    try:
        _hasher.verify(stored, password)
    except (Argon2Error, InvalidHashError, UnicodeError, ValueError, TypeError):
        return False
    try:
        if _hasher.check_needs_rehash(stored):
            # Same password, so sessions stay: nobody is logged out by an upgrade. Only if
            # the hash is still the one just checked: a new password set meanwhile wins.
            upgraded = _hasher.hash(password)
            if stored_hash(store) == stored:
                store_hash(store, upgraded)
    except (Argon2Error, ValueError):  # an odd but verifiable hash: keep it as it is
        pass
    return True
