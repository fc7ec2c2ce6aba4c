"""Patients' accounts in the space (a service, no HTTP): activation with the code the
operator's `mss patient add` issued, the two-step login (password, then a one-time code
by e-mail or SMS, or TOTP once enrolled), the throttle (in the store, shared by every
worker), password change and reset through the code channel, TOTP enrolment.

Refusals are `SpaceError`s with a French text and its English meaning; the pages render
them. Passwords are checked with Argon2id off the event loop, two at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
from dataclasses import dataclass

import pyotp

from mss.security.auth import log_refusal
from mss.security.passwords import hash_password, verify_password
from mss.space.deps import SpaceDeps
from mss.space.errors import SpaceError
from mss.store import space_accounts as guard
from mss.store.accounts import set_password
from mss.store.notifications import add_notification
from mss.store.space import NewSession, create_session, end_sessions_of
from mss.store.space_patients import PatientLogin, patient_login
from mss.store.sql import Conn, Tx

MIN_PASSWORD = 12
PURGE_EVERY = 300  # seconds between two purges of dead codes and sessions
RESET_EVERY = 60  # seconds between two reset codes of one account
IP_DELAY = 2  # seconds each login waits from an address that failed too often
DOOR = "space"  # in the log of refused logins, as the mail doors'
_DUMMY_HASH = hash_password("an unused password, for timing")

WRONG_LOGIN = SpaceError(
    "Identifiant ou mot de passe incorrect.", "Wrong identifier or password.", status=400
)
CLOSED = SpaceError(
    "Ce compte est désactivé ou ce profil est fermé : la connexion n'est pas possible. "
    "Contactez votre établissement.",
    "This account is disabled or this profile is closed: no login.",
    status=403,
)
NO_CHANNEL = SpaceError(
    "Aucune adresse e-mail ni aucun téléphone connus pour vous envoyer un code : "
    "contactez votre établissement.",
    "No e-mail address nor phone number to send a code to.",
    status=400,
)
DEAD_CODE = SpaceError(
    "Ce code n'est plus valable (expiré, déjà utilisé ou essayé trop de fois) : "
    "recommencez pour en recevoir un nouveau.",
    "This code is no longer valid (expired, used, or tried too many times).",
    status=400,
)
WRONG_CODE = SpaceError("Code incorrect.", "Wrong code.", status=400)
# activation and reset: one answer whether the identifier has an account or not
BAD_CODE = SpaceError(
    "Code incorrect ou qui n'est plus valable (expiré, déjà utilisé ou essayé trop de fois) :"
    " vérifiez-le, ou recommencez pour en recevoir un nouveau.",
    "Wrong code, or no longer valid (expired, used, or tried too many times).",
    status=400,
)
SHORT_PASSWORD = SpaceError(
    f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères.",
    f"The password must have at least {MIN_PASSWORD} characters.",
    status=400,
)
DIFFERENT_PASSWORDS = SpaceError(
    "Les deux mots de passe ne sont pas identiques.", "The two passwords differ.", status=400
)


def _within(wait: int, unit: int, word: str) -> str:
    """« 3 minutes », « 1 heure »: a wait rounded up to `unit` seconds."""
    count = max(1, (wait + unit - 1) // unit)
    return f"{count} {word}{'s' if count > 1 else ''}"


def too_many(wait: int) -> SpaceError:
    minutes = _within(wait, 60, "minute")
    return SpaceError(f"Trop de tentatives : réessayez dans {minutes}.",
                      f"Too many attempts: try again in {minutes}.", status=429)  # fmt: skip


def too_many_codes(wait: int) -> SpaceError:
    minutes = _within(wait, 60, "minute")
    return SpaceError(f"Trop de codes envoyés : un nouveau code dans {minutes}.",
                      f"Too many codes sent: a new one in {minutes}.", status=429)  # fmt: skip


def no_code_today(wait: int) -> SpaceError:
    hours = _within(wait, 3600, "heure")
    return SpaceError(
        f"Trop de codes incorrects pour cet identifiant : aucun nouveau code avant {hours}. "
        "Contactez votre établissement si besoin.",
        "Too many wrong codes for this identifier: no new code for a while (hours).",
        status=429,
    )


@dataclass(frozen=True, slots=True)
class Pending:
    """After the password: the token of the second step and how the code comes."""

    token: str
    method: str  # email, sms, totp


@dataclass(frozen=True, slots=True)
class LoggedIn:
    session: NewSession
    device_cookie: str


def ins_of(deps: SpaceDeps, identifier: str) -> str:
    """The INS an identifier names: the INS itself or the patient's address."""
    text = identifier.strip()
    local, at, domain = text.rpartition("@")
    if at and domain.lower() == deps.patient_domain.lower():
        text = local
    return text.upper()[:15] if text.isalnum() else ""


