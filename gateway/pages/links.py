"""The landings of emailed links. They call the same resolvers as the API.

- **Confirm-link pages** (``CONFIRM_LINKS``): an emailed link that changes state lands on a page with
  a confirm button. ``GET`` and ``HEAD`` only look at the link (``peek``: never consume, never write);
  the form ``POST``, with the page's CSRF token (``gateway/csrf.py``), uses it (``consume``). A mail
  scanner that opens the link, and follows whatever the page links to, changes nothing. Each kind of
  link is one ``ConfirmLinkPage`` entry; activation is the first.
- **Admin set-password pages** (``SET_PASSWORD_PAGES``: ``/admin/invitation``, ``/admin/reset-password``):
  ``GET`` only checks the link and shows a password form; the form ``POST`` (CSRF-checked, as above)
  calls the same use case as the API (``adminInvitationAccept``, ``adminPasswordReset``).

(The customer's password-reset page is a public journey: ``gateway/pages/public.py``.) Pages act for
the application that issued the link (``PageKit.open(link_token=...)``), send ``no-store`` and
``no-referrer`` (``SecurityHeaders``), and work without JavaScript.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.pages.i18n import N_
from gateway.pages.kit import Page, PageKit
from resolvers import account, admins, email_sign_in, links, profile, registration
from resolvers.context import Context
from resolvers.errors import InvalidInput, InvalidToken, PasswordMismatch, PasswordPolicyViolation, RateLimited
from resolvers.links import LinkState


@dataclass(frozen=True)
class ConfirmLinkPage:
    """One kind of emailed link that changes state, and the words of its landing page.

    ``peek(ctx, token)`` says what the link would do (``USABLE``, ``ALREADY_DONE``, ``INVALID``) and
    must only read; ``consume(ctx, token)`` uses it up (``CONFIRMED``, ``ALREADY_DONE``, ``INVALID``).
    Texts are English message ids marked with ``N_`` (translated when shown) and may name the
    application as ``%(application)s``. With ``resend``, the invalid page offers a form (``POST
    {path}/resend``, field ``email``) that asks for a new link. A ``consume`` that puts a URL in
    ``ctx.extras["redirect_to"]`` (one it checked against the application's redirect URLs) sends the
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
        path="/activate", purpose=registration.ACTIVATION, title=N_("Account activation"),
        question_heading=N_("Activate your account"),
        question=N_("Confirm that you want to activate your %(application)s account."),
        button=N_("Activate my account"),
        confirmed_heading=N_("Your account is activated"),
        confirmed_text=N_("You can now sign in to %(application)s."),
        already_heading=N_("Your account is already active"),
        already_text=N_("This link was used before. You can sign in to %(application)s."),
        invalid_heading=N_("This link is invalid or has expired"),
        invalid_text=N_("Activation links work once and expire. Ask for a new one:"),
        peek=registration.peek_activation, consume=registration.confirm_activation,
        resend=registration.resend_activation,
        resent_text=N_("If a pending account uses this address, we have emailed a new link."),
    ),
    ConfirmLinkPage(
        path="/email-change", purpose=profile.EMAIL_CHANGE, title=N_("Email address change"),
        question_heading=N_("Confirm your new email address"),
        question=N_("Confirm that you want to sign in to %(application)s with this email address from now on."),
        button=N_("Use this address"),
        confirmed_heading=N_("Your email address is changed"),
        confirmed_text=N_("Sign in to %(application)s with this address from now on."),
        already_heading=N_("Your email address is already changed"),
        already_text=N_("This link was used before. Sign in to %(application)s with this address."),
        invalid_heading=N_("This link is invalid or has expired"),
        invalid_text=N_("Email change links work once and expire, and the address must still be free. "
                        "Sign in to %(application)s and ask for a new one."),
        peek=profile.peek_email_change, consume=profile.confirm_email_change_link,
    ),
    ConfirmLinkPage(
        path=account.UNDO_PATH, purpose=account.UNDO_PURPOSE, title=N_("Keep your account"),
        question_heading=N_("Keep your account"),
        question=N_("Your %(application)s account is waiting to be deleted. Confirm that you want to keep it."),
        button=N_("Keep my account"),
        confirmed_heading=N_("Your account is restored"),
        confirmed_text=N_("It will not be deleted. Sign in to %(application)s again with your usual credentials."),
        already_heading=N_("Your account was already restored"),
        already_text=N_("This link was used before. You can sign in to %(application)s."),
        invalid_heading=N_("This link is invalid or has expired"),
        invalid_text=N_("Undo links work once, and only until the account is deleted."),
        peek=account.peek_undo, consume=account.confirm_undo,
    ),
    ConfirmLinkPage(
        path=email_sign_in.LINK_PATH, purpose=email_sign_in.PURPOSE, title=N_("Sign in"),
        question_heading=N_("Sign in"),
        question=N_("Confirm that you want to sign in to %(application)s in this browser."),
        button=N_("Sign me in"),
        confirmed_heading=N_("You are signed in"), confirmed_text=N_("Return to %(application)s to continue."),
        already_heading=N_("This link was used already"),
        already_text=N_("Sign-in links work once. Ask %(application)s for a new one."),
        invalid_heading=N_("This link is invalid or has expired"),
        invalid_text=N_("Sign-in links work once, within 10 minutes of being sent. "
                        "Ask %(application)s for a new one."),
        peek=email_sign_in.peek_link, consume=email_sign_in.confirm_link,
    ),
)


