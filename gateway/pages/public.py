"""The public journeys: sign in (with its second-factor step), sign out, register, forgotten password,
password reset, forgotten username; and the signed-in landing the account portal replaces.

Every form posts back to its own path with the page's CSRF token and calls the resolver the GraphQL
API calls (``sessions.sign_in``, ``sessions.verify_mfa``, ``registration.register``,
``recovery.request_password_reset``, ``recovery.reset_password``, ``recovery.request_username_reminder``):
no rule is written twice. A successful sign-in puts the session token in the browser-session cookie
(``gateway/browser_sessions.py``) and redirects (303) to ``next`` (a path on this gateway) or to the
account page. The second-factor step carries its challenge token in a hidden field, never in a URL.

Other ways to sign in (passkeys, social identities, emailed links: ``gateway/pages/sign_in_methods.py``)
plug into the sign-in page through ``SIGN_IN_METHODS`` and answer through the same :class:`SignInSteps`
(the sign-in page again, the second-factor step, or the session), so every way in looks and ends alike.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.pages.i18n import N_
from gateway.pages.kit import Page, PageKit, UnknownPageApplication
from gateway.pages.links import password_advice
from resolvers import links, mfa, recovery, registration, sessions
from resolvers.errors import (
    AccountNotActivated,
    FeatureDisabled,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    PasswordMismatch,
    PasswordPolicyViolation,
    RateLimited,
)
from resolvers.social import Refusal
from stores.documents import FactorType, UsernameMode

SIGN_IN = "/sign-in"
SIGN_IN_CODE = "/sign-in/code"
SIGN_IN_CODE_SEND = "/sign-in/code/send"
SIGN_OUT = "/sign-out"
REGISTER = "/register"
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"
FORGOT_USERNAME = "/forgot-username"
ACCOUNT = "/account"  # the signed-in landing; the account portal replaces its page
MAX_NEXT = 512
SAFE_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
MAX_EMAIL_INPUT = 320
MAX_TEXT_INPUT = 1024

FACTOR_LABELS = {
    FactorType.TOTP: N_("Authenticator app"),
    FactorType.EMAIL_OTP: N_("Code sent by email"),
    FactorType.RECOVERY_CODE: N_("Recovery code"),
}
CODE_FACTORS = tuple(FACTOR_LABELS)  # answered with a typed code; a passkey answers through its own form

# Messages resolvers give that the pages show; marked here so that the catalogues translate them.
RESOLVER_MESSAGES = (
    N_("Enter your email or username."), N_("Enter your password."), N_("Enter an email address."),
    N_("Enter a valid email address."), N_("Remove the invisible characters from this email address."),
    N_("Choose a username."), N_("Use 3 to 64 letters, digits, dots, dashes or underscores."),
    N_("This username is taken; choose another."), N_("This application uses your email address as your username."),
    N_("Remove characters that are not valid text."), N_("Remove control characters."), N_("Enter text."),
    N_("The identifier or password is incorrect."), N_("The code is not right."),
    N_("This sign-in has expired or ended. Please sign in again."), N_("Enter the code."),
    N_("Choose the factor the code comes from."), N_("Sign in with your password first."),
    N_("The email address or the code is not right."), N_("Enter the 6-digit code from the email."),
)
EXPIRED = N_("This sign-in has expired or ended. Please sign in again.")
TOO_MANY = N_("Too many attempts. Please try again in %(seconds)s seconds.")
# What the sign-in page says when a sign-in came back to it with ``?error=<code>`` (a social sign-in's
# refusal, ``resolvers.social.Refusal``; a used or expired grant), by code. Other codes say nothing.
_PROVIDER_FAILED = N_("The sign-in with the provider did not work. Please try again.")
_GRANT_USED = N_("This sign-in has expired or was used already. Please sign in again.")
SIGN_IN_ERRORS = {
    Refusal.ACCOUNT_EXISTS: N_("An account already uses the email address of this identity. Sign in as you "
                               "usually do, then link the provider from your account settings."),
    Refusal.EMAIL_NOT_VERIFIED: N_("The provider has not confirmed your email address, so no account can be made "
                                   "with it. Confirm it there first, or sign in another way."),
    Refusal.NOT_REGISTERED: N_("No account uses this identity. Sign in another way, or create an account."),
    Refusal.IDENTITY_IN_USE: N_("Another account already uses this identity."),
    Refusal.SIGN_IN_FAILED: N_("This account cannot sign in."),
    Refusal.ACCESS_DENIED: N_("The sign-in was cancelled at the provider. Nothing was changed."),
    Refusal.PROVIDER_UNAVAILABLE: N_("The provider could not be reached. Please try again later, or sign in "
                                     "another way."),
    Refusal.EXPIRED: _GRANT_USED, Refusal.REPLAYED: _GRANT_USED,
    Refusal.INVALID_ID_TOKEN: _PROVIDER_FAILED, Refusal.CODE_REJECTED: _PROVIDER_FAILED,
    Refusal.STATE_MISMATCH: _PROVIDER_FAILED, Refusal.INVALID_START: _PROVIDER_FAILED,
    Refusal.UNKNOWN_STATE: _PROVIDER_FAILED,
}
NOT_ACTIVATED = N_("This account is not activated yet. Use the link we emailed you, or ask for a new one on the "
                   "activation page.")


@dataclass(frozen=True)
class SignInMethod:
    """Another way to sign in, shown on the sign-in page below the password form.

    ``template``: a part in ``gateway/templates/pages/`` rendered with the page's variables and ``part``
    (its own forms post to its own routes, with ``csrf_token(action)``); ``offered(page)``: None when
    this page does not show it (the policy does not allow it, no provider is configured), else the
    part's variables (a dict, maybe empty; ``primary: True`` puts it first, where no password is asked).
    ``scripted``: the part shows only where the browser runs its
    script (a passkey needs WebAuthn). Every way in then ends in ``resolvers.sessions.complete_sign_in``
    and answers through :class:`SignInSteps`.
    """

    name: str
    template: str
    offered: Callable[[Page], Awaitable[dict[str, Any] | None]]
    scripted: bool = False


SIGN_IN_METHODS: list[SignInMethod] = []

PATHS = frozenset({"/", SIGN_IN, SIGN_IN_CODE, SIGN_IN_CODE_SEND, SIGN_OUT, REGISTER, FORGOT_PASSWORD,
                   RESET_PASSWORD, FORGOT_USERNAME, ACCOUNT})


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this gateway (never another site: ``//host`` and ``/\\host``
    are refused), else the account page."""
    value = (value or "").strip()
    return value if len(value) <= MAX_NEXT and SAFE_NEXT.match(value) else ACCOUNT