def today(deps: SpaceDeps) -> dt.date:
    return dt.datetime.fromtimestamp(deps.now(), dt.UTC).date()


def check_password_policy(password: str, confirmation: str | None = None) -> None:
    if len(password) < MIN_PASSWORD:
        raise SHORT_PASSWORD
    if confirmation is not None and not hmac.compare_digest(password, confirmation):
        raise DIFFERENT_PASSWORDS


async def _verify(deps: SpaceDeps, stored: str | None, password: str) -> bool:
    async with deps.hashing:
        return await asyncio.to_thread(verify_password, stored or _DUMMY_HASH, password)


async def _hash(deps: SpaceDeps, password: str) -> str:
    async with deps.hashing:
        return await asyncio.to_thread(hash_password, password)


def _may_log_in(found: PatientLogin) -> bool:
    return found.address is not None and not found.disabled and found.profile_status == "active"


def _code_channel(found: PatientLogin) -> str:
    if found.email:
        return "email"
    if found.phone:
        return "sms"
    raise NO_CHANNEL


# --- login ------------------------------------------------------------------------------------


async def login_password(
    deps: SpaceDeps, identifier: str, password: str, *, ip: str, device: str | None
) -> Pending:
    """Step 1: the throttle admits the attempt (counted before the check), the password
    is checked; then a code is sent (or TOTP asked) and the second step is pending. An
    address that failed too often is slowed down, never refused (others share it)."""
    ins = ins_of(deps, identifier) or "-"
    now = deps.now()
    account, address = await deps.store.read(lambda c: _keys(c, ins, device, ip))
    wait = await deps.store.write(lambda tx: guard.admit(tx, account, address, now))
    if wait:
        log_refusal(DOOR, identifier, ip, f"throttled (account, {wait} s)")
        raise too_many(wait)
    if address is not None and await deps.store.read(lambda c: guard.ip_slowed(c, address, now)):
        await asyncio.sleep(IP_DELAY)
    found = await deps.store.read(lambda c: patient_login(c, ins))
    if not await _verify(deps, found.password_hash if found else None, password) or found is None:
        log_refusal(DOOR, identifier, ip, "unknown account" if found is None else "wrong password")
        raise WRONG_LOGIN
    keys = (account, address)
    pending = await deps.store.write(lambda tx: _password_right(tx, deps, found, keys, now))
    await _purge(deps, now)
    return pending


def _keys(conn: Conn, ins: str, device: str | None, ip: str) -> tuple[str, str | None]:
    """The throttle's keys of a login: the account's (its own for a device it already
    used: a stranger's guesses do not lock the patient out of it), and the address's
    (none from such a device)."""
    known = guard.is_known_device(conn, ins, device)
    return guard.account_key(ins, device if known else None), None if known else guard.ip_key(ip)


async def _purge(deps: SpaceDeps, now: int) -> None:
    """Every few minutes, at a login: no background task needed, each worker does it."""
    if now - deps.purged >= PURGE_EVERY:
        deps.purged = now
        await deps.store.write(lambda tx: guard.purge_space(tx, now, deps.idle_timeout))


def _password_right(
    tx: Tx, deps: SpaceDeps, found: PatientLogin, keys: tuple[str, str | None], now: int
) -> Pending:
    """The attempt was no failure; the account's failures stay until the second step
    succeeds. A code is sent, five an hour at most (the patient's phone is not flooded,
    the code not guessed by asking for new ones)."""
    guard.right_password(tx, *keys)
    if not _may_log_in(found):
        raise CLOSED
    totp = guard.get_totp(tx.conn, found.ins)
    method = "totp" if totp is not None and totp.confirmed else _code_channel(found)
    if method != "totp" and (wait := guard.code_issue(tx, found.ins, now)):
        raise too_many_codes(wait)
    issued = guard.issue_code(
        tx, found.ins, "login", method=method, now=now, lifetime=deps.code_minutes * 60
    )
    if method != "totp":
        add_notification(tx, "login_code", found.ins, {"code": issued.code, "channel": method})
    return Pending(issued.token, method)


async def pending_method(deps: SpaceDeps, token: str) -> str | None:
    """How the code of a pending login comes (None: no such login, or it is over)."""
    now = deps.now()
    found = await deps.store.read(lambda c: guard.pending_code(c, token, now))
    return None if found is None else found.method


async def login_code(
    deps: SpaceDeps, token: str, code: str, *, user_agent: str, ip: str, device: str | None
) -> LoggedIn:
    """Step 2: the code (five tries at most, once), then a new session and device. A
    wrong code is a failure of the account, as a wrong password is (whoever holds the
    password cannot guess codes without end); the account starts afresh only here."""
    now = deps.now()
    pending = await deps.store.read(lambda c: guard.pending_code(c, token, now))
    if pending is None:
        raise DEAD_CODE
    keys = await deps.store.read(lambda c: _keys(c, pending.ins, device, ip))
    done = await deps.store.write(
        lambda tx: _second_step(tx, deps, token, code, now, keys, Opening(user_agent, ip, device))
    )
    if done is None:  # raised here, once the try and the failure are counted
        log_refusal(DOOR, pending.ins, ip, "wrong one-time code")
        raise WRONG_CODE
    return done


