"""Passkeys (WebAuthn, with py_webauthn): adding one, signing in with one alone, the second-factor step
of a sign-in, renaming and removing one.

- **Relying party.** Each application's passkeys work for one relying party id and its origins (the
  ``GATEWAY_WEBAUTHN_*`` settings, checked at start-up; :meth:`Rules.relying_party`). Without one, or
  with the policy's ``passkeys.enabled`` off, every passkey operation answers FeatureDisabled.
- **Challenges** are 32 random bytes, kept server-side as their SHA-256 (the ``_id``), bound to the
  ceremony, the application, the customer (registration, second factor) and 5 minutes, and deleted
  by the one use that consumes them (``stores.webauthn_challenges.consume``): a replayed response
  finds nothing, on any instance. The browser returns the challenge inside clientDataJSON, so the
  finishing call needs nothing but the credential.
- **Registration** needs a recent authentication (like every MFA change) and asks for a discoverable
  credential with user verification: every passkey can then sign in alone. It mails a notice (a
  durable job written before the change, sent only if the change holds).
- **Signing in with a passkey alone** (no identifier) requires user verification: the passkey is then
  both something held and something known or been, so it is multi-factor and no second factor is
  asked (``complete_sign_in(..., second_factor=True)``). Attempts count against the account's sign-in
  budgets like a password, before the signature is checked.
- **As a second factor** after a password or an emailed link (``FactorType.PASSKEY``, where the policy
  lists it), presence is enough (``userVerification: discouraged``): the first factor was the
  knowledge. The answer is counted against the sign-in's challenge exactly like a code
  (``resolvers.sessions.complete_mfa``).
- **Cloned authenticators.** A signature counter that does not grow (when either side is non-zero) on a
  *verified* signature means two authenticators hold the key: the sign-in is refused and
  ``customer.passkey_clone_suspected`` is recorded. The check runs after the signature (py_webauthn's
  own check runs before it, so it is switched off), and the new count is written only if it is above
  the stored one, in one conditional write.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from resolvers import audit, mfa, ratelimit, sessions
from resolvers.account import ways_in
from resolvers.context import Context, RelyingParty
from resolvers.errors import (
    FeatureDisabled,
    InvalidCredentials,
    InvalidToken,
    LastLoginMethod,
    NotFound,
    Problems,
    unauthenticated,
)
from resolvers.mail_views import customer_view
from resolvers.security import is_text, new_id
from resolvers.self_service import Area, own_account
from stores import customers, mfa_challenges, webauthn_challenges
from stores import passkeys as passkey_store
from stores.documents import (
    CustomerDocument,
    FactorType,
    MfaChallengeDocument,
    MfaChallengePurpose,
    PasskeyDocument,
    WebAuthnCeremony,
    WebAuthnChallengeDocument,
)

CHALLENGE_MINUTES = 5
CHALLENGE_BYTES = 32
MAX_NAME = 64
MAX_CREDENTIAL_CHARACTERS = 32_768  # a credential's JSON; attestation certificate chains stay far below
MAX_ID = 64
REMOVE_ATTEMPTS = 5
PASSKEY_NOTICE = "passkey_notice"
DEFAULT_NAME = "Passkey"
NOT_SIGNED_IN = "This passkey could not sign you in."
CEREMONY_ENDED = "This passkey request has expired or was used already: start again."
UNREADABLE = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, AttributeError)


@dataclass(frozen=True)
class Options:
    """What the browser needs (``PublicKeyCredential.parseCreationOptionsFromJSON`` /
    ``parseRequestOptionsFromJSON``, or ``@simplewebauthn/browser``), as a JSON object, and until when."""

    public_key: dict[str, Any]
    expires_at_ms: int


def relying_party(ctx: Context) -> RelyingParty:
    """The application's relying party; FeatureDisabled when passkeys are off for it (policy or settings)."""
    party = ctx.rules.relying_party(ctx.application.client_id)
    if not ctx.policy.passkeys.enabled or party is None:
        raise FeatureDisabled("Passkeys are not available for this application.")
    return party


