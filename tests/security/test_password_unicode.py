"""Passwords are compared in one Unicode form, NFKC (Hardening II, item 8; NIST SP 800-63B 5.1.1.2).

Keyboards and input methods type the same password in different code points ("é" as one code point, or
"e" plus a combining accent; fullwidth letters from a CJK input method). The password is hashed,
verified and measured in NFKC; a hash made before that is verified once against the raw form and
replaced by a hash of the NFKC form.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

from tests.flows import ADMIN_SIGN_IN, REGISTER, active_customer, sign_in
from tests.support import assert_no_errors, unique_email

COMPOSED = "Crème brûlée à la française"  # NFC: what most keyboards send
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # letters followed by combining accents (macOS, some IMEs)
LIGATURES = "\ufb03\ufb03\ufb03"  # "ﬃﬃﬃ": 3 code points, "ffiffiffi" (9 characters) in NFKC


def fullwidth(text: str) -> str:
    """The fullwidth form of ASCII text, as a CJK input method types it; NFKC maps it back."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def hashed_from(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerifyMismatchError:
        return False


def legacy_hash(password: str) -> str:
    """A hash made before passwords were normalised: of the raw string, with the gateway's argon2id parameters
    (so only the Unicode form, not the parameters, can call for a rehash)."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                          type=Type.ID).hash(password)


@pytest.mark.parametrize(("registered", "typed"), [
    pytest.param(COMPOSED, DECOMPOSED, id="registered-nfc-typed-nfd"),
    pytest.param(DECOMPOSED, COMPOSED, id="registered-nfd-typed-nfc"),
    pytest.param(fullwidth("secret horse 42 battery"), "secret horse 42 battery",
                 id="registered-fullwidth-typed-ascii"),
])
async def test_a_password_signs_in_whichever_unicode_form_it_is_typed_in(gql, mailbox, registered, typed):
    # given a customer who registered a password typed in one Unicode form
    assert registered != typed and unicodedata.normalize("NFKC", registered) == unicodedata.normalize("NFKC", typed)
    email = unique_email("nfkc")
    await active_customer(gql, mailbox, email, registered)

    # when they sign in typing the same password in another form (another keyboard)
    result = await sign_in(gql, email, typed)

    # then they are signed in; a different password still is not
    assert result["__typename"] == "SessionCreated", result
    assert (await sign_in(gql, email, typed + "x"))["__typename"] == "InvalidCredentialsError"


async def test_the_length_rule_counts_the_form_that_is_hashed(gql, mailbox):
    # given the default policy (at least 8 characters)
    # when a password is 10 code points only because five of them are combining accents (5 letters in NFKC)
    padded = "a\u0301e\u0301i\u0301o\u0301u\u0301"
    assert len(padded) == 10
    short = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("short"), "password": padded}}))

    # then it is too short
    refused = short["accountRegister"]
    assert refused["__typename"] == "PasswordPolicyError", refused
    assert any(reason.startswith("TOO_SHORT") for reason in refused["reasons"]), refused

    # when a password is 3 code points that are 9 characters in NFKC
    email = unique_email("ligature")
    await active_customer(gql, mailbox, email, LIGATURES)

    # then the 9 characters the rule counted are the password: typed out letter by letter, they sign in
    assert (await sign_in(gql, email, "ffiffiffi"))["__typename"] == "SessionCreated"


async def test_a_common_password_typed_in_fullwidth_is_refused_as_common(gql):
    # given a password from the breached-password list, typed with a CJK input method (fullwidth letters)
    password = fullwidth("password123")
    assert password != "password123"

    # when someone registers with it
    result = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("common"), "password": password}}))

    # then it is refused as common: the policy checks the form that is hashed
    refused = result["accountRegister"]
    assert refused["__typename"] == "PasswordPolicyError", refused
    assert any(reason.startswith("COMMON") for reason in refused["reasons"]), refused


async def test_a_customer_hashed_before_normalisation_signs_in_and_is_rehashed_in_nfkc(gql):
    from stores.documents import CustomerDocument

    # given an active customer whose stored hash is of the raw NFD password, as made before the change
    collection = CustomerDocument.get_pymongo_collection()
    email = unique_email("legacy")
    customer_id = f"legacy-{uuid.uuid4().hex}"
    document = CustomerDocument(
        id=customer_id, store_id="default", email=email, email_norm=email, username=email, username_norm=email,
        password_hash=legacy_hash(DECOMPOSED), status="active", email_verified=True,
        created_at=datetime.now(UTC)).model_dump(by_alias=True)
    await collection.insert_one({**document, "password_nfkc": False})

    # when they sign in typing the password as they always did (NFD)
    first = await sign_in(gql, email, DECOMPOSED)

    # then they are signed in, and the stored hash is now of the NFKC form, marked so
    assert first["__typename"] == "SessionCreated", first
    stored = CustomerDocument.model_validate(await collection.find_one({"_id": customer_id}))
    assert stored.password_nfkc is True
    assert hashed_from(stored.password_hash, unicodedata.normalize("NFKC", DECOMPOSED))
    assert not hashed_from(stored.password_hash, DECOMPOSED)

    # and from now on the password typed in NFC signs in too, and so does NFD
    assert (await sign_in(gql, email, COMPOSED))["__typename"] == "SessionCreated"
    assert (await sign_in(gql, email, DECOMPOSED))["__typename"] == "SessionCreated"


async def admin_sign_in(gql, email: str, password: str) -> str:
    result = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": password}}))
    return result["adminSessionCreate"]["__typename"]


async def test_an_admin_hashed_before_normalisation_signs_in_and_is_rehashed_in_nfkc(gql):
    from stores.documents import AdminDocument

    # given an admin whose stored hash is of the raw NFD password, as made before the change
    collection = AdminDocument.get_pymongo_collection()
    email = f"admin-legacy-{uuid.uuid4().hex[:10]}@example.com"
    admin_id = f"legacy-admin-{uuid.uuid4().hex}"
    document = AdminDocument(id=admin_id, email=email, email_norm=email, password_hash=legacy_hash(DECOMPOSED),
                             role="owner", created_at=datetime.now(UTC)).model_dump(by_alias=True)
    await collection.insert_one({**document, "password_nfkc": False})

    # when the admin signs in typing the password as they always did (NFD)
    first = await admin_sign_in(gql, email, DECOMPOSED)

    # then they are signed in, and the stored hash is now of the NFKC form, marked so
    assert first == "SessionCreated"
    stored = AdminDocument.model_validate(await collection.find_one({"_id": admin_id}))
    assert stored.password_nfkc is True
    assert hashed_from(stored.password_hash, unicodedata.normalize("NFKC", DECOMPOSED))
    assert not hashed_from(stored.password_hash, DECOMPOSED)

    # and from now on the password typed in NFC signs in too, and so does NFD
    assert await admin_sign_in(gql, email, COMPOSED) == "SessionCreated"
    assert await admin_sign_in(gql, email, DECOMPOSED) == "SessionCreated"
