"""What emails may say about a customer.

No text a registrant typed reaches an inbox whose owner has not proven it is theirs: anyone can
register someone else's address with a given name like "Your account is locked, visit ...", and the
real owner would read that sentence in our activation mail, under our name. So until the email is
verified, the view carries no given name, family name or chosen username (templates greet without
a name); the address itself is what the mail is sent to, so it is no news to its reader.
"""

from __future__ import annotations

from stores.documents import CustomerDocument


def customer_view(customer: CustomerDocument) -> dict[str, str | None]:
    """``customer`` in email templates: ``email``, ``username``, ``given_name``, ``family_name``."""
    if not customer.email_verified:
        return {"email": customer.email, "username": None, "given_name": None, "family_name": None}
    return {"email": customer.email, "username": customer.username,
            "given_name": customer.given_name, "family_name": customer.family_name}


def sign_in_hint(customer: CustomerDocument) -> str:
    """What to sign in with: the username once the address is verified, else the address."""
    return customer.username if customer.email_verified else customer.email