def _key(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


async def _new_challenge(ctx: Context, ceremony: WebAuthnCeremony, *, customer_id: str | None = None,
                         credential_version: int = 0, mfa_challenge_id: str | None = None) -> tuple[bytes, int]:
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    now = ctx.now()
    expires_at = now + timedelta(minutes=CHALLENGE_MINUTES)
    await webauthn_challenges.insert(WebAuthnChallengeDocument(
        id=_key(challenge), ceremony=ceremony, application_id=ctx.application.id, customer_id=customer_id,
        credential_version=credential_version, mfa_challenge_id=mfa_challenge_id, created_at=now,
        expires_at=expires_at))
    return challenge, int(expires_at.timestamp() * 1000)


def _options(options: Any, expires_at_ms: int) -> Options:
    return Options(public_key=json.loads(options_to_json(options)), expires_at_ms=expires_at_ms)


def _unreadable() -> Problems:
    problems = Problems()
    problems.add("credential", "INVALID", "This is not a passkey response: send the browser's credential as JSON.")
    return problems


def _parse(credential: Any, parse: Callable[[Any], Any]) -> tuple[Any, bytes]:
    """The credential as py_webauthn reads it, and the challenge its clientDataJSON carries. InvalidInput
    (``credential``) for anything that is not a credential's JSON object."""
    try:
        if not isinstance(credential, dict) or len(json.dumps(credential)) > MAX_CREDENTIAL_CHARACTERS:
            raise ValueError("not a credential object")
        parsed = parse(credential)
        client_data = parse_client_data_json(bytes(parsed.response.client_data_json))
    except UNREADABLE:
        _unreadable().raise_if_any()
    return parsed, client_data.challenge


def _descriptors(keys: list[PasskeyDocument]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id),
                                          transports=[AuthenticatorTransport(t) for t in key.transports if t in known])
            for key in keys]


def _name(problems: Problems, name: str | None) -> str | None:
    if name is None:
        return None
    cleaned = " ".join(name.split()) if isinstance(name, str) else ""
    if not cleaned:
        problems.add("name", "REQUIRED", "Give the passkey a name.")
    elif len(cleaned) > MAX_NAME or not is_text(cleaned):
        problems.add("name", "INVALID", f"Use at most {MAX_NAME} characters of text.")
    return cleaned


def _default_name(ctx: Context) -> str:
    """Where it was added, as the customer will recognise it: "Chrome 131 on Mac OS X 10.15"."""
    view = sessions.describe_user_agent(ctx.request.user_agent)
    if view.browser and view.os:
        return f"{view.browser} on {view.os}"[:MAX_NAME]
    return view.browser or view.device or DEFAULT_NAME


# -- registration ------------------------------------------------------------------------------------

