"""Registration tells nobody whether an address is known, by its answer, its work or its mail.

- The same work before the answer for a known and a new address: the same database commands on the
  same collections, and the same hash calls (pinned by counting, never by timing).
- No text a registrant typed reaches an inbox that has not been verified.
- The "someone tried to register with your address" notice is limited per address.
"""

from __future__ import annotations

from tests.conftest import running_gateway
from tests.flows import active_customer, new_application, register
from tests.support import GraphQLClient, assert_no_errors, unique_email
from tests.test_round_trips import counted  # noqa: F401 - the fixture, a gateway whose commands are logged

LURE = "Your account is locked, visit evil-example.com now"
LURE_NAME = "locked-visit-evil-example-com"


async def work_before_answer(app, gql, log, email: str, monkeypatch, **extra) -> tuple[list, list]:
    """The commands and hash calls of one registration up to its answer (work after it is held back)."""
    runtime = app.state.runtime
    hashes: list[str] = []
    original_hash, original_verify = runtime.hasher.hash, runtime.hasher.verify

    async def hash_(password):
        hashes.append("hash")
        return await original_hash(password)

    async def verify(*args, **kwargs):
        hashes.append("verify")
        return await original_verify(*args, **kwargs)

    held = []
    monkeypatch.setattr(runtime.hasher, "hash", hash_)
    monkeypatch.setattr(runtime.hasher, "verify", verify)
    monkeypatch.setattr(runtime, "spawn", held.append)
    log.commands.clear()
    accepted = await register(gql, email, **extra)
    commands = list(log.commands)
    monkeypatch.undo()
    assert accepted["__typename"] == "AccountRegisterAccepted", accepted
    for work in held:  # now let the held-back work run
        runtime.spawn(work)
    await runtime.drain()
    return commands, hashes


async def test_a_known_and_a_new_address_cost_the_same_work_before_the_answer(counted, mailbox, monkeypatch):
    app, gql, log = counted
    # given a registered address, and a warmed-up gateway (application and policy cached)
    known = unique_email("known")
    await active_customer(gql, mailbox, known)
    await register(gql, unique_email("warm-up"))
    await app.state.runtime.drain()

    # when the known address and a new one register
    new = unique_email("new")
    known_work = await work_before_answer(app, gql, log, known, monkeypatch)
    new_work = await work_before_answer(app, gql, log, new, monkeypatch)

    # then both sent the same database commands to the same collections, and hashed alike, before answering
    assert known_work == new_work
    assert known_work[1] == ["hash"]
    assert ("insert", "customers") in known_work[0]

    # and afterwards the new address got its activation link, the known one a notice
    assert "/activate?token=" in (await mailbox.wait_for(new, "activate")).text
    assert "/activate?token=" not in (await mailbox.wait_for(known, "tried to register")).text


async def test_the_same_work_in_username_mode(counted, mailbox, monkeypatch):
    app, gql, log = counted
    # given a USERNAME-mode application with a registered address
    _, client_id = await new_application(app.state.runtime, username_mode="USERNAME")
    headers = {"x-application-id": client_id}
    known = unique_email("known-u")
    await active_customer(gql, mailbox, known, headers=headers, username=f"u{known[8:16]}")
    await register(gql, unique_email("warm-up"), headers=headers, username="warm-up-user")
    await app.state.runtime.drain()

    # when the known address and a new one register, each with a free username
    known_work = await work_before_answer(app, gql, log, known, monkeypatch, headers=headers, username="free-one")
    new_work = await work_before_answer(app, gql, log, unique_email("new-u"), monkeypatch, headers=headers,
                                        username="free-two")

    # then the work before the answer is the same
    assert known_work == new_work


async def test_an_unverified_inbox_never_gets_the_registrants_words(gql, mailbox, runtime):
    # given an attacker who registers someone else's address with a lure as their name
    victim = unique_email("victim")
    await register(gql, victim, givenName=LURE, familyName=LURE)

    # when the real owner reads the activation mail
    mail = await mailbox.wait_for(victim, "activate")

    # then it greets without the registrant's words, in the text and the HTML
    assert "evil" not in mail.text and "evil" not in mail.html
    assert mail.text.startswith("Hello,")


async def test_a_chosen_username_does_not_reach_an_unverified_inbox(gql, mailbox, runtime):
    # given a USERNAME-mode application, and an attacker registering someone else's address with a lure username
    _, client_id = await new_application(runtime, username_mode="USERNAME")
    headers = {"x-application-id": client_id}
    victim = unique_email("victim-u")
    await register(gql, victim, headers=headers, username=LURE_NAME, givenName=LURE)
    activation = await mailbox.wait_for(victim, "activate")

    # when the attacker asks for a username reminder to that address, and registers it again
    remind = assert_no_errors(await gql(
        "mutation($e: String!) { usernameReminderRequest(input: {email: $e}) { __typename } }", {"e": victim},
        headers=headers))
    assert remind["usernameReminderRequest"]["__typename"] == "UsernameReminderRequested"
    await register(gql, victim, headers=headers, username="another-name")
    notice = await mailbox.wait_for(victim, "tried to register")
    await runtime.drain()

    # then no mail the owner got holds the username or the name
    for mail in mailbox.to(victim):
        assert "evil" not in mail.text and "evil" not in mail.html, mail.subject
    assert activation and notice
    assert not [m for m in mailbox.to(victim) if "username" in m.subject.lower()]


async def test_registration_notices_are_limited_per_address(settings, clock, mailbox):
    # given at most two "someone tried to register" notices per address per window
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "registration_notice_email_attempts": 2,
                                          "register_ip_attempts": 1000})
    async with running_gateway(limited, clock) as (app, http):
        gql = GraphQLClient(http)
        owner = unique_email("bombed")
        await active_customer(gql, mailbox, owner)

        # when someone registers the owner's address five times, from five addresses
        for _ in range(5):
            assert (await register(GraphQLClient(http), owner))["__typename"] == "AccountRegisterAccepted"
        await app.state.runtime.drain()

        # then the owner got two notices, not five
        await mailbox.wait_for(owner, "tried to register", count=2)
        assert len([m for m in mailbox.to(owner) if "tried to register" in m.subject.lower()]) == 2


async def test_the_notice_to_an_unverified_existing_account_carries_no_registrant_text(gql, mailbox, runtime):
    # given an address registered (not activated) by someone with a lure as the name
    victim = unique_email("pending-victim")
    await register(gql, victim, givenName=LURE)
    await mailbox.wait_for(victim, "activate")

    # when it is registered again
    await register(gql, victim)
    notice = await mailbox.wait_for(victim, "tried to register")

    # then the notice neither greets with the lure nor offers it as a sign-in name
    assert "evil" not in notice.text and "evil" not in notice.html
    assert victim in notice.text