def text_field(form, name: str, limit: int = MAX_TEXT_INPUT) -> str:
    """A form field as text, cut one character past ``limit`` (so that an over-long value is still refused)."""
    return str(form.get(name, ""))[:limit + 1]



def shows_password(page: Page) -> bool:
    """Whether the sign-in page asks for a password: not under a passwordless policy that lets customers
    sign in by emailed link or code (accounts made before the policy changed sign in that way too)."""
    policy = page.ctx.policy
    return not (policy.passwordless and policy.email_sign_in.enabled)


def page_route(kit: PageKit, path: str, handler: Callable[[Request], Awaitable[Response]],
               methods: list[str]) -> Route:
    """A page route whose unknown ``?app=`` (or form ``client_id``) answers the 404 page."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except UnknownPageApplication:
            page = await kit.open(request, client_id="")
            return kit.render(page, "notice.html", 404, title=kit.gettext(page, "Unknown application"),
                              heading=kit.gettext(page, "This application is not known"),
                              text=kit.gettext(page, "Check the address of this page, or go back to the "
                                                     "site that sent you here."))
    return Route(path, endpoint, methods=methods)


class SignInSteps:
    """What every way of signing in answers with: the sign-in page (again, with an error or a notice), the
    second-factor step, or the session (the cookie, and a 303 to ``next``)."""

    def __init__(self, kit: PageKit) -> None:
        self.kit = kit

    async def sign_in_page(self, page: Page, status: int = 200, *, identifier: str = "", error: str = "",
                           next_path: str = "", notice: str = "") -> Response:
        kit, policy = self.kit, page.ctx.policy
        methods = []
        for method in SIGN_IN_METHODS:
            part = await method.offered(page)
            if part is not None:
                methods.append((method, part))
        methods.sort(key=lambda offered: not offered[1].get("primary"))  # the page's main way in first
        password = shows_password(page)
        return kit.render(page, "sign_in.html", status, title=kit.gettext(page, "Sign in"), identifier=identifier,
                          error=error, notice=notice, next=next_path, show_password=password,
                          username_mode=policy.username_mode == UsernameMode.USERNAME,
                          can_register=policy.registration.enabled,
                          can_reset=policy.password_reset.enabled and password,
                          can_remind=policy.username_mode == UsernameMode.USERNAME and policy.username_reminder.enabled,
                          sign_in_methods=methods,
                          methods_scripted=bool(methods) and all(method.scripted for method, _ in methods))

    async def expired(self, page: Page, next_path: str = "") -> Response:
        return await self.sign_in_page(page, 400, error=self.kit.gettext(page, EXPIRED), next_path=next_path)

    def code_page(self, page: Page, challenge_token: str, factors: list[FactorType], status: int = 200, *,
                  next_path: str = "", error: str = "", notice: str = "", chosen: str = "") -> Response:
        """The second-factor step: a typed code from each code factor the challenge offers, and the passkey
        (where the challenge offers one) through its own form."""
        kit = self.kit
        codes = [f for f in factors if f in CODE_FACTORS]
        if chosen not in {f.value for f in codes}:
            chosen = (FactorType.TOTP if FactorType.TOTP in codes else codes[0]).value if codes else ""
        return kit.render(page, "sign_in_code.html", status, title=kit.gettext(page, "Confirm it is you"),
                          challenge_token=challenge_token, factors=[f.value for f in factors],
                          code_factors=[f.value for f in codes],
                          factor_labels={f.value: kit.gettext(page, FACTOR_LABELS[f]) for f in codes},
                          passkey=FactorType.PASSKEY in factors, chosen=chosen,
                          can_send=FactorType.EMAIL_OTP in factors, next=next_path, error=error, notice=notice)

    def signed_in(self, page: Page, result: sessions.SignedIn, next_path: str) -> Response:
        response = self.kit.redirect(page, safe_next(next_path))
        return self.kit.sessions.start(response, result)

    def outcome(self, page: Page, result: sessions.SignedIn | sessions.MfaRequired, next_path: str) -> Response:
        """A first factor was right: the session, or the second-factor step when one is due."""
        if isinstance(result, sessions.MfaRequired):
            notice = self.kit.gettext(page, "We emailed you a code.") if result.code_sent else ""
            return self.code_page(page, result.challenge_token, result.factors, next_path=next_path, notice=notice)
        return self.signed_in(page, result, next_path)

    def too_many(self, page: Page, exc: RateLimited) -> str:
        return self.kit.gettext(page, TOO_MANY, seconds=exc.retry_after_seconds)


def code_form(form) -> tuple[str, list[FactorType], str]:
    """The second-factor step's hidden fields: its challenge token, the factors it offers, ``next``."""
    factors = [FactorType(f) for f in text_field(form, "factors", 100).split(",") if f in FactorType.__members__]
    return text_field(form, "challenge_token", 200), factors or [FactorType.TOTP], text_field(form, "next", MAX_NEXT)