async def start_registration(ctx: Context) -> Options:
    """Options for ``navigator.credentials.create()``: a discoverable credential with user verification,
    for the signed-in customer (their passkeys already registered here excluded). FeatureDisabled;
    ReauthenticationRequired; RateLimited (``login_device`` numbers, per customer)."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    party = relying_party(ctx)
    sessions.require_recent_authentication(ctx)
    await ratelimit.hit(ctx, "customer-passkey-register", customer_id, ctx.rules.login_device)
    customer = await customers.get(customer_id)
    if customer is None:
        raise unauthenticated()
    existing = [key for key in await passkey_store.list_for_customer(customer_id) if key.rp_id == party.rp_id]
    challenge, expires_at_ms = await _new_challenge(ctx, WebAuthnCeremony.REGISTRATION, customer_id=customer_id,
                                                    credential_version=customer.credential_version)
    display = " ".join(n for n in (customer.given_name, customer.family_name) if n) or customer.email
    options = generate_registration_options(
        rp_id=party.rp_id, rp_name=ctx.application.name, user_name=customer.username,
        user_id=customer.id.encode(), user_display_name=display, challenge=challenge,
        timeout=CHALLENGE_MINUTES * 60_000, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.REQUIRED,
                                                               user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=_descriptors(existing))
    return _options(options, expires_at_ms)


async def finish_registration(ctx: Context, credential: Any, name: str | None = None) -> PasskeyDocument:
    """Verify the browser's answer to :func:`start_registration` and keep the passkey (named ``name``, or
    after the browser and system it was added from). InvalidInput on ``credential``: unreadable, not from
    a challenge of ours for this customer (expired, used), refused by verification (wrong origin or relying
    party, no user verification), or registered already; on ``name``. FeatureDisabled;
    ReauthenticationRequired."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    party = relying_party(ctx)
    sessions.require_recent_authentication(ctx)
    problems = Problems()
    name = _name(problems, name)
    problems.raise_if_any()
    parsed, challenge = _parse(credential, parse_registration_credential_json)
    found = await webauthn_challenges.consume(_key(challenge), WebAuthnCeremony.REGISTRATION, ctx.application.id,
                                              ctx.now())
    customer = await customers.get(customer_id)
    if found is None or found.customer_id != customer_id or customer is None \
            or customer.credential_version != found.credential_version:
        _refused("EXPIRED", CEREMONY_ENDED)
    try:
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=party.rp_id,
            expected_origin=list(party.origins), require_user_verification=True)
    except UNREADABLE as exc:
        await audit.record(ctx, "customer.passkey_registration_failed", subject_id=customer_id,
                           reason=type(exc).__name__)
        _refused("INVALID", "This passkey could not be verified for this site. Try again, or use another one.")
    transports = [t.value for t in (parsed.response.transports or [])]
    passkey = PasskeyDocument(
        id=new_id(), customer_id=customer_id, credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
        transports=transports, aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up, rp_id=party.rp_id, name=name or _default_name(ctx),
        created_at=ctx.now(), updated_at_ms=ctx.now_ms())
    notice = await _prepare_notice(ctx, passkey, "added")
    try:
        await passkey_store.add(passkey)
    except passkey_store.DuplicateCredential:
        _refused("TAKEN", "This passkey is registered already.")
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.passkey_added", subject_id=customer_id, passkey_id=passkey.id,
                       aaguid=passkey.aaguid, backup_eligible=passkey.backup_eligible)
    return passkey


def _refused(code: str, message: str) -> None:
    problems = Problems()
    problems.add("credential", code, message)
    problems.raise_if_any()


# -- signing in ----------------------------------------------------------------------------------------

async def start_sign_in(ctx: Context, challenge_token: str | None = None) -> Options:
    """Options for ``navigator.credentials.get()``.

    Without ``challenge_token``: a sign-in with a passkey alone, any discoverable credential, user
    verification required. With the ``challengeToken`` of a sign-in that answered MfaRequired offering
    PASSKEY: that customer's passkeys, presence enough. Counted against the client IP's sign-in budget.
    FeatureDisabled; InvalidToken for a challenge that ended (or offers no passkey); RateLimited."""
    party = relying_party(ctx)
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    if challenge_token is None:
        challenge, expires_at_ms = await _new_challenge(ctx, WebAuthnCeremony.SIGN_IN)
        return _options(generate_authentication_options(
            rp_id=party.rp_id, challenge=challenge, timeout=CHALLENGE_MINUTES * 60_000,
            user_verification=UserVerificationRequirement.REQUIRED), expires_at_ms)
    key = mfa.challenge_key(challenge_token)
    pending = await mfa_challenges.find_usable(key, ctx.now(), mfa.MAX_ATTEMPTS) if key else None
    if pending is None or pending.purpose != MfaChallengePurpose.SIGN_IN \
            or pending.application_id != ctx.application.id or FactorType.PASSKEY not in pending.factors:
        raise InvalidToken(sessions.CHALLENGE_ENDED)
    keys = [k for k in await passkey_store.list_for_customer(pending.customer_id) if k.rp_id == party.rp_id]
    if not keys:
        raise InvalidToken("None of your passkeys works with this application: use another factor.")
    challenge, expires_at_ms = await _new_challenge(ctx, WebAuthnCeremony.SECOND_FACTOR,
                                                    customer_id=pending.customer_id, mfa_challenge_id=pending.id)
    return _options(generate_authentication_options(
        rp_id=party.rp_id, challenge=challenge, timeout=CHALLENGE_MINUTES * 60_000, allow_credentials=_descriptors(keys),
        user_verification=UserVerificationRequirement.DISCOURAGED), min(expires_at_ms, mfa.epoch(pending.expires_at)))


