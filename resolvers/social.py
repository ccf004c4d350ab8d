"""Social sign-in and linking with OpenID Connect (and GitHub's OAuth 2): the flows and their rules.

**A flow** (``social_flows``, one document, any instance can serve each step):

1. ``socialSignInStart`` / ``linkedIdentityAdd`` (:func:`start_sign_in`, :func:`start_link`) check the
   provider and that ``redirectUrl`` falls within the application's allow-list, then write the flow:
   random ``state``, ``nonce`` and PKCE ``code_verifier`` (RFC 7636, S256), encrypted together (they must
   be read back to build the request), the state's SHA-256 to find the flow by, and the SHA-256 of a start
   token. The answer's
   ``authorizationUrl`` is the gateway's ``/oauth/start/<provider>?token=…``.
2. The browser opens it (:func:`begin`): the first browser to do so owns the flow (the SHA-256 of its
   binding cookie is written, once) and is sent on to the provider's authorization endpoint.
3. The provider sends it back to ``/oauth/callback/<provider>`` (:func:`finish`). One conditional write
   uses the flow up, only with the ``state`` it was given *and* the binding cookie of the browser that
   started it (RFC 6749 10.12: another browser's callback, a login CSRF, is refused), once (a replayed
   callback is refused) and in time. Then the code is exchanged (with the verifier) and the ID token
   checked by the gateway's client (signature against the provider's JWKS, issuer, audience, expiry with
   a small leeway, nonce, ``at_hash``): :class:`IdentityProviderClient`.
4. The outcome (:func:`_decide`) goes back to the application's ``redirectUrl`` as ``?grant=…`` (a sign-in:
   one use, 2 minutes, exchanged by ``socialSignInComplete``, :func:`complete`, which ends in
   ``sessions.complete_sign_in``), ``?linked=<provider>`` or ``?error=<code>`` (:class:`Refusal`). A
   session token is never put in a URL.

**From the hosted pages** (``gateway/pages/sign_in_methods.py``) a sign-in starts with ``hosted_next`` (a
path on the gateway) instead of a ``redirectUrl``: the flow then returns to the gateway's own page
:data:`HOSTED_RETURN_PATH` on ``GATEWAY_PUBLIC_URL`` (built here, never taken from a client, so it needs
no entry in the application's ``redirectUrls`` and widens nothing else), whose route exchanges the grant
server-side with the browser's binding cookie (:func:`complete` with ``binding``): a grant carried to
another browser (login CSRF) is refused there, and a hosted flow's grant is refused without it (the API
cannot exchange one).

**Who signs in** (the account-takeover defence):

- a provider identity (issuer and subject) already linked to a customer of the store: that customer
  (an account that cannot sign in, such as a disabled one, gets ``sign_in_failed``);
- a linking flow: the identity is linked to the customer who started it (``linked``), unless another
  customer holds it (``identity_in_use``);
- otherwise, when the provider's *verified* email belongs to an existing account: ``account_exists``,
  never a silent link: the customer signs in their usual way and links from account settings (Kratos
  calls it "confirm with existing credential");
- otherwise, when the policy allows social registration (``registration.socialEnabled``): a new active
  customer with that identity and no password, its email verified, only if the provider says the email
  is verified (``email_not_verified`` otherwise: an unverified address could be someone else's, who
  would later find an account they cannot trust: the "pre-hijacking" attack); ``not_registered`` when
  the policy does not allow it.

Every refusal is an audit event ``customer.social_login_failed`` with a reason code, never a token.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as InvalidFernetToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from resolvers import account, audit, identity_providers, ratelimit
from resolvers.attributes import validate_name
from resolvers.context import Context
from resolvers.errors import InvalidToken, NotFound, Problems
from resolvers.identifiers import name_norm, normalize_identifier, validate_email
from resolvers.security import is_text, new_id, token_hash
from resolvers.self_service import Area, own_account
from resolvers.sessions import MfaRequired, SignedIn, complete_sign_in, require_recent_authentication
from resolvers.urls import MAX_URL, within
from stores import customers
from stores import identity_providers as store
from stores.documents import (
    CustomerDocument,
    CustomerStatus,
    IdentityProviderDocument,
    LinkedIdentity,
    SocialFlowDocument,
    SocialFlowPurpose,
)

START_PATH = "/oauth/start"
# The hosted pages' return route (gateway/pages/sign_in_methods.py): under /oauth, so that the browser's
# binding cookie (Path=/oauth) comes with it.
HOSTED_RETURN_PATH = "/oauth/return"
MAX_HOSTED_NEXT = 512
FLOW_LIFETIME = timedelta(minutes=10)  # from the start to the provider's callback
GRANT_LIFETIME_MS = 2 * 60_000  # from the callback to socialSignInComplete
SECRETS_KEY_INFO = b"identity-gateway social flow secrets v1"
MAX_PARAMETER = 512  # state, start token, grant, binding cookie: ours are 43 characters
MAX_CODE = 2048
MAX_PROVIDER_NAME = 32
ERROR_CODE = re.compile(r"[a-z_]{1,64}")


class Refusal(StrEnum):
    """Why a social sign-in or linking did not happen: the ``error`` sent back to the application (or shown
    on the gateway's page when there is nowhere safe to send it) and the audit event's ``reason``."""

    INVALID_START = "invalid_start"  # the start URL is unknown, used or expired
    UNKNOWN_STATE = "unknown_state"  # a callback with a state we never issued
    STATE_MISMATCH = "state_mismatch"  # a callback in a browser other than the one that started it, or for another provider
    REPLAYED = "replayed"  # the callback was used before
    EXPIRED = "expired"  # the flow took longer than 10 minutes
    ACCESS_DENIED = "access_denied"  # the person declined at the provider, or the provider answered an error
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # removed or disabled, or its discovery, JWKS or endpoints failed
    CODE_REJECTED = "code_rejected"  # the provider's token endpoint refused the code (used, expired, wrong verifier)
    INVALID_ID_TOKEN = "invalid_id_token"  # signature, issuer, audience, expiry, nonce or at_hash
    ACCOUNT_EXISTS = "account_exists"  # the verified email has an account: sign in, then link from the settings
    EMAIL_NOT_VERIFIED = "email_not_verified"  # no registration with an email the provider did not verify
    NOT_REGISTERED = "not_registered"  # no account, and the policy allows no social registration
    IDENTITY_IN_USE = "identity_in_use"  # linking: another customer holds this provider identity
    SIGN_IN_FAILED = "sign_in_failed"  # the account cannot sign in (disabled) or change (linking)


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in: from a validated ID token (or GitHub's user API)."""

    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None


class ProviderRefused(Exception):
    """The provider step failed (:class:`IdentityProviderClient`): ``reason`` is the refusal, ``detail`` a
    short, secret-free word for the audit log (``exp``, ``nonce``, ``signature``, ``timeout``...)."""

    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class IdentityProviderClient(Protocol):
    """The network side of a provider (``gateway/oauth.py``, with Authlib). Both raise ProviderRefused."""

    async def authorization_url(self, provider: IdentityProviderDocument, client_secret: str | None, *,
                                redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        """The provider's authorization endpoint with this request (PKCE S256 challenge of the verifier)."""

    async def identity(self, provider: IdentityProviderDocument, client_secret: str | None, *, redirect_uri: str,
                       code: str, code_verifier: str, nonce: str, now: int) -> ProviderIdentity:
        """Exchange the code and validate the ID token (``now``: epoch seconds, the gateway's clock)."""


@dataclass(frozen=True)
class Started:
    authorization_url: str
    expires_at: datetime


@dataclass(frozen=True)
class Landing:
    """Where a flow's browser goes next: ``redirect_url``, or (None) the gateway's page for ``refusal``."""

    redirect_url: str | None
    refusal: Refusal | None = None


def _cipher(secret_key: bytes) -> Fernet:
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=SECRETS_KEY_INFO).derive(secret_key)
    return Fernet(base64.urlsafe_b64encode(key))


def _key(value: object, limit: int = MAX_PARAMETER) -> str | None:
    """The SHA-256 under which a random parameter is stored and looked up; None for what cannot be one."""
    if not isinstance(value, str) or not value or len(value) > limit or not is_text(value):
        return None
    return token_hash(value)


def _with(url: str, **params: str) -> str:
    from urllib.parse import urlencode
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def hosted_return_url(ctx: Context, next_path: str) -> str:
    """Where a flow started on the hosted pages comes back to: the gateway's return page for this
    application, carrying the page to go on to (``next_path``, checked again by the page)."""
    if not (isinstance(next_path, str) and len(next_path) <= MAX_HOSTED_NEXT and next_path.startswith("/")
            and not next_path.startswith(("//", "/\\")) and is_text(next_path)):
        next_path = ""  # the return page then goes to its default
    return _with(f"{ctx.rules.public_url}{HOSTED_RETURN_PATH}", app=ctx.application.client_id, next=next_path)


def is_hosted_return(ctx: Context, url: str) -> bool:
    """True for a flow that returns to the hosted pages (see :func:`hosted_return_url`)."""
    base = f"{ctx.rules.public_url}{HOSTED_RETURN_PATH}"
    return url == base or url.startswith(f"{base}?")


# -- the public list --------------------------------------------------------------------------------

async def sign_in_providers(ctx: Context) -> list[IdentityProviderDocument]:
    """The request application's enabled providers, for its sign-in buttons."""
    return [p for p in await store.list_for_application(ctx.application.id) if p.enabled]


# -- 1. start ---------------------------------------------------------------------------------------

async def _start(ctx: Context, purpose: SocialFlowPurpose, provider_name: str, redirect_url: str | None,
                 customer_id: str | None, hosted_next: str | None = None) -> Started:
    await ratelimit.hit_ip(ctx, "social-start-ip", ctx.rules.login_ip)
    problems = Problems()
    if hosted_next is not None:
        redirect_url = hosted_return_url(ctx, hosted_next)  # the gateway's own page, built here
    elif not isinstance(redirect_url, str) or len(redirect_url) > MAX_URL \
            or not within(ctx.application.redirect_urls, redirect_url.strip()):
        problems.add("redirectUrl", "NOT_ALLOWED", "This URL is not within the application's redirectUrls.")
    problems.raise_if_any()
    provider = None
    if isinstance(provider_name, str) and 0 < len(provider_name) <= MAX_PROVIDER_NAME and is_text(provider_name):
        provider = await store.get_by_name(ctx.application.id, provider_name)
    if provider is None or not provider.enabled:
        raise NotFound("The application has no identity provider of this name.", field="provider")
    start_token, state = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sealed = _cipher(ctx.rules.secret_key).encrypt(json.dumps({
        "state": state, "nonce": secrets.token_urlsafe(32), "code_verifier": secrets.token_urlsafe(48)}).encode()).decode()
    now = ctx.now()
    flow = SocialFlowDocument(
        id=new_id(), purpose=purpose, provider_id=provider.id, provider_name=provider.name,
        application_id=ctx.application.id, redirect_url=redirect_url.strip(), customer_id=customer_id,
        start_token_hash=token_hash(start_token), state_hash=token_hash(state), secrets=sealed,
        created_at=now, expires_at=now + FLOW_LIFETIME)
    await store.insert_flow(flow)
    return Started(_with(f"{ctx.rules.public_url}{START_PATH}/{provider.name}", token=start_token),
                   flow.expires_at)


async def start_sign_in(ctx: Context, provider_name: str, redirect_url: str | None = None, *,
                        hosted_next: str | None = None) -> Started:
    """``socialSignInStart``: a flow that signs in (or registers) whoever the provider names.

    ``hosted_next`` (the hosted pages only, never from a client): the flow returns to the gateway's own
    page (:func:`hosted_return_url`) rather than to ``redirect_url``, and that page goes on to this path.
    NotFound (``provider``) for a provider the application does not have (or has disabled);
    InvalidInput (``redirectUrl`` NOT_ALLOWED) for a URL outside its allow-list; RateLimited."""
    return await _start(ctx, SocialFlowPurpose.SIGN_IN, provider_name, redirect_url, None, hosted_next)


async def start_link(ctx: Context, provider_name: str, redirect_url: str) -> Started:
    """``linkedIdentityAdd``: a flow that links the provider identity to the signed-in customer. Needs a
    recent authentication (ReauthenticationRequired) and account settings on (FeatureDisabled); else as
    :func:`start_sign_in`."""
    customer_id = own_account(ctx, Area.ACCOUNT_SETTINGS)
    require_recent_authentication(ctx)
    return await _start(ctx, SocialFlowPurpose.LINK, provider_name, redirect_url, customer_id)


# -- 2. the browser opens the start URL ---------------------------------------------------------------

async def application_of_start(start_token: str) -> str | None:
    """The application a start URL acts for (its page is built for it), whatever the flow's state."""
    key = _key(start_token)
    flow = await store.flow_by_start_token(key) if key else None
    return flow.application_id if flow else None


async def application_of_state(state: str) -> str | None:
    """The application a callback acts for, whatever the flow's state."""
    key = _key(state)
    flow = await store.flow_by_state(key) if key else None
    return flow.application_id if flow else None


def _secrets(ctx: Context, flow: SocialFlowDocument) -> dict[str, str] | None:
    try:
        return json.loads(_cipher(ctx.rules.secret_key).decrypt(flow.secrets.encode()))
    except InvalidFernetToken:
        return None  # sealed under another GATEWAY_SECRET_KEY


async def _usable_provider(flow: SocialFlowDocument, provider_name: str) -> IdentityProviderDocument | None:
    provider = await store.get_provider(flow.provider_id)
    return provider if provider is not None and provider.enabled and provider.name == provider_name else None


async def _refused(ctx: Context, reason: Refusal, flow: SocialFlowDocument | None, *, to_application: bool,
                   detail: str = "") -> Landing:
    """Record the refusal and say where the browser goes: back to the flow's (allow-listed) redirect URL
    with ``error``, when this browser owns the flow, else the gateway's page."""
    await audit.record(ctx, "customer.social_login_failed", subject_id=flow.customer_id if flow else None,
                       actor_kind="public", reason=reason.value, provider=flow.provider_name if flow else None,
                       purpose=flow.purpose.value if flow else None, **({"detail": detail} if detail else {}))
    if flow is not None and to_application:
        return Landing(_with(flow.redirect_url, error=reason.value), reason)
    return Landing(None, reason)


async def begin(ctx: Context, client: IdentityProviderClient, provider_name: str, start_token: str,
                binding: str) -> Landing:
    """The browser opened ``/oauth/start/<provider>?token=…``: bind the flow to it (``binding`` is the value
    of its binding cookie) and send it to the provider. Only the first browser, once, within the flow's
    lifetime; otherwise the gateway's page (``invalid_start``)."""
    await ratelimit.hit_ip(ctx, "social-start-ip", ctx.rules.login_ip)
    key, binding_key = _key(start_token), _key(binding)
    flow = await store.bind_flow(key, binding_key, ctx.now(), ctx.now_ms()) if key and binding_key else None
    if flow is None:
        return await _refused(ctx, Refusal.INVALID_START, None, to_application=False)
    provider = await _usable_provider(flow, provider_name)
    sealed = _secrets(ctx, flow)
    if provider is None or sealed is None:
        return await _refused(ctx, Refusal.PROVIDER_UNAVAILABLE, flow, to_application=True)
    try:
        url = await client.authorization_url(
            provider, identity_providers.client_secret(ctx, provider),
            redirect_uri=identity_providers.callback_url(ctx, provider), state=sealed["state"],
            nonce=sealed["nonce"], code_verifier=sealed["code_verifier"])
    except ProviderRefused as refused:
        return await _refused(ctx, refused.reason, flow, to_application=True, detail=refused.detail)
    return Landing(url)


# -- 3. the provider's callback -----------------------------------------------------------------------

async def finish(ctx: Context, client: IdentityProviderClient, provider_name: str, *, state: str | None,
                 code: str | None, error: str | None, binding: str | None) -> Landing:
    """The provider sent the browser back to ``/oauth/callback/<provider>``: use the flow up (see the
    module docstring), exchange the code, validate the identity and decide who signs in."""
    await ratelimit.hit_ip(ctx, "social-callback-ip", ctx.rules.login_ip)
    state_key, binding_key = _key(state), _key(binding)
    flow = await store.consume_flow(state_key, binding_key, ctx.now(), ctx.now_ms()) \
        if state_key and binding_key else None
    if flow is None:
        return await _why_not(ctx, state_key, binding_key)
    provider = await store.get_provider(flow.provider_id)
    if provider is not None and provider.name != provider_name:  # a response of another provider (mix-up)
        return await _refused(ctx, Refusal.STATE_MISMATCH, flow, to_application=True, detail="provider")
    provider = await _usable_provider(flow, provider_name)
    sealed = _secrets(ctx, flow)
    if provider is None or sealed is None:
        return await _refused(ctx, Refusal.PROVIDER_UNAVAILABLE, flow, to_application=True)
    if error is not None or not code:
        # the provider's error code (RFC 6749 4.1.2.1: ASCII) as the audit detail, when it looks like one
        detail = error if error is not None and ERROR_CODE.fullmatch(error) else "no_code" if error is None else "other"
        return await _refused(ctx, Refusal.ACCESS_DENIED, flow, to_application=True, detail=detail)
    if len(code) > MAX_CODE or not is_text(code):
        return await _refused(ctx, Refusal.CODE_REJECTED, flow, to_application=True, detail="malformed")
    try:
        identity = await client.identity(
            provider, identity_providers.client_secret(ctx, provider),
            redirect_uri=identity_providers.callback_url(ctx, provider), code=code,
            code_verifier=sealed["code_verifier"], nonce=sealed["nonce"], now=int(ctx.now().timestamp()))
    except ProviderRefused as refused:
        return await _refused(ctx, refused.reason, flow, to_application=True, detail=refused.detail)
    return await _decide(ctx, flow, provider, identity)


async def _why_not(ctx: Context, state_key: str | None, binding_key: str | None) -> Landing:
    """A callback that did not use a flow up: which rule refused it. Only the browser that owns the flow
    is sent back to the application; anything else gets the gateway's page."""
    flow = await store.flow_by_state(state_key) if state_key else None
    if flow is None:
        return await _refused(ctx, Refusal.UNKNOWN_STATE, None, to_application=False)
    if binding_key is None or flow.binding_hash != binding_key:
        return await _refused(ctx, Refusal.STATE_MISMATCH, flow, to_application=False)
    if flow.called_back_at_ms is not None:
        return await _refused(ctx, Refusal.REPLAYED, flow, to_application=True)
    return await _refused(ctx, Refusal.EXPIRED, flow, to_application=True)


# -- 4. who signs in ---------------------------------------------------------------------------------

def _verified_email(identity: ProviderIdentity) -> str | None:
    """The provider's email in our normalised display form, when the provider verified it and it is valid."""
    if not identity.email or not identity.email_verified:
        return None
    problems = Problems()
    email = validate_email(problems, identity.email)
    return None if problems.items else email


async def _decide(ctx: Context, flow: SocialFlowDocument, provider: IdentityProviderDocument,
                  identity: ProviderIdentity) -> Landing:
    if flow.purpose == SocialFlowPurpose.LINK:
        return await _link(ctx, flow, provider, identity)
    store_id = ctx.application.identity_store_id
    holder = await account.identity_holder(store_id, identity.issuer, identity.subject)
    if holder is not None:
        if holder.status != CustomerStatus.ACTIVE:
            return await _refused(ctx, Refusal.SIGN_IN_FAILED, flow.model_copy(update={"customer_id": holder.id}),
                                  to_application=True, detail=holder.status.value)
        return await _granted(ctx, flow, holder, registered=False)
    email = _verified_email(identity)
    if email is not None and await customers.get_by_normalized_email(store_id, normalize_identifier(email)):
        return await _refused(ctx, Refusal.ACCOUNT_EXISTS, flow, to_application=True)
    if not ctx.policy.registration.social_enabled:
        return await _refused(ctx, Refusal.NOT_REGISTERED, flow, to_application=True)
    if email is None:
        return await _refused(ctx, Refusal.EMAIL_NOT_VERIFIED, flow, to_application=True)
    return await _register(ctx, flow, provider, identity, email)


async def _link(ctx: Context, flow: SocialFlowDocument, provider: IdentityProviderDocument,
                identity: ProviderIdentity) -> Landing:
    customer = await customers.get(flow.customer_id or "")
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        return await _refused(ctx, Refusal.SIGN_IN_FAILED, flow, to_application=True, detail="account")
    outcome = await account.add_linked_identity(ctx, customer, provider=provider.name, issuer=identity.issuer,
                                                subject=identity.subject, email=identity.email)
    if outcome == account.LinkOutcome.IN_USE:
        return await _refused(ctx, Refusal.IDENTITY_IN_USE, flow, to_application=True)
    if outcome == account.LinkOutcome.LINKED:
        await audit.record(ctx, "customer.identity_linked", subject_id=customer.id, actor_kind="customer",
                           actor_id=customer.id, provider=provider.name)
    return Landing(_with(flow.redirect_url, linked=provider.name))


async def _register(ctx: Context, flow: SocialFlowDocument, provider: IdentityProviderDocument,
                    identity: ProviderIdentity, email: str) -> Landing:
    """A new active customer with this identity, no password, the provider's verified email (as username
    too, whatever the username mode: the customer has none to type) and the names it gave, if valid."""
    names = Problems()
    given_name = validate_name(names, identity.given_name, "givenName")
    family_name = validate_name(names, identity.family_name, "familyName")
    if names.items:
        given_name = family_name = None  # names the provider gave that we would not accept are left out
    email_norm = normalize_identifier(email)
    now_ms = ctx.now_ms()
    customer = CustomerDocument(
        id=new_id(), store_id=ctx.application.identity_store_id, email=email, email_norm=email_norm,
        username=email, username_norm=email_norm, given_name=given_name, family_name=family_name,
        given_name_norm=name_norm(given_name), family_name_norm=name_norm(family_name), password_hash=None,
        status=CustomerStatus.ACTIVE, email_verified=True, created_at=ctx.now(), activated_at_ms=now_ms,
        locale=ctx.request.locale,
        linked_identities=[LinkedIdentity(id=new_id(), provider=provider.name, subject=identity.subject,
                                          email=identity.email, linked_at_ms=now_ms, issuer=identity.issuer)])
    if not await account.claim_identity(ctx, customer.store_id, identity.issuer, identity.subject, customer.id):
        # registered by a concurrent callback of the same person: sign in to that account
        holder = await account.identity_holder(customer.store_id, identity.issuer, identity.subject)
        if holder is None or holder.status != CustomerStatus.ACTIVE:
            return await _refused(ctx, Refusal.SIGN_IN_FAILED, flow, to_application=True, detail="race")
        return await _granted(ctx, flow, holder, registered=False)
    try:
        await customers.insert(customer)
    except customers.DuplicateCustomer:
        await account.release_identity(customer.store_id, identity.issuer, identity.subject, customer.id)
        return await _refused(ctx, Refusal.ACCOUNT_EXISTS, flow, to_application=True)
    await audit.record(ctx, "customer.registered", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, method=f"social:{provider.name}")
    return await _granted(ctx, flow, customer, registered=True)


async def _granted(ctx: Context, flow: SocialFlowDocument, customer: CustomerDocument, *, registered: bool) -> Landing:
    grant = secrets.token_urlsafe(32)
    await store.set_grant(flow.id, token_hash(grant), customer.id, ctx.now_ms() + GRANT_LIFETIME_MS)
    await audit.record(ctx, "customer.social_login_succeeded", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, provider=flow.provider_name, registered=registered)
    return Landing(_with(flow.redirect_url, grant=grant))


# -- 5. the frontend exchanges the grant ---------------------------------------------------------------

GRANT_REFUSED = "This sign-in has expired or was used already. Please sign in again."


async def complete(ctx: Context, grant: str, *, binding: str | None = None) -> SignedIn | MfaRequired:
    """``socialSignInComplete``: the grant from the redirect, used once within 2 minutes, for the
    application whose flow issued it; then the rules every sign-in ends in (``complete_sign_in``: a second
    factor when the customer or the policy calls for one, the session otherwise).

    ``binding`` (the hosted pages' return route): the value of the browser's binding cookie, which must be
    the one of the browser that started the flow; a flow that returns to the hosted pages is exchanged only
    so. InvalidToken for an unknown, used, expired or other application's grant, or another browser's;
    InvalidCredentials for an account that can no longer sign in; RateLimited."""
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    key = _key(grant)
    if key is None:
        problems = Problems()
        problems.add("grant", "REQUIRED", "Give the grant from the redirect.")
        problems.raise_if_any()
    flow = await store.consume_grant(key, ctx.now_ms())
    if flow is None or flow.application_id != ctx.application.id or flow.customer_id is None:
        raise InvalidToken(GRANT_REFUSED)
    if (binding is not None or is_hosted_return(ctx, flow.redirect_url)) \
            and (flow.binding_hash is None or _key(binding) != flow.binding_hash):
        await audit.record(ctx, "customer.social_login_failed", subject_id=flow.customer_id, actor_kind="public",
                           reason=Refusal.STATE_MISMATCH.value, provider=flow.provider_name,
                           purpose=flow.purpose.value, detail="grant_binding")
        raise InvalidToken(GRANT_REFUSED)
    customer = await customers.get(flow.customer_id)
    if customer is None:
        raise InvalidToken(GRANT_REFUSED)
    return await complete_sign_in(ctx, customer, method=f"social:{flow.provider_name}")