@dataclass(frozen=True, slots=True)
class Opening:
    """Where a session opens: the browser's user agent, address and device cookie."""

    user_agent: str
    ip: str
    device: str | None


def _second_step(
    tx: Tx, deps: SpaceDeps, token: str, code: str, now: int, keys: tuple[str, str | None],
    opening: Opening,
) -> LoggedIn | None:  # fmt: skip
    """None: a wrong code (its try counted, and a failure of the account: counted
    before the check, so that parallel tries are all counted)."""
    pending = guard.pending_code(tx.conn, token, now)
    if pending is None:
        raise DEAD_CODE
    guard.failed(tx, keys[0], now)
    if pending.method == "totp":
        right = guard.count_attempt(tx, pending.id, now) and _totp_step(tx, pending.ins, code, now)
        right = right and guard.consume(tx, pending.id)
    else:
        right = guard.try_code(tx, pending, code, now)
    if not right:
        return None
    guard.succeeded(tx, *keys)
    return _open(tx, deps, pending.ins, now, opening)


def _open(tx: Tx, deps: SpaceDeps, ins: str, now: int, opening: Opening) -> LoggedIn:
    found = patient_login(tx.conn, ins)
    if found is None or found.address is None or not _may_log_in(found):
        raise CLOSED
    cookie, new_device = guard.remember_device(tx, ins, opening.device, now)
    if new_device:
        add_notification(tx, "new_device", ins)
    session = create_session(
        tx, account=found.address, ins=ins, representative=False, now=now,
        lifetime=deps.absolute_timeout, user_agent=opening.user_agent, address=opening.ip,
    )  # fmt: skip
    return LoggedIn(session, cookie)


# --- TOTP -------------------------------------------------------------------------------------

STEP = 30


def _totp_step(tx: Tx, ins: str, code: str, now: int) -> bool:
    """The code is that of the step before, now or after, and that step was not used."""
    found = guard.get_totp(tx.conn, ins)
    step = None if found is None else _step_of(found.secret, code, now)
    return step is not None and guard.use_totp_step(tx, ins, step)


def _step_of(secret: str, code: str, now: int) -> int | None:
    """The time step (before, now, after) whose code `code` is, if any."""
    totp, current = pyotp.TOTP(secret), now // STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()):
            return step
    return None


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str


async def start_totp(deps: SpaceDeps, ins: str, label: str, password: str = "") -> TotpEnrolment:
    """A new secret to enrol. While one is in service, the password is asked first
    (throttled as a login: a stolen session can neither drop nor replace the patient's
    authenticator), and the one in service stays until a code of the new one confirms it."""
    state = await totp_state(deps, ins)
    if state is not None and state.confirmed:
        await current_password(deps, ins, password)
    secret = pyotp.random_base32()
    await deps.store.write(lambda tx: guard.start_totp(tx, ins, secret))
    uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=deps.service_name)
    return TotpEnrolment(secret, uri)


async def totp_state(deps: SpaceDeps, ins: str) -> guard.TotpRecord | None:
    return await deps.store.read(lambda c: guard.get_totp(c, ins))


async def confirm_totp(deps: SpaceDeps, ins: str, code: str) -> bool:
    """The first code confirms the enrolment (and its step cannot be used again); a new
    secret waiting beside one in service replaces it then."""
    now = deps.now()
    return await deps.store.write(lambda tx: _confirm(tx, ins, code, now))


def _confirm(tx: Tx, ins: str, code: str, now: int) -> bool:
    found = guard.get_totp(tx.conn, ins)
    if found is None or found.pending is None:
        return _totp_step(tx, ins, code, now)
    step = _step_of(found.pending, code, now)
    return step is not None and guard.confirm_pending_totp(tx, ins, found.pending, step)


async def remove_totp(deps: SpaceDeps, ins: str, password: str) -> None:
    """Back to codes by e-mail or SMS: the password is asked first."""
    await current_password(deps, ins, password)
    await deps.store.write(lambda tx: guard.remove_totp(tx, ins))


# --- activation, change, reset ----------------------------------------------------------------


async def activate(deps: SpaceDeps, identifier: str, code: str, password: str, *,
                   ip: str = "") -> None:  # fmt: skip
    """The activation code the operator issued, and the patient's first password."""
    await _with_code(deps, identifier, "activation", code, password, ip)


