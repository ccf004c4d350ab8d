"""Second factors (MFA): TOTP, recovery codes and emailed one-time codes; enrolment, removal, and checking a code.

- **TOTP** (RFC 6238 with ``pyotp``: SHA-1, 6 digits, 30-second steps). The shared secret (160 bits)
  is encrypted at rest (Fernet under HKDF-SHA-256 of the secret key, info ``SECRET_KEY_INFO``). A code
  is accepted within ±1 step, and only for a step later than the last accepted one: the factor
  remembers that step in the same conditional write that accepts a code, so a code (or an earlier
  one) is never accepted twice, even by two requests at once.
- **Recovery codes**: 10 codes of 10 base32 characters (50 bits each) from ``secrets``, shown once and
  stored as SHA-256; a use removes the code in one conditional write. Regenerating replaces them all.
  They are a backup: on their own they do not turn MFA on for sign-in.
- **Email codes**: 6 digits from ``secrets``, kept as a SHA-256 on the challenge they belong to, valid
  10 minutes (and never longer than their challenge), single use (the challenge ends with the use).

The policy decides: ``mfa.mode`` OFF (no enrolment, sign-in never asks), OPTIONAL (customers choose),
REQUIRED (sign-in always asks; with nothing enrolled an emailed code); ``mfa.factors`` the types
customers may enrol and use. Every change needs a recent authentication and mails a notice, written
as a durable job before the change and sent only if the change holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import pyotp
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as InvalidFernetToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from resolvers import audit, ratelimit, sessions
from resolvers.context import Context
from resolvers.errors import (
    FeatureDisabled,
    FieldProblem,
    InvalidInput,
    InvalidToken,
    NotFound,
    Problems,
    RateLimited,
    unauthenticated,
)
from resolvers.mail_views import customer_view
from resolvers.security import keyed_hash, new_id, new_link_token, token_hash
from resolvers.self_service import Area, is_on, own_account
from stores import customers, mfa, mfa_challenges
from stores import passkeys as passkey_store
from stores.documents import (
    CustomerDocument,
    FactorType,
    MfaChallengeDocument,
    MfaChallengePurpose,
    MfaFactorDocument,
    MfaMode,
    PolicyDocument,
)

SECRET_KEY_INFO = b"identity-gateway mfa totp secret v1"
TOTP_DIGITS = 6
TOTP_WINDOW = 1  # steps either side of now
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10  # base32 characters: 50 bits
EMAIL_CODE_DIGITS = 6
EMAIL_CODE_MINUTES = 10
EMAIL_CODES_PER_CHALLENGE = 3
CHALLENGE_MINUTES = 5  # a sign-in challenge
REAUTHENTICATION_CHALLENGE_MINUTES = EMAIL_CODE_MINUTES  # it exists to carry one emailed code
MAX_ATTEMPTS = 5
MAX_CODE_INPUT = 64

# What turns MFA on; recovery codes are their backup. A passkey (resolvers/passkeys.py) counts as one.
PRIMARY = (FactorType.TOTP, FactorType.EMAIL_OTP, FactorType.PASSKEY)
ORDER = {FactorType.PASSKEY: 0, FactorType.TOTP: 1, FactorType.EMAIL_OTP: 2, FactorType.RECOVERY_CODE: 3}
LABELS = {FactorType.TOTP: "Authenticator app", FactorType.EMAIL_OTP: "Email codes",
          FactorType.RECOVERY_CODE: "Recovery codes", FactorType.PASSKEY: "Passkey"}

ALL_FACTORS = "Every second factor (reset by support)"
MFA_NOTICE = "mfa_notice"
CODE_MAIL = "mfa_code"


# -- secrets ---------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _cipher(secret_key: bytes) -> Fernet:
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=SECRET_KEY_INFO).derive(secret_key)
    return Fernet(base64.urlsafe_b64encode(key))


def _totp(ctx: Context, factor: MfaFactorDocument) -> pyotp.TOTP | None:
    """The factor's generator; None when its secret cannot be decrypted (``GATEWAY_SECRET_KEY`` changed):
    such a factor accepts no code, and the customer signs in with another factor and enrols again."""
    try:
        secret = _cipher(ctx.rules.secret_key).decrypt((factor.secret or "").encode()).decode()
    except InvalidFernetToken:
        return None
    return pyotp.TOTP(secret, digits=TOTP_DIGITS)


def _digits(code: str, length: int) -> str | None:
    """A code as typed ("123 456") in canonical form, or None when it cannot be one."""
    cleaned = "".join(code.split()) if isinstance(code, str) and len(code) <= MAX_CODE_INPUT else ""
    return cleaned if len(cleaned) == length and cleaned.isascii() and cleaned.isdigit() else None


def _recovery_keys(ctx: Context, customer_id: str, code: str) -> list[str]:
    """What a recovery code is stored as, from the code as typed (upper case, no spaces or dashes):
    its HMAC-SHA-256 under the gateway's secret key, bound to the customer
    (:func:`resolvers.security.keyed_hash`), then its plain SHA-256 as codes made before keyed storage
    were kept. Empty when it cannot be a recovery code.

    Keyed because a code has only 50 bits: a stolen database must not let them be guessed offline."""
    if not isinstance(code, str) or len(code) > MAX_CODE_INPUT:
        return []
    cleaned = "".join(code.split()).replace("-", "").upper()
    if len(cleaned) != RECOVERY_CODE_LENGTH or not cleaned.isascii() or not cleaned.isalnum():
        return []
    return [_code_hash(ctx, customer_id, "recovery", cleaned), token_hash(cleaned)]


def _code_hash(ctx: Context, customer_id: str, purpose: str, code: str) -> str:
    """A short code as stored: HMAC-SHA-256 under the secret key, bound to the customer and its purpose,
    so a stolen database does not give the codes away (6 digits fall to a plain hash at once)."""
    return keyed_hash(ctx.rules.secret_key, f"mfa-{purpose}:{customer_id}:{code}")


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(8)).decode()[:RECOVERY_CODE_LENGTH]
    return f"{raw[:5]}-{raw[5:]}"


def _step(ctx: Context) -> int:
    return int(ctx.now().timestamp()) // 30


def _matching_step(ctx: Context, totp: pyotp.TOTP | None, code: str) -> int | None:
    """The time step within ±TOTP_WINDOW whose code this is, latest first; None if none."""
    if totp is None:
        return None
    now = _step(ctx)
    for step in range(now + TOTP_WINDOW, now - TOTP_WINDOW - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# -- policy ----------------------------------------------------------------------------------------

def offered_factors(policy: PolicyDocument, factors: list[MfaFactorDocument], *,
                    has_password: bool = True) -> list[FactorType]:
    """What a sign-in must be completed with: empty when it needs no second factor.

    The customer's confirmed factors (recovery codes only while some are left), when at least one of
    them is a primary factor (TOTP, email codes, a passkey where it is one) or the mode is REQUIRED; with
    REQUIRED and no primary factor, an emailed code. ``has_password=False`` (an account without a
    password re-authenticating) adds the emailed code, its only way to prove itself.

    A second factor the customer enrolled (TOTP, email codes, recovery codes) protects their account
    under every application of the identity store: another application's policy (mode OFF, a shorter
    factor list) governs what can be enrolled there, never what a sign-in may skip. A passkey is a way
    in of its own first; it is also asked for as a second factor only where the policy makes it one
    (``PASSKEY`` among the factors, passkeys on, mode not OFF).
    """
    passkey_is_factor = policy.mfa.mode != MfaMode.OFF and policy.passkeys.enabled \
        and FactorType.PASSKEY in policy.mfa.factors
    held = {f.type for f in factors if f.confirmed and (f.type != FactorType.PASSKEY or passkey_is_factor)
            and (f.type != FactorType.RECOVERY_CODE or f.recovery_code_hashes)}
    if not held & set(PRIMARY):
        if policy.mfa.mode != MfaMode.REQUIRED and has_password:
            return []
        held.add(FactorType.EMAIL_OTP)  # REQUIRED with nothing enrolled: fall back to an emailed code
    return sorted(held, key=ORDER.__getitem__)


def _enrolment(ctx: Context, factor_type: FactorType) -> str:
    """The signed-in customer's id, when the policy lets them enrol this factor type now."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    if ctx.policy.mfa.mode == MfaMode.OFF or factor_type not in ctx.policy.mfa.factors:
        raise FeatureDisabled()
    sessions.require_recent_authentication(ctx)
    return customer_id