@dataclass(frozen=True)
class SetPasswordPage:
    """An emailed link with which an admin sets a password, and the words of its page (``N_`` marked).

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
        path=admins.INVITATION_PAGE, purpose=admins.INVITATION, title=N_("Admin invitation"),
        heading=N_("Choose your admin password"), button=N_("Accept the invitation"),
        done_heading=N_("Your admin account is ready"),
        done_text=N_("Sign in with your email and your new password."),
        invalid_text=N_("Invitation links work once and expire. Ask an owner to invite you again."),
        submit=admins.accept_invitation,
    ),
    SetPasswordPage(
        path=admins.RESET_PAGE, purpose=admins.PASSWORD_RESET, title=N_("Admin password reset"),
        heading=N_("Choose a new admin password"), button=N_("Set new password"),
        done_heading=N_("Your password has been changed"),
        done_text=N_("Every session was signed out. Sign in with your new password."),
        invalid_text=N_("Reset links work once and expire. Ask for a new one (adminPasswordResetRequest)."),
        submit=admins.reset_password,
    ),
)

# Links whose confirmed page is answered by the module that owns the outcome, by purpose: answer(kit, page)
# gives the response, or None for the usual one. A sign-in link asked for on the hosted pages signs the
# browser in (the session cookie, or the second-factor step): gateway/pages/sign_in_methods.py.
CONFIRMED_ANSWERS: dict[str, Callable[[PageKit, Page], Response | None]] = {}

PATHS = frozenset({*(path for entry in CONFIRM_LINKS for path in (entry.path, entry.resend_path) if path),
                   *(page.path for page in SET_PASSWORD_PAGES)})

STATUS = {LinkState.USABLE: 200, LinkState.CONFIRMED: 200, LinkState.ALREADY_DONE: 200, LinkState.INVALID: 400}


def _again(path: str, token: str) -> str:
    return f"{path}?{urlencode({'token': token})}" if token else path


def routes(kit: PageKit) -> list[Route]:
    """The routes of every confirm-link page and admin set-password page."""

    def confirm_link_routes(entry: ConfirmLinkPage) -> list[Route]:
        def show(page: Page, state: LinkState, token: str = "", resent: str = "") -> Response:
            """``resent``: what became of a re-send form: "sent", "busy" (try again) or an input problem."""
            status = {"": STATUS[state], "sent": 200, "busy": 429}.get(resent, 400)
            return kit.render(page, "confirm_link.html", status, title=kit.gettext(page, entry.title),
                              page=entry, state=str(state), token=token, resent=resent,
                              words={key: kit.gettext(page, getattr(entry, key), application=page.application.name)
                                     for key in ("question", "confirmed_text", "already_text", "invalid_text")})

        async def landing(request: Request) -> Response:
            if request.method == "POST":
                form = await kit.read_form(request)
                token = str(form.get("token", ""))[:links.MAX_TOKEN_LENGTH + 1]
                page = await kit.open(request, link_token=token)
                refusal = kit.refusal(page, form, entry.path)
                if refusal is not None:
                    return kit.refused(page, entry.path, refusal, _again(entry.path, token))
                state = await entry.consume(page.ctx, token)
                answer = CONFIRMED_ANSWERS.get(entry.purpose) if state is LinkState.CONFIRMED else None
                answered = answer(kit, page) if answer is not None else None
                if answered is not None:
                    return answered
                target = page.ctx.extras.get(email_sign_in.REDIRECT_TO)
                if state is LinkState.CONFIRMED and target:
                    return RedirectResponse(target, status_code=303)
                return show(page, state)
            token = request.query_params.get("token", "")
            page = await kit.open(request, link_token=token)
            state = await entry.peek(page.ctx, token)
            return show(page, state, token if state is LinkState.USABLE else "")

        async def resend(request: Request) -> Response:
            form = await kit.read_form(request)
            page = await kit.open(request, client_id=str(form.get("client_id", "")) or None, fallback=True)
            refusal = kit.refusal(page, form, entry.resend_path)
            if refusal is not None:
                return kit.refused(page, entry.resend_path, refusal, entry.path)
            try:
                await entry.resend(page.ctx, str(form.get("email", ""))[:320])
            except RateLimited:
                return show(page, LinkState.INVALID, resent="busy")
            except InvalidInput as exc:
                return show(page, LinkState.INVALID, resent=kit.gettext(page, exc.problems[0].message))
            return show(page, LinkState.INVALID, resent="sent")

        found = [Route(entry.path, landing, methods=["GET", "POST"])]  # HEAD comes with GET
        if entry.resend:
            found.append(Route(entry.resend_path, resend, methods=["POST"]))
        return found

    def set_password_route(entry: SetPasswordPage) -> Route:
        def show(page: Page, state: str, status: int, token: str = "", error: str = "") -> Response:
            return kit.render(page, "set_password.html", status, title=kit.gettext(page, entry.title), page=entry,
                              state=state, token=token, error=error,
                              min_length=max(admins.MIN_PASSWORD_LENGTH, page.ctx.policy.password_policy.min_length))

        async def landing(request: Request) -> Response:
            if request.method == "GET":
                token = request.query_params.get("token", "")
                page = await kit.open(request, link_token=token)
                if await admins.link_is_usable(page.ctx, entry.purpose, token):
                    return show(page, "form", 200, token)
                return show(page, "invalid", 400)
            form = await kit.read_form(request)
            token = str(form.get("token", ""))[:links.MAX_TOKEN_LENGTH + 1]
            page = await kit.open(request, link_token=token)
            refusal = kit.refusal(page, form, entry.path)
            if refusal is not None:
                return kit.refused(page, entry.path, refusal, _again(entry.path, token))
            try:
                await entry.submit(page.ctx, token, str(form.get("password", "")),
                                   str(form.get("confirm_password", "")))
            except InvalidToken:
                return show(page, "invalid", 400)
            except PasswordMismatch:
                return show(page, "form", 400, token, kit.gettext(page, "The passwords do not match."))
            except PasswordPolicyViolation as exc:
                return show(page, "form", 400, token, password_advice(kit, page, exc))
            except RateLimited:
                return show(page, "form", 429, token, kit.gettext(page, "Too many attempts. Please try again later."))
            return show(page, "done", 200)

        return Route(entry.path, landing, methods=["GET", "POST"])

    return [*(route for entry in CONFIRM_LINKS for route in confirm_link_routes(entry)),
            *(set_password_route(entry) for entry in SET_PASSWORD_PAGES)]


PASSWORD_REASONS = {
    "TOO_SHORT": N_("Use at least %(number)s characters."),
    "TOO_LONG": N_("Use at most %(number)s characters."),
    "COMMON": N_("This password is too common; choose another."),
    "CONTAINS_IDENTIFIER": N_("Do not use your email or username as your password."),
}


def password_advice(kit: PageKit, page: Page, violation: PasswordPolicyViolation) -> str:
    """What the password policy refused, in the page's language (the reasons' stable codes, translated)."""
    advice = []
    for reason in violation.reasons:
        code, _, detail = reason.partition(": ")
        number = next((word for word in detail.split() if word.isdigit()), "")
        message = PASSWORD_REASONS.get(code)
        advice.append(kit.gettext(page, message, number=number) if message else detail or reason)
    return " ".join(advice)
