"""Activation links: single use, 24 hours, and every refusal looks the same."""

from __future__ import annotations

import asyncio

from tests.flows import ACTIVATE, activation_token, register, sign_in
from tests.support import assert_no_errors, unique_email


async def activate(gql, token: str) -> dict:
    return assert_no_errors(await gql(ACTIVATE, {"token": token}))["accountActivate"]


async def pending_customer(gql, mailbox, prefix: str) -> tuple[str, str]:
    email = unique_email(prefix)
    await register(gql, email)
    return email, await activation_token(mailbox, email)


async def test_used_expired_and_wrong_tokens_get_the_same_refusal(gql, mailbox, clock):
    # given a link that was used, a link that expired, and a made-up one
    _, used = await pending_customer(gql, mailbox, "used")
    assert (await activate(gql, used))["__typename"] == "AccountActivated"
    expired_email, expired = await pending_customer(gql, mailbox, "expired")
    wrong = "x" * len(used)

    # when each is presented (the expired one a day and an hour later)
    again = await activate(gql, used)
    wrong_answer = await activate(gql, wrong)
    clock.advance(hours=25)
    late = await activate(gql, expired)

    # then all three get one and the same InvalidTokenError
    assert again["__typename"] == "InvalidTokenError"
    assert again == wrong_answer == late
    assert again["code"] == "INVALID_TOKEN"
    assert "request a new one" in again["message"]

    # and the account behind the expired link stays pending
    clock.reset()
    assert (await sign_in(gql, expired_email))["__typename"] == "AccountNotActivatedError"


async def test_a_link_still_works_just_before_its_24_hours_are_up(gql, mailbox, clock):
    # given a fresh activation link
    email, token = await pending_customer(gql, mailbox, "in-time")

    # when it is used 23 hours later
    clock.advance(hours=23, minutes=59)
    result = await activate(gql, token)

    # then it activates the account
    assert result["__typename"] == "AccountActivated"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_a_token_with_a_changed_character_is_refused(gql, mailbox):
    # given a real activation link
    email, token = await pending_customer(gql, mailbox, "tampered")

    # when one character is changed, or the token is cut short
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    answers = [await activate(gql, t) for t in (tampered, token[:-1], token + "A")]

    # then each is refused and the real link still works afterwards
    assert {a["__typename"] for a in answers} == {"InvalidTokenError"}
    assert (await activate(gql, token))["__typename"] == "AccountActivated"


async def test_ten_concurrent_uses_of_one_link_activate_once(gql, mailbox):
    # given one activation link
    email, token = await pending_customer(gql, mailbox, "link-race")

    # when it is used ten times at once
    answers = await asyncio.gather(*(activate(gql, token) for _ in range(10)))

    # then exactly one use wins and the others are refused
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["AccountActivated"] + ["InvalidTokenError"] * 9
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_the_activation_page_refuses_an_expired_link(http, gql, mailbox, clock):
    # given a link older than 24 hours
    email, token = await pending_customer(gql, mailbox, "page-expired")
    clock.advance(hours=25)

    # when it is opened in a browser
    page = await http.get("/activate", params={"token": token})

    # then the page says it is no longer valid and the account stays pending
    assert page.status_code == 400 and "invalid or has expired" in page.text
    clock.reset()
    assert (await sign_in(gql, email))["__typename"] == "AccountNotActivatedError"