# -- reading ---------------------------------------------------------------------------------------

async def factors_of(ctx: Context, customer_id: str) -> list[MfaFactorDocument]:
    """A customer's confirmed factors, oldest first (batched per request: one query for a whole page)."""
    found = await ctx.loaders.mfa_factors.load(customer_id)
    return [f for f in found if f.confirmed]


def enabled(ctx: Context, factors: list[MfaFactorDocument]) -> bool:
    """True when sign-in asks this customer for a second factor (the policy's mode included)."""
    return bool(offered_factors(ctx.policy, factors))


async def can_change_password(ctx: Context, customer_id: str) -> bool:
    """``passwordChange`` is available: the area is on, the policy is not passwordless, the account has a password."""
    if not is_on(ctx, Area.SECURITY_SETTINGS) or ctx.policy.passwordless:
        return False
    customer = await ctx.loaders.customer.load(customer_id)
    return customer is not None and customer.password_hash is not None


# -- enrolment -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TotpEnrollment:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class RecoveryCodes:
    codes: list[str]
    factor: MfaFactorDocument


async def _customer(customer_id: str) -> CustomerDocument:
    customer = await customers.get(customer_id)
    if customer is None:
        raise NotFound()
    return customer


async def enroll_totp(ctx: Context) -> TotpEnrollment:
    """Start a TOTP enrolment: a new secret, shown once (as text and as an ``otpauth://`` URI whose issuer is
    the application's name). It counts once ``confirm_totp`` proves the customer's app holds it. An
    earlier unconfirmed enrolment is dropped. FeatureDisabled (mode OFF, type not allowed, area off);
    ReauthenticationRequired."""
    customer_id = _enrolment(ctx, FactorType.TOTP)
    customer = await _customer(customer_id)
    secret = pyotp.random_base32()  # 32 characters: 160 bits, RFC 4226's recommended length
    await mfa.delete_unconfirmed(customer_id, FactorType.TOTP)
    await mfa.insert(MfaFactorDocument(
        id=new_id(), customer_id=customer_id, type=FactorType.TOTP, confirmed=False,
        secret=_cipher(ctx.rules.secret_key).encrypt(secret.encode()).decode(), created_at=ctx.now()))
    await audit.record(ctx, "customer.mfa_totp_enrollment_started", subject_id=customer_id)
    return _enrollment(ctx, customer, secret)


