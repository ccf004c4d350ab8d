"""Other ways to sign in on the hosted pages: passkeys, social identities, emailed links and codes.

Each adds itself to the sign-in page (``public.SIGN_IN_METHODS``) where the application and its policy
offer it, and calls the use case the GraphQL API calls; every way in ends in
``resolvers.sessions.complete_sign_in`` and answers through ``public.SignInSteps`` (the session cookie and
a 303 to ``next``, or the second-factor step).

- **Passkey** (``passkeys.enabled`` and a relying party for the application): ``/assets/passkey-sign-in.js``
  asks ``POST /sign-in/passkey/start`` for the request options (a ``fetch`` carrying the page's CSRF
  token; JSON back), calls ``navigator.credentials.get()``, and posts the credential's JSON with the
  passkey form to ``POST /sign-in/passkey`` (``passkeys.finish_sign_in``). On the second-factor step the
  same form carries the challenge token: the passkey then answers the challenge. Without JavaScript or
  WebAuthn the form stays ``hidden``: the button is absent, not broken.
- **Social** (one button per enabled identity provider of the application): ``GET /sign-in/social``
  (a link carrying the page's CSRF token: a form could not be redirected on to the provider under the
  pages' ``form-action 'self'``) starts a flow that returns to the gateway itself (``social.start_sign_in(hosted_next=...)``: no entry
  in ``redirectUrls`` needed, and none taken from the browser), and ``GET /oauth/return`` exchanges the
  grant server-side with the browser's binding cookie (``social.complete(binding=...)``). Refusals
  (``account_exists``, ``email_not_verified``...) come back to the sign-in page as ``?error=<code>``,
  shown translated.
- **Emailed link or code** (``emailSignIn.enabled``): ``/sign-in/email-link`` asks for the mail
  (``email_sign_in.request(hosted_next=...)``: the same answer for every address) and shows "check your
  inbox" with the code form (``POST /sign-in/email-code``, ``email_sign_in.verify_code``). The mailed link
  lands on its confirm page (``/sign-in/email``, ``links.CONFIRM_LINKS``); for a request made here,
  pressing its button signs that browser in (``CONFIRMED_ANSWERS``) and goes on to ``next``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.oauth import binding_cookie_name
from gateway.pages import links as link_pages
from gateway.pages.i18n import N_
from gateway.pages.kit import FORM_MAX_FIELDS, Page, PageKit
from gateway.pages.public import (
    EXPIRED,
    MAX_EMAIL_INPUT,
    MAX_NEXT,
    NOT_ACTIVATED,
    SIGN_IN,
    SIGN_IN_ERRORS,
    SIGN_IN_METHODS,
    SignInMethod,
    SignInSteps,
    code_form,
    page_route,
    safe_next,
    shows_password,
    text_field,
)
from resolvers import email_sign_in, passkeys, social
from resolvers.errors import (
    AccountNotActivated,
    FeatureDisabled,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    RateLimited,
)

PASSKEY = "/sign-in/passkey"
PASSKEY_START = "/sign-in/passkey/start"
SOCIAL = "/sign-in/social"
SOCIAL_RETURN = social.HOSTED_RETURN_PATH  # "/oauth/return": under /oauth, so the binding cookie comes along
EMAIL_LINK = "/sign-in/email-link"
EMAIL_CODE = "/sign-in/email-code"
PATHS = frozenset({PASSKEY, PASSKEY_START, SOCIAL, SOCIAL_RETURN, EMAIL_LINK, EMAIL_CODE})

CREDENTIAL_MAX_BYTES = passkeys.MAX_CREDENTIAL_CHARACTERS  # the passkey form's field (an assertion: about 1 KiB)
MAX_GRANT = 512
PAGE_EXPIRED = N_("This page has expired. Reload it and try again.")
PASSKEY_REFUSED = N_("This passkey could not sign you in.")
PASSKEYS_OFF = N_("Passkeys are not available here.")
PROVIDER_UNKNOWN = N_("This way to sign in is not available. Choose another one.")
BUSY = N_("We are busy right now. Please try again in a few seconds.")


# -- what the sign-in page offers --------------------------------------------------------------------

async def _passkey_offered(page: Page) -> dict[str, Any] | None:
    try:
        passkeys.relying_party(page.ctx)  # the policy's passkeys.enabled and a relying party, as the API decides
    except FeatureDisabled:
        return None
    return {}


async def _social_offered(page: Page) -> dict[str, Any] | None:
    providers = await social.sign_in_providers(page.ctx)
    return {"providers": [(p.name, p.display_name) for p in providers]} if providers else None


async def _email_offered(page: Page) -> dict[str, Any] | None:
    return {"primary": not shows_password(page)} if page.ctx.policy.email_sign_in.enabled else None


METHODS = (
    SignInMethod("passkey", "_sign_in_passkey.html", _passkey_offered, scripted=True),
    SignInMethod("social", "_sign_in_social.html", _social_offered),
    SignInMethod("email", "_sign_in_email.html", _email_offered),
)
SIGN_IN_METHODS.extend(m for m in METHODS if m not in SIGN_IN_METHODS)  # in this order on the page


def answer_hosted_link(kit: PageKit, page: Page) -> Response | None:
    """The confirm page of an emailed sign-in link asked for on these pages: the browser that pressed its
    button gets the session (or the second-factor step), then ``next``. None for an application's link."""
    outcome = page.ctx.extras.get(email_sign_in.SIGNED_IN)
    if outcome is None:
        return None
    return SignInSteps(kit).outcome(page, outcome, safe_next(page.ctx.extras.get(email_sign_in.HOSTED_NEXT)))


