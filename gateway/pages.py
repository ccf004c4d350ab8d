"""Hosted HTML pages: the landings of emailed links. They call the same resolvers as the API.

- **Confirm-link pages** (``CONFIRM_LINKS``): an emailed link that changes state lands on a page with
  a confirm button. ``GET`` and ``HEAD`` only look at the link (``peek``: never consume, never write);
  the form ``POST``, with the page's CSRF token (``gateway/csrf.py``), uses it (``consume``). A mail
  scanner that opens the link, and follows whatever the page links to, changes nothing. Each kind of
  link is one ``ConfirmLinkPage`` entry; activation is the first.
- **The password-reset dialog** (``/reset-password``): the page only checks the token; its script
  calls the ``passwordReset`` mutation, which consumes it.
- **Admin set-password pages** (``SET_PASSWORD_PAGES``: ``/admin/invitation``, ``/admin/reset-password``):
  ``GET`` only checks the link and shows a password form; the form ``POST`` (CSRF-checked, as above)
  calls the same use case as the API (``adminInvitationAccept``, ``adminPasswordReset``). No JavaScript.

Pages act for the application that issued the link (``page_context``), send ``no-store`` and
``no-referrer`` (``SecurityHeaders``), and work without JavaScript except the reset dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.csrf import FIELD as CSRF_FIELD
from gateway.csrf import CsrfProtection
from gateway.runtime import Runtime, UnknownApplication
from resolvers import account, admins, email_sign_in, links, profile, recovery, registration
from resolvers.context import Context, RequestMeta
from resolvers.errors import (
    DomainError,
    InvalidInput,
    InvalidToken,
    PasswordMismatch,
    PasswordPolicyViolation,
    RateLimited,
)
from resolvers.links import LinkState

logger = logging.getLogger("gateway.pages")

STATIC = Path(__file__).parent / "static"
TEMPLATES = SandboxedEnvironment(loader=FileSystemLoader(Path(__file__).parent / "templates" / "pages"),
                                 autoescape=select_autoescape(default=True))
FORM_MAX_FIELDS = 10  # our forms have at most four; the whole body is bounded by HttpGuard (GATEWAY_MAX_BODY_BYTES)
FORM_MAX_FIELD_BYTES = 4096


@dataclass(frozen=True)
class ConfirmLinkPage:
    """One kind of emailed link that changes state, and the words of its landing page.

    ``peek(ctx, token)`` says what the link would do (``USABLE``, ``ALREADY_DONE``, ``INVALID``) and
    must only read; ``consume(ctx, token)`` uses it up (``CONFIRMED``, ``ALREADY_DONE``, ``INVALID``).
    Texts may name the application as ``{application}``. With ``resend``, the invalid page offers a
    form (``POST {path}/resend``, field ``email``) that asks for a new link. A ``consume`` that puts a URL
    in ``ctx.extras["redirect_to"]`` (one it checked against the application's redirect URLs) sends the
    browser there instead of showing the confirmed page (an emailed sign-in link hands over its grant).
    """

    path: str
    purpose: str
    title: str
    question_heading: str
    question: str
    button: str
    confirmed_heading: str
    confirmed_text: str
    already_heading: str
    already_text: str
    invalid_heading: str
    invalid_text: str
    peek: Callable[[Context, str], Awaitable[LinkState]]
    consume: Callable[[Context, str], Awaitable[LinkState]]
    resend: Callable[[Context, str], Awaitable[None]] | None = None
    resent_text: str = ""

    @property
    def resend_path(self) -> str | None:
        return f"{self.path}/resend" if self.resend else None


CONFIRM_LINKS: tuple[ConfirmLinkPage, ...] = (
    ConfirmLinkPage(
        path="/activate", purpose=registration.ACTIVATION, title="Account activation",
        question_heading="Activate your account",
        question="Confirm that you want to activate your {application} account.",
        button="Activate my account",
        confirmed_heading="Your account is activated", confirmed_text="You can now sign in to {application}.",
        already_heading="Your account is already active",
        already_text="This link was used before. You can sign in to {application}.",
        invalid_heading="This link is invalid or has expired",
        invalid_text="Activation links work once and expire. Ask for a new one:",
        peek=registration.peek_activation, consume=registration.confirm_activation,
        resend=registration.resend_activation,
        resent_text="If a pending account uses this address, we have emailed a new link.",
    ),
    ConfirmLinkPage(
        path="/email-change", purpose=profile.EMAIL_CHANGE, title="Email address change",
        question_heading="Confirm your new email address",
        question="Confirm that you want to sign in to {application} with this email address from now on.",
        button="Use this address",
        confirmed_heading="Your email address is changed",
        confirmed_text="Sign in to {application} with this address from now on.",
        already_heading="Your email address is already changed",
        already_text="This link was used before. Sign in to {application} with this address.",
        invalid_heading="This link is invalid or has expired",
        invalid_text="Email change links work once and expire, and the address must still be free. "
                     "Sign in to {application} and ask for a new one.",
        peek=profile.peek_email_change, consume=profile.confirm_email_change_link,
    ),
    ConfirmLinkPage(
        path=account.UNDO_PATH, purpose=account.UNDO_PURPOSE, title="Keep your account",
        question_heading="Keep your account",
        question="Your {application} account is waiting to be deleted. Confirm that you want to keep it.",
        button="Keep my account",
        confirmed_heading="Your account is restored",
        confirmed_text="It will not be deleted. Sign in to {application} again with your usual credentials.",
        already_heading="Your account was already restored",
        already_text="This link was used before. You can sign in to {application}.",
        invalid_heading="This link is invalid or has expired",
        invalid_text="Undo links work once, and only until the account is deleted.",
        peek=account.peek_undo, consume=account.confirm_undo,
    ),
    ConfirmLinkPage(
        path=email_sign_in.LINK_PATH, purpose=email_sign_in.PURPOSE, title="Sign in",
        question_heading="Sign in",
        question="Confirm that you want to sign in to {application} in this browser.",
        button="Sign me in",
        confirmed_heading="You are signed in", confirmed_text="Return to {application} to continue.",
        already_heading="This link was used already",
        already_text="Sign-in links work once. Ask {application} for a new one.",
        invalid_heading="This link is invalid or has expired",
        invalid_text="Sign-in links work once, within 10 minutes of being sent. Ask {application} for a new one.",
        peek=email_sign_in.peek_link, consume=email_sign_in.confirm_link,
    ),
)

@dataclass(frozen=True)
class SetPasswordPage:
    """An emailed link with which an admin sets a password, and the words of its page.

    ``submit(ctx, token, password, confirm_password)`` is the use case the API calls too; it raises
    InvalidToken, PasswordMismatch, PasswordPolicyViolation or RateLimited.
    """

    path: str
    purpose: str
    title: str
    heading: str
    button: str
    done_heading: str
    done_text: str
    invalid_text: str
    submit: Callable[[Context, str, str, str], Awaitable[Any]]


SET_PASSWORD_PAGES: tuple[SetPasswordPage, ...] = (
    SetPasswordPage(
        path=admins.INVITATION_PAGE, purpose=admins.INVITATION, title="Admin invitation",
        heading="Choose your admin password", button="Accept the invitation",
        done_heading="Your admin account is ready", done_text="Sign in with your email and your new password.",
        invalid_text="Invitation links work once and expire. Ask an owner to invite you again.",
        submit=admins.accept_invitation,
    ),
    SetPasswordPage(
        path=admins.RESET_PAGE, purpose=admins.PASSWORD_RESET, title="Admin password reset",
        heading="Choose a new admin password", button="Set new password",
        done_heading="Your password has been changed",
        done_text="Every session was signed out. Sign in with your new password.",
        invalid_text="Reset links work once and expire. Ask for a new one (adminPasswordResetRequest).",
        submit=admins.reset_password,
    ),
)

RESET_PAGE = "/reset-password"
RESET_SCRIPT = "/assets/reset-password.js"
PATHS = frozenset({*(path for entry in CONFIRM_LINKS for path in (entry.path, entry.resend_path) if path),
                   RESET_PAGE, RESET_SCRIPT})  # every page route, for the metrics' route label

PATHS = PATHS | frozenset(page.path for page in SET_PASSWORD_PAGES)

STATUS = {LinkState.USABLE: 200, LinkState.CONFIRMED: 200, LinkState.ALREADY_DONE: 200, LinkState.INVALID: 400}


async def page_context(runtime: Runtime, meta: RequestMeta, *, link_token: str | None = None,
                       client_id: str | None = None) -> Context:
    """Pages act for the application that issued the link: a browser sends no X-Application-Id."""
    application_id = await links.issuing_application(link_token) if link_token else None
    if application_id:
        application = await runtime.application_by_id(application_id)
        client_id = application.client_id if application else None
    try:
        return await runtime.context(client_id=client_id, principal=None, request=meta)
    except UnknownApplication:
        return await runtime.context(client_id=None, principal=None, request=meta)


def routes(runtime: Runtime, meta: Callable[[Request], RequestMeta]) -> list[Route]:
    """The page routes; ``meta`` reads a request's client IP, user agent, request id and locale."""
    csrf = CsrfProtection(runtime.rules.secret_key, runtime.rules.public_url)

    def render(request: Request, ctx: Context, name: str, status: int = 200, **variables) -> Response:
        forms = csrf.forms(request)
        body = TEMPLATES.get_template(name).render(
            application_name=ctx.application.name, client_id=ctx.application.client_id,
            csrf_field=CSRF_FIELD, csrf_token=forms.token, **variables)
        return forms.apply(HTMLResponse(body, status_code=status))

    async def read_form(request: Request) -> FormData:
        return await request.form(max_files=0, max_fields=FORM_MAX_FIELDS, max_part_size=FORM_MAX_FIELD_BYTES)

    def refused(request: Request, ctx: Context, action: str, reason: str, start_again: str) -> Response:
        """403, nothing done: the form was not sent from our page in this browser."""
        logger.warning("page form refused: %s on POST %s", reason, action)
        return render(request, ctx, "refused.html", 403, title="Please start again", start_again=start_again)

    def confirm_link_routes(entry: ConfirmLinkPage) -> list[Route]:
        def show(request: Request, ctx: Context, state: LinkState, token: str = "", resent: str = "") -> Response:
            """``resent``: what became of a re-send form: "sent", "busy" (try again) or an input problem."""
            application = ctx.application.name
            status = {"": STATUS[state], "sent": 200, "busy": 429}.get(resent, 400)
            return render(request, ctx, "confirm_link.html", status, title=entry.title,
                          page=entry, state=str(state), token=token, resent=resent,
                          words={key: getattr(entry, key).format(application=application) for key in (
                              "question", "confirmed_text", "already_text", "invalid_text")})

        async def landing(request: Request) -> Response:
            if request.method == "POST":
                form = await read_form(request)
                token = str(form.get("token", ""))[:links.MAX_TOKEN_LENGTH + 1]
                ctx = await page_context(runtime, meta(request), link_token=token)
                refusal = csrf.check(request, form, entry.path)
                if refusal is not None:
                    again = f"{entry.path}?{urlencode({'token': token})}" if token else entry.path
                    return refused(request, ctx, entry.path, refusal, again)
                state = await entry.consume(ctx, token)
                target = ctx.extras.get(email_sign_in.REDIRECT_TO)
                if state is LinkState.CONFIRMED and target:
                    return RedirectResponse(target, status_code=303)
                return show(request, ctx, state)
            token = request.query_params.get("token", "")
            ctx = await page_context(runtime, meta(request), link_token=token)
            state = await entry.peek(ctx, token)
            return show(request, ctx, state, token if state is LinkState.USABLE else "")

        async def resend(request: Request) -> Response:
            form = await read_form(request)
            ctx = await page_context(runtime, meta(request), client_id=str(form.get("client_id", ""))[:100] or None)
            refusal = csrf.check(request, form, entry.resend_path)
            if refusal is not None:
                return refused(request, ctx, entry.resend_path, refusal, entry.path)
            try:
                await entry.resend(ctx, str(form.get("email", ""))[:320])
            except RateLimited:
                return show(request, ctx, LinkState.INVALID, resent="busy")
            except InvalidInput as exc:
                return show(request, ctx, LinkState.INVALID, resent=exc.problems[0].message)
            return show(request, ctx, LinkState.INVALID, resent="sent")

        found = [Route(entry.path, landing, methods=["GET", "POST"])]  # HEAD comes with GET
        if entry.resend:
            found.append(Route(entry.resend_path, resend, methods=["POST"]))
        return found

    def set_password_route(page: SetPasswordPage) -> Route:
        def show(request: Request, ctx: Context, state: str, status: int, token: str = "", error: str = "") -> Response:
            return render(request, ctx, "set_password.html", status, title=page.title, page=page, state=state,
                          token=token, error=error,
                          min_length=max(admins.MIN_PASSWORD_LENGTH, ctx.policy.password_policy.min_length))

        async def landing(request: Request) -> Response:
            if request.method == "GET":
                token = request.query_params.get("token", "")
                ctx = await page_context(runtime, meta(request), link_token=token)
                if await admins.link_is_usable(ctx, page.purpose, token):
                    return show(request, ctx, "form", 200, token)
                return show(request, ctx, "invalid", 400)
            form = await read_form(request)
            token = str(form.get("token", ""))[:links.MAX_TOKEN_LENGTH + 1]
            ctx = await page_context(runtime, meta(request), link_token=token)
            refusal = csrf.check(request, form, page.path)
            if refusal is not None:
                again = f"{page.path}?{urlencode({'token': token})}" if token else page.path
                return refused(request, ctx, page.path, refusal, again)
            try:
                await page.submit(ctx, token, str(form.get("password", "")), str(form.get("confirm_password", "")))
            except InvalidToken:
                return show(request, ctx, "invalid", 400)
            except PasswordMismatch:
                return show(request, ctx, "form", 400, token, "The passwords do not match.")
            except PasswordPolicyViolation as exc:
                return show(request, ctx, "form", 400, token, "; ".join(r.split(": ", 1)[-1] for r in exc.reasons))
            except RateLimited:
                return show(request, ctx, "form", 429, token, "Too many attempts. Please try again later.")
            return show(request, ctx, "done", 200)

        return Route(page.path, landing, methods=["GET", "POST"])

    async def reset_password_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        ctx = await page_context(runtime, meta(request), link_token=token)
        try:
            await recovery.check_reset_token(ctx, token)
            valid = True
        except DomainError:
            valid = False
        return render(request, ctx, "reset_password.html", 200 if valid else 400, title="Reset your password",
                      valid=valid, token=token if valid else "", min_length=ctx.policy.password_policy.min_length)

    async def reset_password_script(request: Request) -> Response:
        return FileResponse(STATIC / "reset-password.js", media_type="text/javascript")

    return [
        *(route for entry in CONFIRM_LINKS for route in confirm_link_routes(entry)),
        Route(RESET_PAGE, reset_password_page, methods=["GET"]),
        Route(RESET_SCRIPT, reset_password_script, methods=["GET"]),
        *(set_password_route(page) for page in SET_PASSWORD_PAGES),
    ]