def _enrollment(ctx: Context, customer: CustomerDocument, secret: str) -> TotpEnrollment:
    """The secret and its ``otpauth://`` URI, whose issuer is the application's name."""
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS).provisioning_uri(name=customer.email,
                                                                  issuer_name=ctx.application.name)
    return TotpEnrollment(secret=secret, otpauth_uri=uri)


async def pending_totp(ctx: Context) -> TotpEnrollment | None:
    """The signed-in customer's TOTP enrolment that no code has confirmed yet, shown again (the hosted
    portal's QR code after a wrong code); None without one, or when its secret cannot be decrypted.
    The same conditions as :func:`enroll_totp` (FeatureDisabled, ReauthenticationRequired): it shows
    the secret that call showed, to the session that may start a new one anyway."""
    customer_id = _enrolment(ctx, FactorType.TOTP)
    pending = [f for f in await mfa.list_for_customer(customer_id) if f.type == FactorType.TOTP and not f.confirmed]
    totp = _totp(ctx, pending[-1]) if pending else None
    if totp is None:
        return None
    return _enrollment(ctx, await _customer(customer_id), totp.secret)


async def confirm_totp(ctx: Context, code: str) -> MfaFactorDocument:
    """Activate the pending TOTP enrolment with a current code from the app. NotFound without one;
    InvalidInput on ``code`` for a wrong code; RateLimited after too many wrong ones (the account's
    per-client sign-in budget); ReauthenticationRequired when the session's authentication is not recent
    (enrolment and confirmation are one change to how the account signs in: a stolen session must not
    finish one started before it was stolen)."""
    customer_id = _enrolment(ctx, FactorType.TOTP)
    digits = _digits(code, TOTP_DIGITS)
    if digits is None:
        raise InvalidInput([FieldProblem("code", "INVALID", f"Enter the {TOTP_DIGITS}-digit code from your app.")])
    pending = [f for f in await mfa.list_for_customer(customer_id) if f.type == FactorType.TOTP and not f.confirmed]
    if not pending:
        raise NotFound("Start an authenticator enrolment first (mfaTotpEnroll).")
    factor = pending[-1]
    await ratelimit.hit(ctx, "customer-mfa-confirm", customer_id, ctx.rules.login_identifier_ip)
    step = _matching_step(ctx, _totp(ctx, factor), digits)
    if step is None:
        await audit.record(ctx, "customer.mfa_factor_confirm_failed", subject_id=customer_id, factor_id=factor.id,
                           factor_type=FactorType.TOTP.value)
        raise InvalidInput([FieldProblem("code", "INVALID", "This code is not right. Check the time on your device.")])
    notice = await _prepare_notice(ctx, customer_id, factor.id, FactorType.TOTP, "added")
    if not await mfa.confirm_totp(customer_id, factor.id, step, ctx.now_ms()):
        raise NotFound("Start an authenticator enrolment first (mfaTotpEnroll).")
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.mfa_factor_added", subject_id=customer_id, factor_id=factor.id,
                       factor_type=FactorType.TOTP.value)
    return await mfa.get(customer_id, factor.id)