link_pages.CONFIRMED_ANSWERS[email_sign_in.PURPOSE] = answer_hosted_link


# -- routes --------------------------------------------------------------------------------------------

def routes(kit: PageKit) -> list[Route]:
    steps = SignInSteps(kit)

    async def open_form(request: Request, max_part_size: int | None = None) -> tuple[Page, Any]:
        if max_part_size is None:
            form = await kit.read_form(request)
        else:
            form = await request.form(max_files=0, max_fields=FORM_MAX_FIELDS, max_part_size=max_part_size)
        return await kit.open(request, client_id=text_field(form, "client_id", 100)), form

    # -- passkeys ------------------------------------------------------------------------------------
    def problem(page: Page, message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": kit.gettext(page, message)}, status_code=status)

    async def passkey_start(request: Request) -> Response:
        """JSON for ``passkey-sign-in.js``: ``{"publicKey": …}`` (``parseRequestOptionsFromJSON``'s input), or
        ``{"error": "…"}`` in the page's language."""
        page, form = await open_form(request)
        if kit.refusal(page, form, PASSKEY_START) is not None:
            return problem(page, PAGE_EXPIRED, 403)
        challenge_token = text_field(form, "challenge_token", 200) or None
        try:
            options = await passkeys.start_sign_in(page.ctx, challenge_token)
        except FeatureDisabled:
            return problem(page, PASSKEYS_OFF, 404)
        except InvalidToken:
            return problem(page, EXPIRED, 400)
        except RateLimited as exc:
            return JSONResponse({"error": steps.too_many(page, exc)}, status_code=429,
                                headers={"retry-after": str(exc.retry_after_seconds)})
        return JSONResponse({"publicKey": options.public_key})

    async def passkey(request: Request) -> Response:
        page, form = await open_form(request, CREDENTIAL_MAX_BYTES)
        refusal = kit.refusal(page, form, PASSKEY)
        if refusal is not None:
            return kit.refused(page, PASSKEY, refusal, kit.url(page, SIGN_IN))
        token, factors, next_path = code_form(form)
        try:
            credential = json.loads(text_field(form, "credential", CREDENTIAL_MAX_BYTES))
        except ValueError:
            credential = None  # refused by the use case as not a credential
        try:
            result = await passkeys.finish_sign_in(page.ctx, credential, challenge_token=token or None,
                                                   device_token=kit.sessions.device_token(request))
        except (InvalidCredentials, InvalidInput):
            if token:
                return steps.code_page(page, token, factors, 400, next_path=next_path,
                                       error=kit.gettext(page, PASSKEY_REFUSED))
            return await steps.sign_in_page(page, 400, error=kit.gettext(page, PASSKEY_REFUSED), next_path=next_path)
        except InvalidToken:
            return await steps.expired(page, next_path)
        except FeatureDisabled:
            return await steps.sign_in_page(page, 404, error=kit.gettext(page, PASSKEYS_OFF), next_path=next_path)
        except AccountNotActivated:
            return await steps.sign_in_page(page, 400, error=kit.gettext(page, NOT_ACTIVATED), next_path=next_path)
        except RateLimited as exc:
            if token:
                return steps.code_page(page, token, factors, 429, next_path=next_path, error=steps.too_many(page, exc))
            return await steps.sign_in_page(page, 429, error=steps.too_many(page, exc), next_path=next_path)
        return steps.outcome(page, result, next_path)

    # -- social identities ---------------------------------------------------------------------------
    async def social_start(request: Request) -> Response:
        """A provider's button: a link (``GET``) carrying the page's CSRF token for this path, since a form
        posted here could not be redirected on to the provider under the pages' ``form-action 'self'``."""
        if request.method == "HEAD":  # a link preview: look, never start anything
            return Response(status_code=204)
        page = await kit.open(request)
        params = request.query_params
        refusal = kit.refusal(page, params, SOCIAL)
        if refusal is not None:
            return kit.refused(page, SOCIAL, refusal, kit.url(page, SIGN_IN))
        next_path = params.get("next", "")[:MAX_NEXT + 1]
        try:
            started = await social.start_sign_in(page.ctx, params.get("provider", "")[:101],
                                                 hosted_next=safe_next(next_path))
        except NotFound:
            return await steps.sign_in_page(page, 404, error=kit.gettext(page, PROVIDER_UNKNOWN), next_path=next_path)
        except RateLimited as exc:
            return await steps.sign_in_page(page, 429, error=steps.too_many(page, exc), next_path=next_path)
        return RedirectResponse(started.authorization_url, status_code=303)  # /oauth/start: binds this browser

    async def social_return(request: Request) -> Response:
        """Where a flow started on these pages comes back: ``?grant=`` (exchanged here, with this browser's
        binding cookie) or ``?error=<code>`` (shown on the sign-in page)."""
        if request.method == "HEAD":  # a link preview: look, never use
            return Response(status_code=204)
        page = await kit.open(request)
        params = request.query_params
        next_path = safe_next(params.get("next"))
        grant = params.get("grant", "")[:MAX_GRANT + 1]
        if not grant:
            error = params.get("error", "")
            return kit.redirect(page, SIGN_IN, **({"error": error} if error in SIGN_IN_ERRORS else {}), next=next_path)
        binding = request.cookies.get(binding_cookie_name(kit.runtime.rules.public_url), "")
        try:
            result = await social.complete(page.ctx, grant, binding=binding)
        except (InvalidToken, InvalidInput):
            return kit.redirect(page, SIGN_IN, error=social.Refusal.EXPIRED.value, next=next_path)
        except (InvalidCredentials, AccountNotActivated):
            return kit.redirect(page, SIGN_IN, error=social.Refusal.SIGN_IN_FAILED.value, next=next_path)
        except RateLimited as exc:
            return await steps.sign_in_page(page, 429, error=steps.too_many(page, exc), next_path=next_path)
        return steps.outcome(page, result, next_path)

    # -- emailed links and codes ---------------------------------------------------------------------
    def email_page(page: Page, status: int = 200, *, state: str = "form", email: str = "", next_path: str = "",
                   error: str = "") -> Response:
        return kit.render(page, "sign_in_email.html", status, title=kit.gettext(page, "Sign in with an emailed link"),
                          state=state, email=email, next=next_path, error=error)

    def unavailable(page: Page) -> Response:
        return kit.render(page, "notice.html", 404, title=kit.gettext(page, "Sign in with an emailed link"),
                          heading=kit.gettext(page, "This is not available here"),
                          text=kit.gettext(page, "%(application)s does not offer this. Go back to the sign-in page.",
                                           application=page.application.name), back=kit.url(page, SIGN_IN))

    async def email_link(request: Request) -> Response:
        if request.method == "GET":
            page = await kit.open(request)
            if not page.ctx.policy.email_sign_in.enabled:
                return unavailable(page)
            next_path = request.query_params.get("next", "")
            return email_page(page, next_path=next_path if safe_next(next_path) == next_path else "")
        page, form = await open_form(request)
        refusal = kit.refusal(page, form, EMAIL_LINK)
        if refusal is not None:
            return kit.refused(page, EMAIL_LINK, refusal, kit.url(page, EMAIL_LINK))
        email, next_path = text_field(form, "email", MAX_EMAIL_INPUT), text_field(form, "next", MAX_NEXT)
        try:
            await email_sign_in.request(page.ctx, email, hosted_next=safe_next(next_path))
        except FeatureDisabled:
            return unavailable(page)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"email": "email"})
            return email_page(page, 400, email=email, next_path=next_path)
        except RateLimited:
            return email_page(page, 429, email=email, next_path=next_path, error=kit.gettext(page, BUSY))
        return email_page(page, state="sent", email=email, next_path=next_path)

    async def email_code(request: Request) -> Response:
        page, form = await open_form(request)
        refusal = kit.refusal(page, form, EMAIL_CODE)
        if refusal is not None:
            return kit.refused(page, EMAIL_CODE, refusal, kit.url(page, EMAIL_LINK))
        email, next_path = text_field(form, "email", MAX_EMAIL_INPUT), text_field(form, "next", MAX_NEXT)
        again = {"state": "sent", "email": email, "next_path": next_path}
        try:
            result = await email_sign_in.verify_code(page.ctx, email, text_field(form, "code", 100),
                                                     device_token=kit.sessions.device_token(request))
        except FeatureDisabled:
            return unavailable(page)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"code": "code", "email": "email"})
            if "email" in page.errors:  # the address (a hidden field) was changed: ask for it again
                return email_page(page, 400, email=email, next_path=next_path)
            return email_page(page, 400, **again)
        except InvalidCredentials as exc:
            page.errors = {"code": kit.gettext(page, exc.message)}
            return email_page(page, 400, **again)
        except AccountNotActivated:
            return email_page(page, 400, error=kit.gettext(page, NOT_ACTIVATED), **again)
        except RateLimited as exc:
            return email_page(page, 429, error=steps.too_many(page, exc), **again)
        return steps.outcome(page, result, next_path)

    def route(path: str, handler, methods: list[str]) -> Route:
        return page_route(kit, path, handler, methods)

    return [
        route(PASSKEY_START, passkey_start, ["POST"]),
        route(PASSKEY, passkey, ["POST"]),
        route(SOCIAL, social_start, ["GET"]),
        route(SOCIAL_RETURN, social_return, ["GET"]),
        route(EMAIL_LINK, email_link, ["GET", "POST"]),
        route(EMAIL_CODE, email_code, ["POST"]),
    ]
