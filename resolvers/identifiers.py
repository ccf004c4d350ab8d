"""Login identifiers (email addresses and usernames): what is accepted, and the one form they are compared in.

Two identifiers that look the same must be the same account. So an identifier is refused when it
holds characters a person cannot see (Unicode's Default_Ignorable_Code_Point property: zero-width
spaces and joiners, soft hyphens, fillers, bidi controls, variation selectors...), and it is
compared in one form (:func:`normalize_identifier`: NFKC, trimmed, case-folded), which is also the
form every rate limit on it is keyed on.

Email syntax is checked by the ``email-validator`` library (RFC 5321/5322 and RFC 6531 for
internationalised addresses; syntax only, no DNS): ``kate..doe@example.com``, a trailing dot, a
domain without a dot and the special-use domains of RFC 6761 (``.test``, ``.localhost``...) are refused.
"""

from __future__ import annotations

import re
import unicodedata

import regex
from email_validator import EmailNotValidError
from email_validator import validate_email as _validate_email_syntax

from resolvers.errors import Problems
from resolvers.security import is_text

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit, as email-validator enforces it
USERNAME_RE = re.compile(r"^[\w.\-]{3,64}$")  # no "@", so a username never collides with an email
# Characters that render as nothing or as blank space: default-ignorable code points, controls,
# surrogates, private use, unassigned, every space and line separator, and the blank Braille pattern.
INVISIBLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cs}\p{Co}\p{Cn}\p{Z}\u2800]")


def normalize_identifier(value: str) -> str:
    """The comparison form of an email or username: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def name_norm(name: str | None) -> str | None:
    """The searchable copy of a person's name (``given_name_norm``, ``family_name_norm``), or None."""
    return normalize_identifier(name) if name else None


def identifier_key(value: str) -> str:
    """The form an identifier typed at sign-in is looked up (and rate-limited) in: the stored form.

    An email address is first brought to the display form registration stores (email-validator's:
    IDNA domains decoded, so ``kate@xn--bcher-kva.com`` is ``kate@bücher.com``), then compared as
    :func:`normalize_identifier`. Anything else (a username, a malformed address) is just normalised.
    """
    value = value.strip()
    if "@" in value and is_text(value) and len(value) <= MAX_EMAIL_LENGTH and not has_invisible(value):
        try:
            value = _validate_email_syntax(value, check_deliverability=False).normalized
        except EmailNotValidError:
            pass
    return normalize_identifier(value)


def has_invisible(value: str) -> bool:
    """True when the value holds a character that renders as nothing (or is not assigned, or is a control)."""
    return INVISIBLE.search(value) is not None


def validate_email(problems: Problems, email: str | None, field: str = "email") -> str:
    """The address in its normalised display form (domain lower-cased, IDNA decoded, NFC), or a problem.

    Refuses, as ``INVALID`` with the library's own explanation: bad syntax, invisible characters,
    special-use domains, addresses over 254 characters. An empty value is ``REQUIRED``.
    """
    email = (email or "").strip()
    if not email:
        problems.add(field, "REQUIRED", "Enter an email address.")
        return email
    if len(email) > MAX_EMAIL_LENGTH or not is_text(email):
        problems.add(field, "INVALID", "Enter a valid email address.")
        return email
    if has_invisible(email):
        problems.add(field, "INVALID", "Remove the invisible characters from this email address.")
        return email
    try:
        checked = _validate_email_syntax(email, check_deliverability=False)
    except EmailNotValidError as exc:
        problems.add(field, "INVALID", str(exc) or "Enter a valid email address.")
        return email
    return checked.normalized


def validate_username(problems: Problems, username: str | None, field: str = "username") -> str:
    username = (username or "").strip()
    if not username:
        problems.add(field, "REQUIRED", "Choose a username.")
    elif not USERNAME_RE.match(username) or has_invisible(username):
        problems.add(field, "INVALID", "Use 3 to 64 letters, digits, dots, dashes or underscores.")
    return username