async def enroll_email(ctx: Context) -> MfaFactorDocument:
    """Turn on emailed codes as a factor (to the account's verified address). Idempotent: one per customer."""
    customer_id = _enrolment(ctx, FactorType.EMAIL_OTP)
    factor_id = _fixed_id(customer_id, FactorType.EMAIL_OTP)
    existing = await mfa.get(customer_id, factor_id)
    if existing is not None:
        return existing
    factor = MfaFactorDocument(id=factor_id, customer_id=customer_id, type=FactorType.EMAIL_OTP, confirmed=True,
                               created_at=ctx.now())
    notice = await _prepare_notice(ctx, customer_id, factor.id, FactorType.EMAIL_OTP, "added")
    await mfa.replace(factor)
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.mfa_factor_added", subject_id=customer_id, factor_id=factor.id,
                       factor_type=FactorType.EMAIL_OTP.value)
    return factor


def _fixed_id(customer_id: str, factor_type: FactorType) -> str:
    """The id of a factor a customer has at most one of (recovery codes, email codes): one upsert, no duplicates."""
    return hashlib.sha256(f"{factor_type.value}:{customer_id}".encode()).hexdigest()[:32]


async def regenerate_recovery_codes(ctx: Context) -> RecoveryCodes:
    """New recovery codes, replacing every earlier one in one write; shown only in this answer."""
    customer_id = _enrolment(ctx, FactorType.RECOVERY_CODE)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    factor = MfaFactorDocument(
        id=_fixed_id(customer_id, FactorType.RECOVERY_CODE), customer_id=customer_id,
        type=FactorType.RECOVERY_CODE, confirmed=True, created_at=ctx.now(),
        recovery_code_hashes=[_recovery_keys(ctx, customer_id, code)[0] for code in codes])
    notice = await _prepare_notice(ctx, customer_id, factor.id, FactorType.RECOVERY_CODE, "added")
    await mfa.replace(factor)
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.mfa_recovery_codes_generated", subject_id=customer_id, factor_id=factor.id)
    return RecoveryCodes(codes=codes, factor=factor)