async def finish_sign_in(ctx: Context, credential: Any, *, device_token: str | None = None,
                         challenge_token: str | None = None) -> sessions.SignedIn | sessions.MfaRequired:
    """Verify the browser's answer to :func:`start_sign_in`.

    Alone: the session (``SignedIn``; a passkey with user verification is multi-factor). With
    ``challenge_token``: completes that sign-in's second-factor step (``SignedIn``), counted against it
    like a code. InvalidCredentials for an unknown passkey, a challenge not ours (expired, replayed), a
    failed verification (wrong origin or relying party, no user verification, bad signature) or a cloned
    authenticator, alike; InvalidInput for something that is not a credential; AccountNotActivated;
    RateLimited; FeatureDisabled; InvalidToken (second factor: the sign-in's challenge ended).
    """
    party = relying_party(ctx)
    parsed, challenge = _parse(credential, parse_authentication_credential_json)
    if challenge_token is not None:
        return await sessions.complete_mfa(
            ctx, challenge_token, FactorType.PASSKEY,
            lambda customer, pending: _second_factor(ctx, party, parsed, challenge, customer, pending))
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    found = await webauthn_challenges.consume(_key(challenge), WebAuthnCeremony.SIGN_IN, ctx.application.id,
                                              ctx.now())
    passkey = await passkey_store.get_by_credential_id(parsed.id)
    customer = await customers.get(passkey.customer_id) if passkey else None
    if customer is not None and customer.store_id != ctx.application.identity_store_id:
        customer = None
    budgets: list = []
    if customer is not None:
        budgets = sessions.sign_in_budgets(ctx, customer, device_token)
        await sessions.count_attempt(ctx, budgets)
    handle = parsed.response.user_handle
    if found is None or customer is None or handle is None or bytes(handle) != customer.id.encode() \
            or not await _verify(ctx, party, parsed, challenge, passkey, customer, user_verification=True):
        await audit.record(ctx, "customer.login_failed", subject_id=customer.id if customer else None,
                           actor_kind="public", method="passkey")
        raise InvalidCredentials(NOT_SIGNED_IN, field="credential")
    return await sessions.complete_sign_in(ctx, customer, method="passkey", budgets=budgets, second_factor=True)


async def _second_factor(ctx: Context, party: RelyingParty, parsed: AuthenticationCredential, challenge: bytes,
                         customer: CustomerDocument, pending: MfaChallengeDocument) -> bool:
    """The check of a second-factor step: a challenge issued for this very sign-in, a passkey of its customer."""
    found = await webauthn_challenges.consume(_key(challenge), WebAuthnCeremony.SECOND_FACTOR, ctx.application.id,
                                              ctx.now())
    if found is None or found.mfa_challenge_id != pending.id or found.customer_id != customer.id:
        return False
    passkey = await passkey_store.get_by_credential_id(parsed.id)
    if passkey is None or passkey.customer_id != customer.id:
        return False
    return await _verify(ctx, party, parsed, challenge, passkey, customer, user_verification=False)


async def _verify(ctx: Context, party: RelyingParty, parsed: AuthenticationCredential, challenge: bytes,
                  passkey: PasskeyDocument, customer: CustomerDocument, *, user_verification: bool) -> bool:
    """Check the assertion's origin, relying party, flags and signature (py_webauthn), then its counter."""
    if passkey.rp_id != party.rp_id:
        return False
    try:
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=party.rp_id,
            expected_origin=list(party.origins), credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=0,  # the counter is checked below, once the signature is known good
            require_user_verification=user_verification)
    except UNREADABLE:
        return False
    if not await passkey_store.record_use(passkey.id, passkey.sign_count, verified.new_sign_count,
                                          verified.credential_backed_up, ctx.now_ms()):
        await audit.record(ctx, "customer.passkey_clone_suspected", subject_id=customer.id, actor_kind="public",
                           passkey_id=passkey.id, stored_count=passkey.sign_count,
                           presented_count=verified.new_sign_count)
        return False
    return True


