"""Consents: what an application asks its customers to agree to (its consent policy, items
``{key title description version required}`` kept on the application), and each customer's answers.

Answers are consent events, appended and never edited (``stores.consents``): who, which item of which
application, which version, granted or withdrawn, when, from which IP and user agent. A customer's
current answer to an item is their latest event for it. An admin asks for re-acceptance by bumping an
item's version: a grant of an older version then ``needs_reacceptance``.

Any application of the customer's identity store may be asked about (the customer's data is theirs
whichever application they use); an application of another store is NotFound, like an unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from resolvers import audit, ratelimit
from resolvers.account import viewed_customer
from resolvers.context import Context
from resolvers.errors import ConsentRequired, NotFound, Problems, unauthenticated
from resolvers.security import is_text
from resolvers.self_service import Area, own_account
from stores import config, customers
from stores import consents as consent_store
from stores.documents import ApplicationDocument, ConsentEventDocument, ConsentItem, CustomerStatus

MAX_ID = 64
MAX_KEY = 100


@dataclass(frozen=True)
class ConsentState:
    """One consent item of an application and the customer's current answer to it."""

    application_id: str
    item: ConsentItem
    granted: bool
    granted_at: datetime | None  # when the current grant was given
    version: int | None  # the item version the current grant accepted
    needs_reacceptance: bool  # granted, but an older version than the item's


def _state(application_id: str, item: ConsentItem, latest: ConsentEventDocument | None) -> ConsentState:
    if latest is None or not latest.granted:
        return ConsentState(application_id, item, False, None, None, False)
    return ConsentState(application_id, item, True, latest.at, latest.version, latest.version < item.version)


async def _application(ctx: Context, application_id: str | None, store_id: str) -> ApplicationDocument:
    """The application asked about (the request's when None), if it belongs to the customer's identity store."""
    if application_id is None:
        application = ctx.application
    elif len(application_id) <= MAX_ID and is_text(application_id):
        application = await config.get_application(application_id)
    else:
        application = None
    if application is None or application.identity_store_id != store_id:
        raise NotFound("No application has this id.", field="applicationId")
    return application


async def consents(ctx: Context, customer_id: str, application_id: str | None) -> list[ConsentState]:
    """Each item of the application's consent policy, in policy order, with the customer's answer.

    NotFound for an unknown application or one of another identity store; FeatureDisabled when privacy
    and data is off (for the customer; admins with ``customers:read`` always see it).
    """
    customer = await viewed_customer(ctx, customer_id, Area.PRIVACY_AND_DATA)
    application = await _application(ctx, application_id, customer.store_id)
    latest = await consent_store.latest_by_key(customer.id, application.id,
                                               [item.key for item in application.consent_policy])
    return [_state(application.id, item, latest.get(item.key)) for item in application.consent_policy]


async def answered_elsewhere(ctx: Context, customer_id: str) -> list[ApplicationDocument]:
    """The other applications of the customer's identity store whose consent items the customer answered
    (the hosted portal lists their consents beside the request's application's), the ones
    answered lately first. FeatureDisabled when privacy and data is off."""
    customer = await viewed_customer(ctx, customer_id, Area.PRIVACY_AND_DATA)
    found: dict[str, ApplicationDocument | None] = {}
    for event in await consent_store.latest_of_customer(customer.id):
        if event.application_id != ctx.application.id and event.application_id not in found:
            found[event.application_id] = await config.get_application(event.application_id)
    return [application for application in found.values()
            if application is not None and application.identity_store_id == customer.store_id
            and application.consent_policy]


HISTORY_LIMIT = 100


async def history(ctx: Context, customer_id: str, application_id: str | None = None) -> list[ConsentEventDocument]:
    """The customer's newest consent events (at most ``HISTORY_LIMIT``), newest first; only one
    application's when ``application_id`` is given. The data export holds the whole history."""
    customer = await viewed_customer(ctx, customer_id, Area.PRIVACY_AND_DATA)
    return await consent_store.history(customer.id, application_id, HISTORY_LIMIT)


async def _still_active(customer_id: str) -> bool:
    customer = await customers.get(customer_id)
    return customer is not None and customer.status == CustomerStatus.ACTIVE


def _event_id(now_ms: int) -> str:
    """Ids grow with time (the epoch milliseconds first), so they order events within one millisecond."""
    return f"{now_ms:013x}{uuid.uuid4().hex[:19]}"


async def set_consent(ctx: Context, application_id: str, key: str, granted: bool) -> ConsentState:
    """Grant (the item's current version) or withdraw one consent item for the signed-in customer.

    Appends a consent event, unless it would change nothing (already granted at this version, or
    already withdrawn). NotFound for an unknown application (or one of another identity store) or key;
    ConsentRequired for withdrawing a required item; FeatureDisabled when privacy and data is off.
    The account is read again after the append: if it was disabled or erased meanwhile, the event is
    removed and the answer is UNAUTHENTICATED, so an answer racing an erasure leaves nothing behind.
    """
    customer_id = own_account(ctx, Area.PRIVACY_AND_DATA)
    problems = Problems()
    if not application_id or len(application_id) > MAX_ID or not is_text(application_id):
        problems.add("applicationId", "INVALID", "Give an application id.")
    if not key or len(key) > MAX_KEY or not is_text(key):
        problems.add("key", "INVALID", f"Give a consent key of at most {MAX_KEY} characters.")
    problems.raise_if_any()
    await ratelimit.hit(ctx, "consent-set", customer_id, ctx.rules.consent_changes)
    customer = await viewed_customer(ctx, customer_id, Area.PRIVACY_AND_DATA)
    application = await _application(ctx, application_id, customer.store_id)
    item = next((i for i in application.consent_policy if i.key == key), None)
    if item is None:
        raise NotFound("This application asks for no consent with this key.", field="key")
    if not granted and item.required:
        raise ConsentRequired(field="granted")
    latest = (await consent_store.latest_by_key(customer_id, application.id, [key])).get(key)
    unchanged = latest is not None and latest.granted == granted and (not granted or latest.version == item.version)
    if unchanged:
        return _state(application.id, item, latest)
    now = ctx.now()
    event = ConsentEventDocument(
        id=_event_id(ctx.now_ms()), customer_id=customer_id, application_id=application.id, key=key,
        version=item.version, granted=granted, at=now, ip_address=ctx.request.ip_address,
        user_agent=(ctx.request.user_agent or "")[:512] or None,
    )
    await consent_store.append(event)
    if not await _still_active(customer_id):
        # The account was disabled or erased while this request ran (its erasure may already have swept
        # the consents): take the answer back rather than leave it behind.
        await consent_store.remove_appended(event.id)
        raise unauthenticated()
    await audit.record(ctx, "customer.consent_granted" if granted else "customer.consent_withdrawn",
                       subject_id=customer_id, consent_application_id=application.id, key=key, version=item.version)
    return _state(application.id, item, event)