async def remove_factor(ctx: Context, factor_id: str) -> MfaFactorDocument:
    """Remove one of the signed-in customer's factors. NotFound for an unknown id and for another
    customer's alike; ReauthenticationRequired."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    sessions.require_recent_authentication(ctx)
    if not isinstance(factor_id, str) or not factor_id or len(factor_id) > 64:
        raise NotFound()
    factor = await mfa.get(customer_id, factor_id)
    if factor is None:
        raise NotFound()
    if factor.type == FactorType.PASSKEY:  # the passkey itself goes, under the last-login-method rule
        from resolvers import passkeys  # (passkeys build on this module)

        await passkeys.remove(ctx, factor_id)
        return factor
    notice = await _prepare_notice(ctx, customer_id, factor.id, factor.type, "removed")
    if await mfa.delete(customer_id, factor_id) is None:
        raise NotFound()
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.mfa_factor_removed", subject_id=customer_id, factor_id=factor.id,
                       factor_type=factor.type.value)
    return factor


async def reset_factors(ctx: Context, customer_id: str) -> int:
    """Helpdesk: remove every second factor of a customer (who lost their phone and their recovery codes),
    their passkeys included, and end their pending second-factor steps; how many factors went. They sign in with their password
    alone afterwards (or with an emailed code when the policy requires MFA), and are told by mail.
    NotFound for an id outside the request's identity store."""
    customer = await customers.get(customer_id) if isinstance(customer_id, str) and 0 < len(customer_id) <= 64 \
        else None
    if customer is None or customer.store_id != ctx.application.identity_store_id:
        raise NotFound()
    factors = await mfa.list_for_customer(customer.id)
    notice = await _prepare_notice(ctx, customer.id, factors[0].id, factors[0].type, "reset") if factors else None
    removed = await mfa.delete_for_customer(customer.id)
    await passkey_store.delete_for_customer(customer.id, ctx.now_ms())  # a lost phone takes its passkeys along
    await mfa_challenges.delete_for_customer(customer.id)
    if notice:
        ctx.jobs.start(notice)
    await audit.record(ctx, "customer.mfa_reset", subject_id=customer.id, factors_removed=removed)
    return removed


# -- notices ---------------------------------------------------------------------------------------

async def _prepare_notice(ctx: Context, customer_id: str, factor_id: str, factor_type: FactorType,
                          change: str) -> str:
    """The durable job for a factor change about to be made (written first: once made, it is not lost)."""
    return await ctx.jobs.enqueue(MFA_NOTICE, {"customer_id": customer_id, "factor_id": factor_id,
                                              "factor_type": factor_type.value, "change": change})