# -- managing ------------------------------------------------------------------------------------------

def _valid_id(passkey_id: Any) -> bool:
    return isinstance(passkey_id, str) and 0 < len(passkey_id) <= MAX_ID


async def list_for(customer_id: str) -> list[PasskeyDocument]:
    return await passkey_store.list_for_customer(customer_id)


async def rename(ctx: Context, passkey_id: str, name: str) -> PasskeyDocument:
    """Rename one of the signed-in customer's passkeys. NotFound (theirs or not alike); InvalidInput on ``name``."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    problems = Problems()
    name = _name(problems, name if name is not None else "")
    problems.raise_if_any()
    renamed = await passkey_store.rename(customer_id, passkey_id, name, ctx.now_ms()) if _valid_id(passkey_id) \
        else None
    if renamed is None:
        raise NotFound("You have no passkey with this id.", field="id")
    await audit.record(ctx, "customer.passkey_renamed", subject_id=customer_id, passkey_id=renamed.id)
    return renamed


async def remove(ctx: Context, passkey_id: str) -> PasskeyDocument:
    """Remove one of the signed-in customer's passkeys, under recent re-authentication; a notice is mailed.

    NotFound (theirs or not alike); LastLoginMethod when it is their last way to sign in (decided by one
    conditional write on their ways in, so two concurrent removals cannot leave none); FeatureDisabled
    (security settings off); ReauthenticationRequired."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    sessions.require_recent_authentication(ctx)
    passkey = await passkey_store.get(customer_id, passkey_id) if _valid_id(passkey_id) else None
    if passkey is None:
        raise NotFound("You have no passkey with this id.", field="id")
    notice = await _prepare_notice(ctx, passkey, "removed")
    counted = False
    for _ in range(REMOVE_ATTEMPTS):
        customer = await customers.get(customer_id)
        if customer is None:
            raise unauthenticated()
        if customer.passkey_count <= 0:
            break  # never counted (an addition cut short): not one of the ways in the rule guards
        if ways_in(customer) <= 1:
            raise LastLoginMethod()
        if await passkey_store.uncount(customer_id, expected_count=customer.passkey_count,
                                       expected_identities=len(customer.linked_identities),
                                       expected_password_hash=customer.password_hash, now_ms=ctx.now_ms()):
            counted = True
            break
        # the ways in changed meanwhile (another removal, a new passkey or identity): count them again
    else:
        raise RuntimeError("passkey removal kept racing with other changes")
    removed = await passkey_store.delete(customer_id, passkey.id)
    if removed is None:  # a concurrent removal of the same passkey deleted it first
        if counted:
            await passkey_store.recount(customer_id, ctx.now_ms())
        raise NotFound("You have no passkey with this id.", field="id")
    ctx.jobs.start(notice)
    await audit.record(ctx, "customer.passkey_removed", subject_id=customer_id, passkey_id=removed.id)
    return removed


# -- notices -------------------------------------------------------------------------------------------

async def _prepare_notice(ctx: Context, passkey: PasskeyDocument, change: str) -> str:
    """The durable job for a change about to be made (written first: once made, its notice is not lost)."""
    return await ctx.jobs.enqueue(PASSKEY_NOTICE, {"customer_id": passkey.customer_id, "passkey_id": passkey.id,
                                                   "name": passkey.name, "change": change})


async def send_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: mail "a passkey was added/removed" if the change holds (the passkey exists, or no longer does)."""
    customer = await customers.get(payload["customer_id"])
    if customer is None:
        return
    added = payload["change"] == "added"
    if added != (await passkey_store.get(customer.id, payload["passkey_id"]) is not None):
        return  # the change failed, or was undone since: nothing to tell
    await ctx.mailer.send("passkey_added" if added else "passkey_removed", customer.email,
                          {"customer": customer_view(customer), "passkey_name": payload["name"]},
                          ctx.application, customer.locale, subject_id=customer.id)

