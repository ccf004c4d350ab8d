"""Deferred work is bounded: when the queue is full, anonymous requests that defer work answer
RateLimitedError before deferring anything, whoever the email belongs to."""

from __future__ import annotations

import asyncio

from tests.conftest import running_gateway
from tests.flows import active_customer, new_application
from tests.support import GraphQLClient, assert_no_errors, unique_email

RESET_REQUEST = """
mutation Ask($email: String!) {
  passwordResetRequest(input: {email: $email}) { __typename ... on RateLimitedError { code retryAfterSeconds } }
}
"""
REMINDER = """
mutation Remind($email: String!) {
  usernameReminderRequest(input: {email: $email}) { __typename ... on RateLimitedError { code } }
}
"""
RESEND = """
mutation Resend($email: String!) {
  accountActivationResend(email: $email) { __typename ... on RateLimitedError { code } }
}
"""


async def test_a_full_queue_refuses_before_deferring_the_same_for_known_and_unknown(settings, clock, mailbox):
    # given a gateway that keeps at most two pieces of deferred work, and a known customer
    async with running_gateway(settings.model_copy(update={"deferred_work_limit": 2}), clock) as (app, http):
        runtime = app.state.runtime
        gql = GraphQLClient(http)
        known = unique_email("known")
        await active_customer(gql, mailbox, known)
        _, client_id = await new_application(runtime, username_mode="USERNAME")
        usernames = {"x-application-id": client_id}

        # when two slow pieces of work fill the queue
        release = asyncio.Event()
        for _ in range(2):
            runtime.spawn(release.wait())

        # then every request that would defer work is refused, with one answer for known and unknown emails
        answers = []
        for email in (known, unique_email("unknown")):
            answers.append(assert_no_errors(await gql(RESET_REQUEST, {"email": email}))["passwordResetRequest"])
            answers.append(assert_no_errors(await gql(REMINDER, {"email": email}, headers=usernames))
                           ["usernameReminderRequest"])
            answers.append(assert_no_errors(await gql(RESEND, {"email": email}))["accountActivationResend"])
        assert {a["__typename"] for a in answers} == {"RateLimitedError"}
        assert answers[0] == answers[3]

        # and nothing was started: once the queue drains, requests are accepted and mail flows again
        release.set()
        await runtime.drain()
        accepted = assert_no_errors(await gql(RESET_REQUEST, {"email": known}))["passwordResetRequest"]
        assert accepted["__typename"] == "PasswordResetRequested"
        await mailbox.wait_for(known, "reset your")
        assert len([m for m in mailbox.to(known) if "reset your" in m.subject.lower()]) == 1