async def send_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: mail "a factor was added/removed" if the change holds (the factor exists, or no longer does)."""
    customer = await customers.get(payload["customer_id"])
    if customer is None:
        return
    factor = await mfa.get(customer.id, payload["factor_id"])
    added = payload["change"] == "added"
    if added != (factor is not None and factor.confirmed):
        return  # the change failed, or was undone since: nothing to tell
    kind = "mfa_factor_added" if added else "mfa_factor_removed"
    label = ALL_FACTORS if payload["change"] == "reset" else LABELS[FactorType(payload["factor_type"])]
    await ctx.mailer.send(kind, customer.email, {"customer": customer_view(customer), "factor": label},
                          ctx.application, customer.locale, subject_id=customer.id)


# -- challenges ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Challenge:
    token: str
    factors: list[FactorType]
    expires_at_ms: int
    code_sent: bool


async def start_sign_in(ctx: Context, customer: CustomerDocument, factors: list[FactorType],
                        device: str | None) -> Challenge:
    """A sign-in challenge for a customer whose password was right: a random 192-bit token (stored as
    SHA-256), 5 minutes, bound to the credential version and the password hash verified. When an
    emailed code is offered and no authenticator app or passkey is, the code is mailed at once."""
    now = ctx.now()
    token = "gwm_" + new_link_token()
    challenge = MfaChallengeDocument(
        id=new_id(), token_hash=token_hash(token), purpose=MfaChallengePurpose.SIGN_IN, customer_id=customer.id,
        application_id=ctx.application.id, credential_version=customer.credential_version,
        password_hash_digest=password_digest(customer.password_hash), device=device, factors=factors,
        created_at=now, expires_at=now + timedelta(minutes=CHALLENGE_MINUTES))
    await mfa_challenges.insert(challenge)
    sent = False
    if FactorType.EMAIL_OTP in factors and FactorType.TOTP not in factors and FactorType.PASSKEY not in factors:
        sent = await _mail_code(ctx, challenge, customer) is not None
    await audit.record(ctx, "customer.mfa_challenged", subject_id=customer.id, actor_kind="public",
                       factors=[f.value for f in factors])
    return Challenge(token=token, factors=factors, expires_at_ms=epoch(challenge.expires_at), code_sent=sent)


def epoch(moment) -> int:
    return int(moment.timestamp() * 1000)


def password_digest(password_hash: str | None) -> str | None:
    """What a challenge keeps of the password hash it was verified against: a SHA-256, never the hash."""
    return token_hash(password_hash) if password_hash else None


async def _mail_code(ctx: Context, challenge: MfaChallengeDocument, customer: CustomerDocument) -> int | None:
    """Mail a new code for this challenge (replacing an earlier one) and return when it expires (epoch ms);
    None when the challenge has sent its share. Also limited per account (``GATEWAY_MFA_EMAIL_CODE_*``)."""
    await ratelimit.hit(ctx, "customer-mfa-email-code", customer.id, ctx.rules.mfa_email_code)
    code = f"{secrets.randbelow(10 ** EMAIL_CODE_DIGITS):0{EMAIL_CODE_DIGITS}d}"
    expires_at_ms = min(ctx.now_ms() + EMAIL_CODE_MINUTES * 60_000, epoch(challenge.expires_at))
    if not await mfa_challenges.set_email_code(challenge.id, _code_hash(ctx, customer.id, "email", code), expires_at_ms, ctx.now(),
                                               EMAIL_CODES_PER_CHALLENGE):
        return None
    minutes = max(1, (expires_at_ms - ctx.now_ms()) // 60_000)
    await ctx.mailer.send(CODE_MAIL, customer.email, {"customer": customer_view(customer), "code": code,
                                                      "expires_in_minutes": minutes},
                          ctx.application, customer.locale, subject_id=customer.id)
    await audit.record(ctx, "customer.mfa_code_sent", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, purpose=str(challenge.purpose))
    return expires_at_ms


async def send_sign_in_code(ctx: Context, challenge_token: str) -> int:
    """Mail a code for a sign-in challenge that offers emailed codes; returns the code's expiry (epoch ms).
    InvalidToken for an unknown, expired or ended challenge, or one that offers no emailed code;
    RateLimited after 3 codes for one challenge or too many for the account."""
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    key = challenge_key(challenge_token)
    challenge = await mfa_challenges.find_usable(key, ctx.now(), MAX_ATTEMPTS) if key else None
    if challenge is None or challenge.purpose != MfaChallengePurpose.SIGN_IN \
            or FactorType.EMAIL_OTP not in challenge.factors:
        raise InvalidToken("This sign-in has expired or ended. Please sign in again.")
    customer = await customers.get(challenge.customer_id)
    if customer is None:
        raise InvalidToken("This sign-in has expired or ended. Please sign in again.")
    expires_at_ms = await _mail_code(ctx, challenge, customer)
    if expires_at_ms is None:
        raise RateLimited(int((epoch(challenge.expires_at) - ctx.now_ms()) / 1000))
    return expires_at_ms


def challenge_key(token: object) -> str | None:
    if not isinstance(token, str) or not token.strip() or len(token) > 200:
        return None
    return token_hash(token.strip())


def reauthentication_challenge_id(session_id: str) -> str:
    return f"reauthentication:{session_id}"


async def send_reauthentication_code(ctx: Context) -> int:
    """Mail a code that re-authenticates the current session (``sessionReauthenticate`` with
    ``factor: EMAIL_OTP``), when emailed codes are among the customer's factors (or the account has no
    password). Returns the code's expiry (epoch ms). FeatureDisabled when they are not."""
    customer_id = _signed_in_customer(ctx)
    customer = await _customer(customer_id)
    factors = await mfa.list_for_customer(customer_id)
    if FactorType.EMAIL_OTP not in offered_for_reauthentication(ctx.policy, factors, customer):
        raise FeatureDisabled("Emailed codes are not one of your ways to confirm it is you.")
    now = ctx.now()
    challenge = MfaChallengeDocument(
        id=reauthentication_challenge_id(ctx.principal.session_id), token_hash=token_hash(new_link_token()),
        purpose=MfaChallengePurpose.REAUTHENTICATION, customer_id=customer_id,
        session_id=ctx.principal.session_id, application_id=ctx.application.id,
        credential_version=customer.credential_version, factors=[FactorType.EMAIL_OTP], created_at=now,
        expires_at=now + timedelta(minutes=REAUTHENTICATION_CHALLENGE_MINUTES))
    await mfa_challenges.replace(challenge)
    return await _mail_code(ctx, challenge, customer)  # a fresh challenge: its first code always goes