def routes(kit: PageKit) -> list[Route]:
    steps = SignInSteps(kit)

    def route(path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
        return page_route(kit, path, handler, methods)

    async def form_page(request: Request) -> tuple[Page, object]:
        """Open a form POST (the application from its ``client_id`` field) and read the form."""
        form = await kit.read_form(request)
        page = await kit.open(request, client_id=text_field(form, "client_id", 100))
        return page, form

    def unavailable(page: Page, title: str) -> Response:
        return kit.render(page, "notice.html", 404, title=kit.gettext(page, title),
                          heading=kit.gettext(page, "This is not available here"),
                          text=kit.gettext(page, "%(application)s does not offer this. Go back to the sign-in page.",
                                           application=page.application.name), back=kit.url(page, SIGN_IN))

    # -- sign in ---------------------------------------------------------------------------------
    sign_in_page, code_page = steps.sign_in_page, steps.code_page

    async def sign_in(request: Request) -> Response:
        if request.method == "GET":
            page = await kit.open(request, with_session=True)
            next_path = request.query_params.get("next", "")
            if page.principal is not None:
                return kit.redirect(page, safe_next(next_path))
            notice = kit.gettext(page, "You are signed out.") if request.query_params.get("signed_out") else ""
            error = SIGN_IN_ERRORS.get(request.query_params.get("error", ""))
            return await sign_in_page(page, next_path=next_path if safe_next(next_path) == next_path else "",
                                      notice=notice, error=kit.gettext(page, error) if error else "")
        page, form = await form_page(request)
        identifier, next_path = text_field(form, "identifier", MAX_EMAIL_INPUT), text_field(form, "next", MAX_NEXT)
        refusal = kit.refusal(page, form, SIGN_IN)
        if refusal is not None:
            return kit.refused(page, SIGN_IN, refusal, kit.url(page, SIGN_IN))
        again = {"identifier": identifier, "next_path": next_path}
        try:
            result = await sessions.sign_in(page.ctx, sessions.CUSTOMER, identifier, text_field(form, "password"),
                                            device_token=kit.sessions.device_token(request))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"identifier": "identifier", "password": "password"})
            return await sign_in_page(page, 400, **again)
        except InvalidCredentials:
            return await sign_in_page(page, 400, error=kit.gettext(page, "The identifier or password is incorrect."),
                                      **again)
        except AccountNotActivated:
            return await sign_in_page(page, 400, error=kit.gettext(page, NOT_ACTIVATED), **again)
        except RateLimited as exc:
            return await sign_in_page(page, 429, error=steps.too_many(page, exc), **again)
        return steps.outcome(page, result, next_path)

    async def sign_in_code(request: Request) -> Response:
        page, form = await form_page(request)
        token, factors, next_path = code_form(form)
        refusal = kit.refusal(page, form, SIGN_IN_CODE)
        if refusal is not None:
            return kit.refused(page, SIGN_IN_CODE, refusal, kit.url(page, SIGN_IN))
        chosen = text_field(form, "factor", 20)
        factor = FactorType(chosen) if chosen in FactorType.__members__ else None
        again = {"next_path": next_path, "chosen": chosen if factor else ""}
        try:
            result = await sessions.verify_mfa(page.ctx, token, factor, text_field(form, "code", 100))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"code": "code", "factor": "factor"})
            if "challengeToken" in page.errors:
                return await steps.expired(page, next_path)
            return code_page(page, token, factors, 400, **again)
        except InvalidCredentials as exc:
            page.errors = {"code": kit.gettext(page, exc.message)}
            return code_page(page, token, factors, 400, **again)
        except InvalidToken:
            return await steps.expired(page, next_path)
        except RateLimited as exc:
            return code_page(page, token, factors, 429, error=steps.too_many(page, exc), **again)
        return steps.signed_in(page, result, next_path)

    async def sign_in_code_send(request: Request) -> Response:
        page, form = await form_page(request)
        token, factors, next_path = code_form(form)
        refusal = kit.refusal(page, form, SIGN_IN_CODE_SEND)
        if refusal is not None:
            return kit.refused(page, SIGN_IN_CODE_SEND, refusal, kit.url(page, SIGN_IN))
        try:
            await mfa.send_sign_in_code(page.ctx, token)
        except InvalidToken:
            return await steps.expired(page, next_path)
        except RateLimited:
            return code_page(page, token, factors, 429, next_path=next_path, chosen=FactorType.EMAIL_OTP.value,
                             error=kit.gettext(page, "No more codes can be sent for now. Please try again later."))
        return code_page(page, token, factors, next_path=next_path, chosen=FactorType.EMAIL_OTP.value,
                         notice=kit.gettext(page, "We emailed you a code."))

    async def sign_out(request: Request) -> Response:
        form = await kit.read_form(request)
        page = await kit.open(request, client_id=text_field(form, "client_id", 100), with_session=True)
        refusal = kit.refusal(page, form, SIGN_OUT)
        if refusal is not None:
            return kit.refused(page, SIGN_OUT, refusal, kit.url(page, ACCOUNT))
        if page.principal is not None:
            await sessions.sign_out(page.ctx)
        return kit.sessions.end(kit.redirect(page, SIGN_IN, signed_out="1"))

    # -- register --------------------------------------------------------------------------------
    def register_page(page: Page, status: int = 200, *, state: str = "form", values: dict | None = None,
                      error: str = "") -> Response:
        policy = page.ctx.policy
        return kit.render(page, "register.html", status, title=kit.gettext(page, "Create your account"),
                          state=state, values=values or {}, error=error,
                          username_mode=policy.username_mode == UsernameMode.USERNAME,
                          min_length=policy.password_policy.min_length, passwordless=policy.passwordless)

    async def register(request: Request) -> Response:
        if request.method == "GET":
            page = await kit.open(request)
            if not page.ctx.policy.registration.enabled:
                return unavailable(page, N_("Create your account"))
            return register_page(page)
        page, form = await form_page(request)
        refusal = kit.refusal(page, form, REGISTER)
        if refusal is not None:
            return kit.refused(page, REGISTER, refusal, kit.url(page, REGISTER))
        values = {name: text_field(form, name, MAX_EMAIL_INPUT if name == "email" else 200)
                  for name in ("email", "username", "given_name", "family_name")}
        username_mode = page.ctx.policy.username_mode == UsernameMode.USERNAME
        # A passwordless policy's form has no password field: the account gets none (the use case refuses one).
        password = None if page.ctx.policy.passwordless else text_field(form, "password")
        try:
            await registration.register(page.ctx, email=values["email"], password=password,
                                        username=values["username"] if username_mode else None,
                                        given_name=values["given_name"] or None,
                                        family_name=values["family_name"] or None)
        except FeatureDisabled:
            return unavailable(page, N_("Create your account"))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {
                "email": "email", "username": "username", "givenName": "given_name", "familyName": "family_name",
                "password": "password"})
            return register_page(page, 400, values=values)
        except PasswordPolicyViolation as exc:
            page.errors = {"password": password_advice(kit, page, exc)}
            return register_page(page, 400, values=values)
        except RateLimited as exc:
            return register_page(page, 429, values=values, error=steps.too_many(page, exc))
        return register_page(page, state="done", values={"email": values["email"]})

    # -- forgotten password, reset, forgotten username -------------------------------------------
    def email_request_page(page: Page, template: str, title: str, status: int = 200, *, state: str = "form",
                           email: str = "", error: str = "") -> Response:
        return kit.render(page, template, status, title=kit.gettext(page, title), state=state, email=email,
                          error=error)

    def email_request(path: str, template: str, title: str, use_case, enabled: Callable[[Page], bool]):
        async def handler(request: Request) -> Response:
            if request.method == "GET":
                page = await kit.open(request)
                if not enabled(page):
                    return unavailable(page, title)
                return email_request_page(page, template, title)
            page, form = await form_page(request)
            refusal = kit.refusal(page, form, path)
            if refusal is not None:
                return kit.refused(page, path, refusal, kit.url(page, path))
            email = text_field(form, "email", MAX_EMAIL_INPUT)
            try:
                await use_case(page.ctx, email)
            except FeatureDisabled:
                return unavailable(page, title)
            except InvalidInput as exc:
                page.errors = kit.field_errors(page, exc.problems, {"email": "email"})
                return email_request_page(page, template, title, 400, email=email)
            except RateLimited:
                return email_request_page(page, template, title, 429, email=email, error=kit.gettext(
                    page, "We are busy right now. Please try again in a few seconds."))
            return email_request_page(page, template, title, state="done", email=email)
        return handler

    def reset_page(page: Page, status: int = 200, *, state: str, token: str = "", error: str = "") -> Response:
        return kit.render(page, "reset_password.html", status, title=kit.gettext(page, "Reset your password"),
                          state=state, token=token, error=error, min_length=page.ctx.policy.password_policy.min_length)

    async def reset_password(request: Request) -> Response:
        if request.method == "GET":
            token = request.query_params.get("token", "")
            page = await kit.open(request, link_token=token)
            try:
                await recovery.check_reset_token(page.ctx, token)
            except (InvalidToken, FeatureDisabled):
                return reset_page(page, 400, state="expired")
            return reset_page(page, state="form", token=token)
        form = await kit.read_form(request)
        token = text_field(form, "token", links.MAX_TOKEN_LENGTH)
        page = await kit.open(request, link_token=token)
        refusal = kit.refusal(page, form, RESET_PASSWORD)
        if refusal is not None:
            return kit.refused(page, RESET_PASSWORD, refusal, kit.url(page, RESET_PASSWORD, token=token))
        try:
            await recovery.reset_password(page.ctx, token, text_field(form, "new_password"),
                                          text_field(form, "confirm_password"))
        except (InvalidToken, FeatureDisabled):
            return reset_page(page, 400, state="expired")
        except PasswordMismatch:
            page.errors = {"confirm_password": kit.gettext(page, "The passwords do not match.")}
            return reset_page(page, 400, state="form", token=token)
        except PasswordPolicyViolation as exc:
            page.errors = {"new_password": password_advice(kit, page, exc)}
            return reset_page(page, 400, state="form", token=token)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"newPassword": "new_password",
                                                                "confirmPassword": "confirm_password"})
            return reset_page(page, 400, state="form", token=token)
        except RateLimited:
            return reset_page(page, 429, state="form", token=token,
                              error=kit.gettext(page, "Too many attempts. Please try again later."))
        return reset_page(page, state="done")

    # -- the signed-in landing -------------------------------------------------------------------
    async def account(request: Request) -> Response:
        page = await kit.open(request, with_session=True)
        if page.principal is None:
            return kit.redirect(page, SIGN_IN, next=ACCOUNT)
        profile = page.principal.profile or {}
        return kit.render(page, "account.html", title=kit.gettext(page, "Your account"),
                          email=profile.get("email", ""), given_name=profile.get("given_name") or "")

    async def home(request: Request) -> Response:
        page = await kit.open(request)
        return kit.redirect(page, SIGN_IN)

    return [
        route("/", home, ["GET"]),
        route(SIGN_IN, sign_in, ["GET", "POST"]),
        route(SIGN_IN_CODE, sign_in_code, ["POST"]),
        route(SIGN_IN_CODE_SEND, sign_in_code_send, ["POST"]),
        route(SIGN_OUT, sign_out, ["POST"]),
        route(REGISTER, register, ["GET", "POST"]),
        route(FORGOT_PASSWORD, email_request(FORGOT_PASSWORD, "forgot_password.html", N_("Forgot your password?"),
                                             recovery.request_password_reset,
                                             lambda page: page.ctx.policy.password_reset.enabled), ["GET", "POST"]),
        route(RESET_PASSWORD, reset_password, ["GET", "POST"]),
        route(FORGOT_USERNAME, email_request(
            FORGOT_USERNAME, "forgot_username.html", N_("Forgot your username?"), recovery.request_username_reminder,
            lambda page: page.ctx.policy.username_mode == UsernameMode.USERNAME
            and page.ctx.policy.username_reminder.enabled), ["GET", "POST"]),
        route(ACCOUNT, account, ["GET"]),
    ]
