"""The MongoDB semantics the stores rely on, pinned against whichever database the fixture gives
(nx-27017 by default, a real MongoDB when GATEWAY_MONGODB_URI is set), in the spirit of Kratos'
TestFlowPersister. A change of database that breaks one of these breaks the gateway."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from resolvers.context import epoch_ms
from stores import admins, config, consents, customers, jobs, outbox, ratelimits, sessions, tokens
from stores.database import is_nx_27017
from stores.documents import (
    AdminDocument,
    ConsentEventDocument,
    CustomerDocument,
    CustomerProfile,
    JobDocument,
    OneTimeTokenDocument,
    OutboxDocument,
    PolicyDocument,
    RateCounterDocument,
    SessionDocument,
)


@pytest.fixture(autouse=True)
def _bound(app):
    """The session gateway has bound the documents to the test database."""


def uid() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


def customer(store_id: str, email: str, username: str | None = None, **extra) -> CustomerDocument:
    username = username or email
    return CustomerDocument(id=uid(), store_id=store_id, email=email, email_norm=email.lower(), username=username,
                            username_norm=username.lower(), password_hash="$argon2id$x", created_at=now(), **extra)


def session(subject_id: str, *, expires_at: datetime, idle_ms: int, last_seen_ms: int = 0,
            created_at: datetime | None = None) -> SessionDocument:
    return SessionDocument(id=uid(), token_hash=uid(), kind="customer", subject_id=subject_id,
                           created_at=created_at or now(), expires_at=expires_at, idle_expires_at_ms=idle_ms,
                           last_seen_at_ms=last_seen_ms)


def link_token(subject_id: str, purpose: str = "contract", expires_in: timedelta = timedelta(hours=1)):
    return OneTimeTokenDocument(id=tokens.link_id(purpose, subject_id), token_hash=uid(), purpose=purpose,
                                subject_id=subject_id, created_at=now(), expires_at=now() + expires_in)


# -- unique indexes ---------------------------------------------------------------------------------


async def test_unique_compound_index_rejects_a_duplicate_email_in_one_store_only():
    # given a customer in a store
    store, email = f"store-{uid()}", f"{uid()}@example.com"
    await customers.insert(customer(store, email))

    # when another customer with the same normalised email is inserted in that store, and in another store
    with pytest.raises(customers.DuplicateCustomer):
        await customers.insert(customer(store, email.upper(), username=f"other-{uid()}"))
    await customers.insert(customer(f"store-{uid()}", email))

    # then the store holds one, and the other store its own
    assert await customers.count(store) == 1


async def test_unique_compound_index_rejects_a_duplicate_username_in_one_store():
    # given a customer with a username
    store, name = f"store-{uid()}", f"name-{uid()}"
    await customers.insert(customer(store, f"{uid()}@example.com", username=name))

    # when another customer takes the same username with another email, or the email with another username
    with pytest.raises(customers.DuplicateCustomer) as by_username:
        await customers.insert(customer(store, f"{uid()}@example.com", username=name))
    first = await customers.get_by_identifier(store, name.lower())
    with pytest.raises(customers.DuplicateCustomer) as by_email:
        await customers.insert(customer(store, first.email, username=f"other-{uid()}"))

    # then each is refused, and the error names the index that refused it
    assert by_username.value.field == "username"
    assert by_email.value.field == "email"


async def test_unique_index_on_admin_email_and_on_id():
    # given an admin and a policy
    email = f"{uid()}@example.com"
    await admins.insert(AdminDocument(id=uid(), email=email, email_norm=email, password_hash="h", role="owner",
                                      created_at=now()))
    policy = PolicyDocument(id=f"policy-{uid()}", name="contract", created_at=now())
    assert await config.insert_if_missing(policy) is True

    # when each is inserted again
    with pytest.raises(admins.DuplicateAdmin):
        await admins.insert(AdminDocument(id=uid(), email=email, email_norm=email, password_hash="h", role="owner",
                                          created_at=now()))

    # then a duplicate _id is refused too
    assert await config.insert_if_missing(policy) is False


# -- atomic updates ---------------------------------------------------------------------------------


async def test_fifty_concurrent_conditional_find_one_and_update_have_exactly_one_winner():
    # given one unused token
    token = link_token(uid())
    await tokens.issue(token)

    # when fifty consumers race for it
    results = await asyncio.gather(*(tokens.consume_token(token.token_hash, token.purpose, now(), epoch_ms(now()))
                                     for _ in range(50)))

    # then exactly one gets it (as it was before: unused), and it is marked used
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].id == token.id and winners[0].used is False
    assert await tokens.find_usable(token.token_hash, token.purpose, now()) is None
    assert (await tokens.get(token.token_hash)).used is True


async def test_concurrent_upserting_replaces_leave_exactly_one_document_per_id():
    # given a subject with no link yet
    subject = uid()
    links = [link_token(subject) for _ in range(20)]

    # when twenty links of one purpose are issued at once
    await asyncio.gather(*(tokens.issue(link) for link in links))

    # then one document remains, holding exactly one of the twenty token hashes, and only it is usable
    raw = await OneTimeTokenDocument.get_pymongo_collection().find({"subject_id": subject}).to_list()
    assert len(raw) == 1 and raw[0]["token_hash"] in {link.token_hash for link in links}
    usable = [link for link in links if await tokens.find_usable(link.token_hash, "contract", now())]
    assert [link.token_hash for link in usable] == [raw[0]["token_hash"]]


async def test_a_unique_index_refuses_a_second_document_with_the_same_token_hash():
    # given a link
    first = link_token(uid())
    await tokens.issue(first)

    # when another subject's link carries the same token hash
    clash = link_token(uid())
    clash.token_hash = first.token_hash

    # then it is refused
    with pytest.raises(DuplicateKeyError):
        await tokens.issue(clash)


async def test_find_one_and_update_respects_every_condition():
    # given an expired token and a token of another purpose
    subject = uid()
    expired = link_token(subject, expires_in=timedelta(seconds=-1))
    other = link_token(subject, purpose="other")
    await tokens.issue(expired)
    await tokens.issue(other)

    # when each is consumed
    # then neither matches
    assert await tokens.consume_token(expired.token_hash, expired.purpose, now(), epoch_ms(now())) is None
    assert await tokens.consume_token(other.token_hash, "contract", now(), epoch_ms(now())) is None
    assert await tokens.find_usable(other.token_hash, "other", now()) is not None


async def test_update_one_with_inc_applies_only_while_every_condition_holds():
    # given an active customer at credential version 0
    doc = customer(f"store-{uid()}", f"{uid()}@example.com", status="active")
    await customers.insert(doc)
    t = epoch_ms(now())

    # when a sign-in is confirmed for the hash and version it read, then the password is set twice from version 0
    confirmed = await customers.confirm_sign_in(doc.id, doc.password_hash, 0, t)
    first = await customers.set_password(doc.id, "$argon2id$new", expected_version=0, now_ms=t)
    second = await customers.set_password(doc.id, "$argon2id$newer", expected_version=0, now_ms=t)
    stale_sign_in = await customers.confirm_sign_in(doc.id, doc.password_hash, 0, t, new_hash="$argon2id$rehash")

    # then only the first set applied, $inc bumped the version once, and the stale sign-in changed nothing
    assert (confirmed, first, second, stale_sign_in) == (True, True, False, False)
    read = await customers.get(doc.id)
    assert (read.password_hash, read.credential_version, read.password_nfkc) == ("$argon2id$new", 1, True)
    assert read.last_sign_in_at_ms == t

    # when it is disabled
    assert await customers.disable(doc.id, t) is True

    # then a sign-in confirmation for the current hash and old version fails, and the version moved on
    assert await customers.confirm_sign_in(doc.id, "$argon2id$new", 1, t) is False
    assert (await customers.get(doc.id)).credential_version == 2


async def test_or_on_two_fields_finds_by_either_in_one_query():
    # given a customer with a distinct email and username
    store = f"store-{uid()}"
    doc = customer(store, f"{uid()}@example.com", username=f"user-{uid()}")
    await customers.insert(doc)

    # when looked up by each normalised identifier, and by an unknown one
    by_email = await customers.get_by_identifier(store, doc.email_norm)
    by_username = await customers.get_by_identifier(store, doc.username_norm)
    unknown = await customers.get_by_identifier(store, f"{uid()}@example.com")

    # then both find it, in the right store only
    assert by_email.id == doc.id and by_username.id == doc.id and unknown is None
    assert await customers.get_by_identifier(f"store-{uid()}", doc.email_norm) is None


async def test_twenty_concurrent_inc_upserts_count_to_twenty():
    # given a counter that does not exist yet
    counter = f"contract:{uid()}:1"

    # when twenty increments arrive at once
    expires_at_ms = epoch_ms(now()) + 3_600_000
    counts = await asyncio.gather(*(ratelimits.increment(counter, expires_at_ms) for _ in range(20)))

    # then each saw a different count, and the counter holds twenty
    assert sorted(counts) == list(range(1, 21))
    assert await ratelimits.current(counter) == 20
    await ratelimits.clear(counter)
    assert await ratelimits.current(counter) == 0


async def test_an_integer_expiry_set_by_an_upsert_compares_as_an_integer():
    # given a counter that expired a millisecond ago and one that expires in an hour
    t = epoch_ms(now())
    expired, live = f"contract:{uid()}:1", f"contract:{uid()}:1"
    await ratelimits.increment(expired, t - 1)
    await ratelimits.increment(live, t + 3_600_000)

    # when expired counters are deleted
    deleted = await ratelimits.delete_expired(t)

    # then the expired one is gone and the live one stays, its expiry still an integer
    assert deleted >= 1 and await ratelimits.current(expired) == 0
    raw = await RateCounterDocument.get_pymongo_collection().find_one({"_id": live})
    assert raw["hits"] == 1 and raw["expires_at_ms"] == t + 3_600_000 and isinstance(raw["expires_at_ms"], int)


async def test_find_one_and_update_returns_the_document_after_the_update():
    # given a policy
    policy = PolicyDocument(id=f"policy-{uid()}", name="before", created_at=now())
    await config.insert_if_missing(policy)

    # when it is updated, and an unknown one is updated
    updated = await config.update_policy(policy.id, {"name": "after", "password_policy.min_length": 12})
    missing = await config.update_policy(f"policy-{uid()}", {"name": "x"})

    # then the answer is the new version, and None for the unknown one
    assert updated.name == "after" and updated.password_policy.min_length == 12
    assert missing is None
    raw = await PolicyDocument.get_pymongo_collection().find_one_and_update(
        {"_id": policy.id}, {"$set": {"name": "again"}}, return_document=ReturnDocument.BEFORE)
    assert raw["name"] == "after"


# -- queries ----------------------------------------------------------------------------------------


async def test_datetime_range_on_a_field_written_at_insert():
    # given sessions that ended an hour ago, end in an hour, and end in two hours
    subject, moment = uid(), now()
    far_ms = epoch_ms(moment) + 10 * 3600 * 1000
    for hours in (-1, 1, 2):
        await sessions.insert(session(subject, expires_at=moment + timedelta(hours=hours), idle_ms=far_ms,
                                      created_at=moment + timedelta(minutes=hours)))

    # when the active ones are listed now, and five hours from now
    active = await sessions.list_active_for_subject(subject, moment, epoch_ms(moment))
    later = await sessions.list_active_for_subject(subject, moment + timedelta(hours=5), epoch_ms(moment))

    # then only those ending after the given time are found, newest first
    assert [s.expires_at for s in active] == [moment.replace(microsecond=moment.microsecond // 1000 * 1000)
                                              + timedelta(hours=h) for h in (2, 1)]
    assert later == []


async def test_integer_ms_fields_compare_with_lt_and_gt():
    # given a session last seen at t, idle-expiring at t + 1 hour (epoch milliseconds, above 2**31)
    subject = uid()
    t = epoch_ms(now())
    assert t > 2**31
    doc = session(subject, expires_at=now() + timedelta(days=1), idle_ms=t + 3_600_000, last_seen_ms=t)
    await sessions.insert(doc)

    # when it is looked up before and after its idle expiry
    found = await sessions.find_active_by_token_hash(doc.token_hash, now(), t + 3_599_999)
    gone = await sessions.find_active_by_token_hash(doc.token_hash, now(), t + 3_600_000)

    # then $gt on the integer field decides, and the value comes back as the same integer
    assert found is not None and found["idle_expires_at_ms"] == t + 3_600_000
    assert isinstance(found["last_seen_at_ms"], int)
    assert gone is None

    # when it is touched with a 'not since' before and after its last-seen time
    await sessions.touch(doc.id, t + 10, t + 99, not_since_ms=t)  # last seen == t: not < t, no change
    unchanged = await SessionDocument.get_pymongo_collection().find_one({"_id": doc.id})
    await sessions.touch(doc.id, t + 20, t + 7_200_000, not_since_ms=t + 1)
    touched = await SessionDocument.get_pymongo_collection().find_one({"_id": doc.id})

    # then $lt decides whether the update applies
    assert unchanged["last_seen_at_ms"] == t
    assert touched["last_seen_at_ms"] == t + 20 and touched["idle_expires_at_ms"] == t + 7_200_000


async def test_a_projection_excluding_a_field_leaves_it_out():
    # given a session
    doc = session(uid(), expires_at=now() + timedelta(hours=1), idle_ms=epoch_ms(now()) + 60_000)
    await sessions.insert(doc)

    # when it is found by its token hash, leaving the hash out
    found = await SessionDocument.get_pymongo_collection().find_one({"token_hash": doc.token_hash}, {"token_hash": 0})

    # then the other fields are there and the hash is not
    assert found["_id"] == doc.id and found["subject_id"] == doc.subject_id
    assert "token_hash" not in found


async def test_in_on_string_ids_returns_exactly_the_existing_ones():
    # given three customers
    store = f"store-{uid()}"
    docs = [customer(store, f"{uid()}@example.com") for _ in range(3)]
    for doc in docs:
        await customers.insert(doc)

    # when two of them and an unknown id are fetched at once
    wanted = [docs[0].id, uid(), docs[2].id]
    found = await customers.get_many(wanted)

    # then exactly those two come back, by id
    assert set(found) == {docs[0].id, docs[2].id}
    assert found[docs[2].id].email == docs[2].email
    assert await customers.get_many([]) == {}


async def test_or_with_regex_prefix_sort_and_limit_page_through_a_search():
    # given customers in a store, some matching a prefix by email, one by username only, one in the middle
    store, prefix = f"store-{uid()}", f"p{uid()[:8]}"
    matching = [customer(store, f"{prefix}-{i}@example.com") for i in range(3)]
    by_username = customer(store, f"{uid()}@example.com", username=f"{prefix}-user")
    middle = customer(store, f"x{prefix}@example.com")
    dotted = customer(store, f"{prefix[:-1]}x.y@example.com")
    for doc in [*matching, by_username, middle, dotted]:
        await customers.insert(doc)

    # when the store is searched by the prefix two at a time, in id order
    first, more = await customers.page(store, first=2, after=None, search=prefix)
    second, more_again = await customers.page(store, first=2, after=first[-1].id, search=prefix)
    regex_like, _ = await customers.page(store, first=10, after=None, search=prefix[:-1] + ".")

    # then the prefix matches email or username, never the middle, sorted by _id, limited, with more flagged
    expected = sorted([d.id for d in (*matching, by_username)])
    assert [d.id for d in first] == expected[:2] and more is True
    assert [d.id for d in second] == expected[2:] and more_again is False
    assert regex_like == []  # the search is escaped: "." is not a wildcard


async def test_delete_many_and_update_many_report_their_counts():
    # given three sessions of one subject, each with a profile copy
    subject = uid()
    for _ in range(3):
        doc = session(subject, expires_at=now() + timedelta(hours=1), idle_ms=epoch_ms(now()) + 1)
        doc.profile = CustomerProfile(id=subject, store_id="s", email="a@example.com", username="a",
                                      status="active", created_at=now())
        await sessions.insert(doc)

    # when their profile copies are refreshed, then they are deleted, twice
    await sessions.refresh_profile(subject, {**doc.profile.model_dump(), "given_name": "Ada"})
    copies = await SessionDocument.get_pymongo_collection().count_documents({"subject_id": subject,
                                                                            "profile.given_name": "Ada"})
    deleted = await sessions.delete_for_subject(subject)
    deleted_again = await sessions.delete_for_subject(subject)

    # then update_many reached all three, and delete_many's counts say how many went, and none the second time
    assert copies == 3
    assert (deleted, deleted_again) == (3, 0)


async def test_unset_removes_fields_and_in_lte_lt_select_due_messages():
    # given two pending messages, one due now and one due later
    moment = epoch_ms(now())
    due = OutboxDocument(id=uid(), kind="contract", to="a@example.com", body="sealed", created_at=now(),
                         next_attempt_ms=moment - 1)
    later = OutboxDocument(id=uid(), kind="contract", to="a@example.com", created_at=now(),
                           next_attempt_ms=moment + 3_600_000)
    await outbox.insert(due)
    await outbox.insert(later)

    # when the due ones are listed, and the due one is claimed, then marked sent by another and by its holder
    due_ids = await outbox.due_ids(moment, limit=10_000)
    claimed = await outbox.claim(due.id, moment, 60_000, "holder")
    claimed_again = await outbox.claim(due.id, moment, 60_000, "intruder")
    by_intruder = await outbox.mark_sent(due.id, "intruder", moment)
    by_holder = await outbox.mark_sent(due.id, "holder", moment)

    # then only the due one was listed and claimable once, only its holder recorded it, and its body is gone
    assert due.id in due_ids and later.id not in due_ids
    assert claimed is not None and claimed.lease_id == "holder" and claimed_again is None
    assert (by_intruder, by_holder) == (False, True)
    raw = await OutboxDocument.get_pymongo_collection().find_one({"_id": due.id})
    assert raw["status"] == "sent"
    assert "body" not in raw


async def test_a_job_is_held_by_one_lease_at_a_time_and_only_its_holder_finishes_it():
    # given a job due in ten seconds
    t = epoch_ms(now())
    job = JobDocument(id=uid(), kind="contract", payload={"n": 1}, created_at=now(), run_after_ms=t + 10_000)
    await jobs.insert(job)

    # when the sweep looks now, the writer takes it early, and a second taker tries while it is held
    swept = await jobs.due_ids(t)
    early = await jobs.claim(job.id, t, 20_000, "writer", due_only=False)
    held = await jobs.claim(job.id, t + 1, 20_000, "other", due_only=False)

    # then only the writer holds it, and another cannot postpone or finish it
    assert job.id not in swept and early.lease_id == "writer" and early.payload == {"n": 1} and held is None
    assert await jobs.postpone(job.id, "other", t, 1, "x") is False
    assert await jobs.finish(job.id, "other") is False

    # when the writer gives it back for later, then the lease of a later taker runs out
    assert await jobs.postpone(job.id, "writer", t + 5_000, 1, "RetryLater()") is True
    assert job.id not in await jobs.due_ids(t + 4_999) and job.id in await jobs.due_ids(t + 5_000)
    taken = await jobs.claim(job.id, t + 5_000, 20_000, "sweeper")
    retaken = await jobs.claim(job.id, t + 25_001, 20_000, "another sweeper")

    # then an expired lease can be taken over, and only the last holder finishes it
    assert taken.attempts == 1 and retaken.lease_id == "another sweeper"
    assert await jobs.finish(job.id, "sweeper") is False
    assert await jobs.finish(job.id, "another sweeper") is True
    assert await JobDocument.get_pymongo_collection().count_documents({"_id": job.id}) == 0


# -- values -----------------------------------------------------------------------------------------


async def test_tz_aware_datetimes_round_trip_as_the_same_instant_in_utc():
    # given a moment written in another time zone, with microseconds
    written = datetime(2030, 6, 1, 12, 30, 45, 123456, tzinfo=timezone(timedelta(hours=2)))
    doc = customer(f"store-{uid()}", f"{uid()}@example.com")
    doc.created_at = written
    await customers.insert(doc)

    # when it is read back
    read = (await customers.get(doc.id)).created_at

    # then it is the same instant (to the millisecond), tz-aware, in UTC
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read == written.replace(microsecond=123000)


async def test_none_and_nested_values_round_trip():
    # given a customer with optional fields left empty, and a session carrying a nested profile copy
    doc = customer(f"store-{uid()}", f"{uid()}@example.com", given_name=None, locale="fr-CA")
    await customers.insert(doc)
    profile = CustomerProfile(id=doc.id, store_id=doc.store_id, email=doc.email, username=doc.username,
                              given_name="Ada", status="active", created_at=doc.created_at)
    with_profile = session(doc.id, expires_at=now() + timedelta(hours=1), idle_ms=epoch_ms(now()) + 60_000)
    with_profile.profile = profile
    await sessions.insert(with_profile)

    # when both are read back
    read = await customers.get(doc.id)
    raw_session = await sessions.find_active_by_token_hash(with_profile.token_hash, now(), epoch_ms(now()))

    # then empty stays empty, set stays set, and the nested document comes back whole
    assert read.given_name is None and read.locale == "fr-CA" and read.status == "pending"
    assert read.email_verified is False
    assert CustomerProfile.model_validate(raw_session["profile"]) == profile.model_copy(
        update={"created_at": read.created_at})


async def test_refresh_profile_updates_every_session_copy_of_one_customer_only():
    # given two sessions of one customer and one of another, each with a profile copy
    store = uid()
    ada, bob = customer(store, f"{uid()}@example.com"), customer(store, f"{uid()}@example.com")
    later = now() + timedelta(hours=1)
    docs = [session(ada.id, expires_at=later, idle_ms=epoch_ms(later)) for _ in range(2)]
    docs.append(session(bob.id, expires_at=later, idle_ms=epoch_ms(later)))
    for doc, owner in zip(docs, (ada, ada, bob), strict=True):
        doc.profile = CustomerProfile.model_validate(owner.model_dump(include=set(CustomerProfile.model_fields)))
        await sessions.insert(doc)

    # when ada's given name changes
    changed = docs[0].profile.model_copy(update={"given_name": "Ada"}).model_dump()
    await sessions.refresh_profile(ada.id, changed)

    # then both of ada's copies carry it, and bob's does not; the creation time is still a datetime
    for doc, expected in zip(docs, ("Ada", "Ada", None), strict=True):
        raw = await sessions.find_active_by_token_hash(doc.token_hash, now(), epoch_ms(now()))
        assert raw["profile"]["given_name"] == expected
        assert isinstance(raw["profile"]["created_at"], datetime)


async def test_or_of_lt_and_not_exists_matches_lower_and_missing_values_and_ne_keeps_one():
    # given sessions of one subject at credential versions 0, 1, 2, one written without a version, and one to keep
    subject, later = uid(), now() + timedelta(hours=1)
    docs = [session(subject, expires_at=later, idle_ms=epoch_ms(later)) for _ in range(5)]
    for doc, version in zip(docs, (0, 1, 2, None, 0), strict=True):
        raw = doc.model_dump(by_alias=True)
        if version is None:
            del raw["credential_version"]
        else:
            raw["credential_version"] = version
        await SessionDocument.get_pymongo_collection().insert_one(raw)

    # when the sessions older than version 2 are deleted, keeping the last one
    deleted = await sessions.delete_older_than(subject, 2, keep=docs[4].id)

    # then versions 0 and 1 and the one without a version went; version 2 and the kept one stay
    left = {raw["_id"] for raw in await SessionDocument.get_pymongo_collection().find({"subject_id": subject}).to_list()}
    assert left == {docs[2].id, docs[4].id}, (left, [d.id for d in docs])
    assert deleted == 3


async def test_consent_latest_event_per_key_is_the_highest_id_however_many_events():
    """``$sort`` by ``_id`` then ``$group`` with ``$first`` (by a field and by a compound key) gives the
    latest event of each key: the consent state of an account with a long history."""
    customer_id, app_a, app_b = uid(), uid(), uid()

    async def event(ms: int, application_id: str, key: str, granted: bool) -> None:
        await consents.append(ConsentEventDocument(
            id=f"{ms:013x}{uid()[:19]}", customer_id=customer_id, application_id=application_id, key=key,
            version=1, granted=granted, at=now()))

    for ms in range(1_000, 1_030):  # 30 alternating answers; the last (ms 1029) withdraws
        await event(ms, app_a, "marketing", ms % 2 == 0)
    await event(2_000, app_a, "terms", True)
    await event(500, app_b, "marketing", True)

    latest = await consents.latest_by_key(customer_id, app_a, ["marketing", "terms", "never-answered"])
    assert {key: e.granted for key, e in latest.items()} == {"marketing": False, "terms": True}
    assert latest["marketing"].id.startswith(f"{1029:013x}")

    everywhere = await consents.latest_of_customer(customer_id)
    assert [(e.application_id, e.key, e.granted) for e in everywhere] == [
        (app_a, "terms", True), (app_a, "marketing", False), (app_b, "marketing", True)]
    assert [e.id[:13] for e in await consents.history(customer_id, limit=3)] == [
        f"{2_000:013x}", f"{1_029:013x}", f"{1_028:013x}"]


async def test_on_nx_27017_a_read_of_a_collection_with_a_ttl_index_purges_it_first():
    # given a scratch collection with a TTL index, holding a document that expired a minute ago
    database = SessionDocument.get_pymongo_collection().database
    scratch = database[f"contract_ttl_{uid()}"]
    await scratch.create_index([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl")
    await scratch.insert_one({"_id": "old", "expires_at": now() - timedelta(minutes=1)})

    # when it is read by its id
    found = await scratch.find_one({"_id": "old"})

    # then nx-27017 has deleted it before answering (a purge before every read: why the gateway drops
    # these indexes there), while MongoDB's TTL monitor runs about once a minute
    if await is_nx_27017(database):
        assert found is None
    else:
        assert found is not None
    await scratch.drop()


async def test_expired_documents_wait_for_the_housekeeping_pass_which_deletes_them(app):
    # given the bound database: on nx-27017 the TTL indexes are gone, on MongoDB they stay
    collection = SessionDocument.get_pymongo_collection()
    ttl = [name for name, spec in (await collection.index_information()).items() if "expireAfterSeconds" in spec]
    assert bool(ttl) is not await is_nx_27017(collection.database), ttl
    # and an expired session, a live one, and an expired link
    subject = uid()
    expired = session(subject, expires_at=now() - timedelta(minutes=1), idle_ms=epoch_ms(now()) + 60_000)
    live = session(subject, expires_at=now() + timedelta(hours=1), idle_ms=epoch_ms(now()) + 60_000)
    await sessions.insert(expired)
    await sessions.insert(live)
    link = link_token(subject, expires_in=timedelta(minutes=-1))
    await OneTimeTokenDocument.get_pymongo_collection().insert_one(link.model_dump(by_alias=True))

    # when the housekeeping pass runs
    await app.state.runtime.housekeeping()

    # then what had expired is gone, and the live session stays
    left = await collection.find({"subject_id": subject}).to_list()
    assert [raw["_id"] for raw in left] == [live.id]
    assert await OneTimeTokenDocument.get_pymongo_collection().find_one({"_id": link.id}) is None