async def reauthentication_methods(ctx: Context) -> tuple[bool, list[FactorType]]:
    """How the signed-in customer can confirm it is them (``sessions.reauthenticate``): whether with a
    password, and with which factors' codes (:func:`offered_for_reauthentication`; a passkey does not
    re-authenticate, so it is left out). UNAUTHENTICATED without a customer."""
    customer = await _customer(_signed_in_customer(ctx))
    offered = offered_for_reauthentication(ctx.policy, await mfa.list_for_customer(customer.id), customer)
    return customer.password_hash is not None, [f for f in offered if f != FactorType.PASSKEY]


def _signed_in_customer(ctx: Context) -> str:
    if ctx.principal is None or ctx.principal.kind != "customer":
        raise unauthenticated()
    return ctx.principal.subject_id


def offered_for_reauthentication(policy: PolicyDocument, factors: list[MfaFactorDocument],
                                 customer: CustomerDocument) -> list[FactorType]:
    """The factors a session may re-authenticate with: those sign-in would ask for, plus an emailed code
    for an account without a password (even when it holds a passkey, which does not re-authenticate)."""
    offered = offered_factors(policy, factors, has_password=customer.password_hash is not None)
    if customer.password_hash is None and FactorType.EMAIL_OTP not in offered:
        offered = sorted([*offered, FactorType.EMAIL_OTP], key=ORDER.__getitem__)
    return offered


async def check_code(ctx: Context, customer_id: str, factor: FactorType, code: str,
                     challenge: MfaChallengeDocument | None) -> bool:
    """True when ``code`` is a right, unused code of ``factor`` for this customer; a right code is used up
    here (TOTP: its step recorded; recovery code: removed; email code: it lives on ``challenge``, which
    the caller ends)."""
    now_ms = ctx.now_ms()
    if factor == FactorType.TOTP:
        digits = _digits(code, TOTP_DIGITS)
        if digits is None:
            return False
        for candidate in await mfa.list_for_customer(customer_id):
            if candidate.type != FactorType.TOTP or not candidate.confirmed:
                continue
            step = _matching_step(ctx, _totp(ctx, candidate), digits)
            if step is not None and await mfa.accept_totp_step(candidate.id, step, now_ms):
                return True
        return False
    if factor == FactorType.RECOVERY_CODE:
        for key in _recovery_keys(ctx, customer_id, code):
            if await mfa.use_recovery_code(customer_id, key, now_ms):
                return True
        return False
    digits = _digits(code, EMAIL_CODE_DIGITS)
    if digits is None or challenge is None or not challenge.email_code_hash \
            or (challenge.email_code_expires_at_ms or 0) <= now_ms:
        return False
    if not hmac.compare_digest(challenge.email_code_hash, _code_hash(ctx, customer_id, "email", digits)):
        return False
    await mfa.mark_used(_fixed_id(customer_id, FactorType.EMAIL_OTP), now_ms)
    return True


def code_problems(factor: FactorType | None, code: str | None) -> Problems:
    problems = Problems()
    if factor is None:
        problems.add("factor", "REQUIRED", "Choose the factor the code comes from.")
    if not code or not code.strip():
        problems.add("code", "REQUIRED", "Enter the code.")
    elif len(code) > MAX_CODE_INPUT:
        problems.add("code", "TOO_LONG", f"Use at most {MAX_CODE_INPUT} characters.")
    return problems

