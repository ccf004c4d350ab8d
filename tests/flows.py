"""Reusable customer journeys, each through the public GraphQL API (or a hosted page, as a browser would)."""

from __future__ import annotations

import httpx

from tests.support import GraphQLClient, Mailbox, assert_no_errors, hidden_fields

REGISTER = """
mutation Register($input: AccountRegisterInput!) {
  accountRegister(input: $input) {
    __typename
    ... on AccountRegisterAccepted { requiresActivation }
    ... on Error { code message field }
    ... on InvalidInputError { fields { field code message } }
    ... on PasswordPolicyError { reasons }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

ACTIVATE = """
mutation Activate($token: String!) {
  accountActivate(token: $token) { __typename ... on Error { code message } }
}
"""

SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    __typename
    ... on SessionCreated { token session { id expiresAt } }
    ... on Error { code message field }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

ME = """
query Me {
  me { id username email emailVerified givenName familyName createdAt
       sessions { id createdAt lastSeenAt ipAddress userAgent current } }
}
"""

SIGN_OUT = "mutation { sessionEnd { ended } }"

PASSWORD = "correct horse battery staple"


async def register(gql: GraphQLClient, email: str, password: str = PASSWORD, headers: dict | None = None,
                   **extra) -> dict:
    data = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": password, **extra}},
                                      headers=headers))
    return data["accountRegister"]


async def activation_token(mailbox: Mailbox, email: str) -> str:
    mail = await mailbox.wait_for(email, "activ")  # "Activate …", "Activez …": the mail speaks the customer's locale
    return mail.token("/activate")


async def confirm_from_page(http: httpx.AsyncClient, path: str, token: str,
                            headers: dict | None = None) -> httpx.Response:
    """Open an emailed link's page and press its confirm button, as a browser without JavaScript does.

    ``http`` must keep cookies (an ``httpx.AsyncClient`` does): the form's CSRF token is bound to one.
    """
    page = await http.get(path, params={"token": token}, headers=headers)
    assert page.status_code == 200, (page.status_code, page.text)
    return await http.post(path, data=hidden_fields(page.text, path), headers=headers)


async def sign_in(gql: GraphQLClient, identifier: str, password: str = PASSWORD, headers: dict | None = None) -> dict:
    """Sign in under the application ``headers`` name (a session works only for the application it was made in)."""
    data = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": identifier, "password": password}},
                                      headers=headers))
    return data["sessionCreate"]


async def active_customer(gql: GraphQLClient, mailbox: Mailbox, email: str, password: str = PASSWORD,
                          headers: dict | None = None, **extra) -> str:
    """Register, activate from the mailed link and sign in; returns the session token."""
    accepted = await register(gql, email, password, headers=headers, **extra)
    assert accepted["__typename"] == "AccountRegisterAccepted", accepted
    token = await activation_token(mailbox, email)
    assert (assert_no_errors(await gql(ACTIVATE, {"token": token})))["accountActivate"]["__typename"] == "AccountActivated"
    session = await sign_in(gql, email, password, headers=headers)
    assert session["__typename"] == "SessionCreated", session
    return session["token"]

ADMIN_SIGN_IN = """
mutation AdminSignIn($input: AdminSessionCreateInput!) {
  adminSessionCreate(input: $input) { __typename ... on SessionCreated { token } ... on Error { code message } }
}
"""

ADMIN_PASSWORD = "a long and unguessable admin passphrase"


async def admin_token(runtime, gql: GraphQLClient, role: str = "owner") -> str:
    """Create an admin with this role through the same use case as the CLI, and sign it in."""
    import uuid

    from resolvers.admins import create_admin
    from resolvers.context import RequestMeta

    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    await create_admin(ctx, email, ADMIN_PASSWORD, role)
    result = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": ADMIN_PASSWORD}}))
    assert result["adminSessionCreate"]["__typename"] == "SessionCreated", result
    return result["adminSessionCreate"]["token"]


async def new_application(runtime, *, name: str = "Other App", **policy_fields) -> tuple[str, str]:
    """Insert an application with its own policy; returns (application id, client id)."""
    import uuid

    from stores import config
    from stores.documents import ApplicationDocument, PolicyDocument

    suffix = uuid.uuid4().hex[:10]
    now = runtime.clock.now()
    await config.insert_if_missing(PolicyDocument(id=f"policy-{suffix}", name=f"Policy {suffix}", created_at=now,
                                                  **policy_fields))
    await config.insert_if_missing(ApplicationDocument(
        id=f"app-{suffix}", client_id=f"client-{suffix}", name=name, policy_id=f"policy-{suffix}",
        identity_store_id="default", created_at=now))
    return f"app-{suffix}", f"client-{suffix}"


async def isolated_application(runtime, **policy_fields) -> tuple[str, str, str]:
    """An application with its own policy and its own, empty identity store (so an admin listing for it
    holds only what the test puts there); returns (application id, client id, identity store id)."""
    import uuid

    from stores import config
    from stores.documents import IdentityStoreDocument

    application_id, client_id = await new_application(runtime, **policy_fields)
    store_id = f"store-{uuid.uuid4().hex[:10]}"
    await config.insert_if_missing(IdentityStoreDocument(id=store_id, name=store_id, created_at=runtime.clock.now()))
    await config.update_application(application_id, {"identity_store_id": store_id})
    runtime.forget_applications()
    return application_id, client_id, store_id


def stored_customer(store_id: str, created_at, *, email: str | None = None, status: str = "active", **fields):
    """A customer document as registration would store it (no password: the listing never needs one)."""
    import uuid

    from resolvers.identifiers import name_norm
    from stores.documents import CustomerDocument

    email = email or f"c-{uuid.uuid4().hex[:12]}@example.com"
    return CustomerDocument(id=uuid.uuid4().hex, store_id=store_id, email=email, email_norm=email.lower(),
                            username=email, username_norm=email.lower(), status=status, created_at=created_at,
                            given_name_norm=name_norm(fields.get("given_name")),
                            family_name_norm=name_norm(fields.get("family_name")), **fields)


async def link_identity(customer_id: str, provider: str = "google", email: str | None = None):
    """Link a social identity to a customer through the store (the social sign-in flow comes later)."""
    import uuid

    from stores import login_methods
    from stores.documents import LinkedIdentity

    identity = LinkedIdentity(id=uuid.uuid4().hex, provider=provider, subject=f"{provider}-{uuid.uuid4().hex[:8]}",
                              email=email, linked_at_ms=1_700_000_000_000)
    assert await login_methods.add_linked_identity(customer_id, identity)
    return identity


async def add_totp_factor(customer_id: str, now, secret: str = "sealed-totp-secret"):
    """Give a customer a confirmed TOTP factor through the store, with this (stand-in) sealed secret."""
    import uuid

    from stores.documents import FactorType, MfaFactorDocument

    factor = MfaFactorDocument(id=uuid.uuid4().hex, customer_id=customer_id, type=FactorType.TOTP, confirmed=True,
                               secret=secret, created_at=now)
    await MfaFactorDocument.get_pymongo_collection().insert_one(factor.model_dump(by_alias=True))
    return factor


async def record_consent(customer_id: str, application_id: str, key: str, now, *, ip_address: str = "203.0.113.5",
                         user_agent: str = "Consenting Browser") -> None:
    """Append a granted consent event (version 1) through the store."""
    import uuid

    from stores import consents
    from stores.documents import ConsentEventDocument

    await consents.append(ConsentEventDocument(
        id=uuid.uuid4().hex, customer_id=customer_id, application_id=application_id, key=key, version=1,
        granted=True, at=now, ip_address=ip_address, user_agent=user_agent))


class SoftPasskey:
    """A passkey on a software authenticator (``soft-webauthn``), speaking the JSON forms browsers use:
    :meth:`create` takes ``PublicKeyCredentialCreationOptionsJSON`` and returns what
    ``credential.toJSON()`` gives, :meth:`get` likewise for a sign-in. ``user_verified`` sets the UV flag
    (soft-webauthn sets only user presence); ``sign_count`` can be set back to act as a clone."""

    def __init__(self, *, user_verified: bool = True) -> None:
        from soft_webauthn import SoftWebauthnDevice

        self.device = SoftWebauthnDevice()
        self.user_verified = user_verified

    @staticmethod
    def _b64(data: bytes) -> str:
        import base64

        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    @staticmethod
    def _bytes(text: str) -> bytes:
        import base64

        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    @property
    def credential_id(self) -> str:
        return self._b64(self.device.credential_id)

    @property
    def sign_count(self) -> int:
        return self.device.sign_count

    @sign_count.setter
    def sign_count(self, value: int) -> None:
        self.device.sign_count = value

    def _flags(self, flags: int) -> int:
        return flags | 0x04 if self.user_verified else flags

    def create(self, public_key: dict, origin: str) -> dict:
        from fido2 import cbor

        options = {"publicKey": {**public_key, "challenge": self._bytes(public_key["challenge"]),
                                 "user": {**public_key["user"], "id": self._bytes(public_key["user"]["id"])}}}
        made = self.device.create(options, origin)
        attestation = cbor.decode(made["response"]["attestationObject"])
        auth_data = bytearray(attestation["authData"])
        auth_data[32] = self._flags(auth_data[32])
        attestation["authData"] = bytes(auth_data)
        return {"id": self.credential_id, "rawId": self.credential_id, "type": "public-key",
                "response": {"clientDataJSON": self._b64(made["response"]["clientDataJSON"]),
                             "attestationObject": self._b64(cbor.encode(attestation)), "transports": ["internal"]},
                "clientExtensionResults": {}}

    def get(self, public_key: dict, origin: str, *, rp_id: str | None = None) -> dict:
        """An assertion for ``public_key`` (request options JSON) from ``origin``; ``rp_id`` signs for
        another relying party than the one it was made for (a wrong RP id)."""
        import json
        import struct

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from fido2.utils import sha256

        self.device.sign_count += 1
        client_data = json.dumps({"type": "webauthn.get", "challenge": public_key["challenge"],
                                  "origin": origin}).encode()
        auth_data = sha256((rp_id or self.device.rp_id).encode()) + bytes([self._flags(0x01)]) \
            + struct.pack(">I", self.device.sign_count)
        signature = self.device.private_key.sign(auth_data + sha256(client_data), ec.ECDSA(hashes.SHA256()))
        return {"id": self.credential_id, "rawId": self.credential_id, "type": "public-key",
                "response": {"clientDataJSON": self._b64(client_data), "authenticatorData": self._b64(auth_data),
                             "signature": self._b64(signature), "userHandle": self._b64(self.device.user_handle)},
                "clientExtensionResults": {}}
