"""A stored hash made with older argon2 parameters is upgraded at the next successful sign-in."""

from __future__ import annotations

from tests.conftest import running_gateway
from tests.flows import active_customer, sign_in
from tests.support import GraphQLClient, unique_email


async def test_sign_in_rehashes_with_current_parameters(gateway, settings, clock, mailbox):
    from stores.documents import CustomerDocument

    email = unique_email("rehash")
    # given an account whose password was hashed with weaker parameters
    old = settings.model_copy(update={"argon2_time_cost": 1, "argon2_memory_kib": 8 * 1024})
    async with running_gateway(old, clock) as (_, http):
        await active_customer(GraphQLClient(http), mailbox, email)
    before = (await CustomerDocument.get_pymongo_collection().find_one({"email": email}))["password_hash"]
    assert "$m=8192,t=1,p=1$" in before

    # when the customer signs in on a gateway with the OWASP parameters
    async with running_gateway(settings, clock) as (_, http):
        assert (await sign_in(GraphQLClient(http), email))["__typename"] == "SessionCreated"

    # then the stored hash uses them, and the password still works
    after = (await CustomerDocument.get_pymongo_collection().find_one({"email": email}))["password_hash"]
    assert "$m=19456,t=2,p=1$" in after
    async with running_gateway(settings, clock) as (_, http):
        assert (await sign_in(GraphQLClient(http), email))["__typename"] == "SessionCreated"
