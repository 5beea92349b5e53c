"""Staff users of the dashboard: argon2id password hashes, roles archivist (acts) and reader (sees)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m

ARCHIVIST = "archivist"
READER = "reader"
ROLES = (ARCHIVIST, READER)
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong username costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("postmottak-no-such-user")


class UserError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(session: Session, username: str, password: str, role: str) -> m.User:
    if not USERNAME.match(username):
        raise UserError("brukernavnet kan bare inneholde bokstaver, sifre og . _ @ -")
    if role not in ROLES:
        raise UserError(f"rollen må være en av: {', '.join(ROLES)}")
    if len(password) < 8:
        raise UserError("passordet må ha minst 8 tegn")
    if session.scalar(select(m.User.id).where(m.User.username == username)) is not None:
        raise UserError(f"brukeren {username} finnes allerede")
    user = m.User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> m.User:
    if len(password) < 8:
        raise UserError("passordet må ha minst 8 tegn")
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    return user


def set_disabled(session: Session, username: str, disabled: bool) -> m.User:
    user = get_user(session, username)
    user.disabled = disabled
    return user


def get_user(session: Session, username: str) -> m.User:
    user = session.scalar(select(m.User).where(m.User.username == username))
    if user is None:
        raise UserError(f"ingen bruker med navnet {username}")
    return user


def list_users(session: Session) -> list[m.User]:
    return list(session.scalars(select(m.User).order_by(m.User.username)))


def authenticate(session: Session, username: str, password: str) -> m.User | None:
    """The enabled user with this password, else None. Upgrades the hash when the parameters have changed."""
    user = session.scalar(select(m.User).where(m.User.username == username)) if USERNAME.match(username) else None
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