async def request_reset(deps: SpaceDeps, identifier: str) -> None:
    """A reset code by the code channel; says nothing of whether the account exists.
    An identifier with a day of wrong codes gets no new one that day (any identifier,
    known or not: the refusal says nothing either)."""
    ins, now = ins_of(deps, identifier), deps.now()
    if wait := await deps.store.read(lambda c: guard.codes_held(c, ins or "-", now)):
        raise no_code_today(wait)
    await deps.store.write(lambda tx: _issue_reset(tx, deps, ins, now))


def _issue_reset(tx: Tx, deps: SpaceDeps, ins: str, now: int) -> None:
    found = patient_login(tx.conn, ins) if ins else None
    if found is None or not found.activated or not _may_log_in(found):
        return
    if not (found.email or found.phone):
        return
    method, lifetime = _code_channel(found), deps.code_minutes * 60
    last = guard.latest_code(tx.conn, ins, "reset")
    if last is not None and last.expires - lifetime > now - RESET_EVERY:
        return  # one code a minute at most: nobody floods the patient's phone
    if guard.code_issue(tx, ins, now):
        return  # and five an hour, login codes included
    issued = guard.issue_code(tx, ins, "reset", method=method, now=now, lifetime=lifetime)
    add_notification(tx, "login_code", ins, {"code": issued.code, "channel": method})


async def reset(deps: SpaceDeps, identifier: str, code: str, password: str, *,
                ip: str = "") -> None:  # fmt: skip
    """The reset code and a new password: every session of the account ends (a TOTP
    in service stays: the code channel alone does not remove the second factor)."""
    await _with_code(deps, identifier, "reset", code, password, ip)


async def _with_code(deps: SpaceDeps, identifier: str, purpose: str, code: str, password: str,
                     ip: str) -> None:  # fmt: skip
    """The code is checked first (the identifier's and the address's wrong codes are
    counted across codes), the new password hashed only after a right one (Argon2id is
    not spent on guesses), then the code used and the password set."""
    check_password_policy(password)
    ins, now = ins_of(deps, identifier) or "-", deps.now()
    right = await deps.store.write(lambda tx: _check_code(tx, ins, purpose, code, ip, now))
    if right is None:  # one answer, whether the identifier has an account or not
        raise BAD_CODE
    hashed = await _hash(deps, password)
    if not await deps.store.write(lambda tx: _set_with_code(tx, ins, right, hashed)):
        raise BAD_CODE


def _check_code(tx: Tx, ins: str, purpose: str, code: str, ip: str, now: int) -> str | None:
    """The id of the right live code, else None (the failure counted). An activation
    code (a letter, 30 days) does not die of wrong tries: the identifier's day of
    failures bounds the guesses, so a stranger who knows an INS only delays it."""
    if wait := guard.admit_code(tx, ins, ip, now):
        raise too_many(wait)
    found = patient_login(tx.conn, ins)
    pending = guard.latest_code(tx.conn, ins, purpose) if found and found.address else None
    if found is None or pending is None or pending.expires <= now:
        return None
    if not guard.check_code(tx, pending, code, now, counted=purpose != "activation"):
        return None
    if found.disabled:
        raise CLOSED
    guard.code_right(tx, ins, ip)
    return pending.id


def _set_with_code(tx: Tx, ins: str, code_id: str, hashed: str) -> bool:
    """Use the code (once: False if another request used it or a newer one replaced
    it), then set the password."""
    found = patient_login(tx.conn, ins)
    if found is None or not guard.consume(tx, code_id):
        return False
    _new_password(tx, found, hashed)
    return True


def _new_password(tx: Tx, found: PatientLogin, hashed: str) -> None:
    assert found.address is not None
    set_password(tx, found.address, hashed)
    end_sessions_of(tx, found.address)
    if found.activated:
        add_notification(tx, "password_changed", found.ins)


async def change_password(
    deps: SpaceDeps, ins: str, current: str, new: str, confirmation: str
) -> None:
    """The logged-in patient's new password (the current one asked first); every
    session of the account ends, this one too."""
    check_password_policy(new, confirmation)
    found = await current_password(deps, ins, current)
    hashed = await _hash(deps, new)
    await deps.store.write(lambda tx: _new_password(tx, found, hashed))


async def current_password(deps: SpaceDeps, ins: str, password: str) -> PatientLogin:
    """The logged-in patient's password, asked again before a change of their security;
    throttled as a login is (a stolen session cannot guess it)."""
    now, key = deps.now(), guard.account_key(ins)
    if wait := await deps.store.write(lambda tx: guard.admit(tx, key, None, now)):
        raise too_many(wait)
    found = await deps.store.read(lambda c: patient_login(c, ins))
    if found is None or not await _verify(deps, found.password_hash, password):
        raise SpaceError("Mot de passe actuel incorrect.", "Wrong current password.", status=400)
    await deps.store.write(lambda tx: guard.succeeded(tx, key, None))
    return found
