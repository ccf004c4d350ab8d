"""The attribute schema: what each standard attribute accepts, the custom attributes admins define
for an identity store, and the validation of every value against them.

Standard attributes (OIDC standard claims) are fixed; each is checked by a library made for it:

- ``givenName``, ``middleName``, ``familyName``: at most 100 characters, no control characters
  (the rule registration applies to names).
- ``phoneNumber``: parsed and checked with ``phonenumbers`` (``is_valid_number``), stored as E.164.
  A number without ``+`` is read in the country of the customer's address, if it has one.
- ``address { streetAddress locality region postalCode country }``: short texts (a street address may
  hold line breaks), ``country`` an ISO 3166-1 alpha-2 code from Babel's (CLDR's) territory list.
- ``birthdate``: ``YYYY-MM-DD``, a real date, not after today (UTC, by the context's clock) and at
  most 150 years ago.
- ``locale``: a BCP 47 language tag Babel knows (``en``, ``fr-CA``, ``zh-Hant-TW``), stored in its
  canonical case.

Custom attributes are defined per identity store (``attribute_definitions``), so they change without
a deploy. A definition has a ``key``, a ``label``, a ``type`` (STRING, NUMBER, BOOLEAN, DATE, ENUM),
validation (``required``, ``maxLength``, ``pattern``, ``enumValues``) and two self-service switches.
Its ``pattern`` is an admin-written regular expression run against customer input: it is compiled
when the definition is saved, and matched with the ``regex`` module under a time limit, in a worker
thread with the interpreter lock released, so a catastrophic pattern can neither hang a request nor
stall the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import phonenumbers
import regex
from babel import Locale, UnknownLocaleError
from babel.core import parse_locale

from resolvers import audit
from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problems
from resolvers.security import is_text, new_id
from stores import attributes as definitions_store
from stores import customers
from stores.documents import Address, AttributeDefinitionDocument, AttributeType

logger = logging.getLogger("resolvers.attributes")

NAME_MAX = 100
PHONE_INPUT_MAX = 40
ADDRESS_LIMITS = {"street_address": 300, "locality": 100, "region": 100, "postal_code": 20, "country": 2}
ADDRESS_FIELDS = {"street_address": "streetAddress", "locality": "locality", "region": "region",
                  "postal_code": "postalCode", "country": "country"}
LOCALE_MAX = 35
BIRTHDATE_MAX_AGE_YEARS = 150
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

KEY_RE = re.compile(r"^[a-z][A-Za-z0-9_]{0,63}$")  # a MongoDB field name: no "." and no "$"
LABEL_MAX = 100
PATTERN_MAX = 500
ENUM_MAX_VALUES = 100
ENUM_VALUE_MAX = 100
STRING_MAX = 1000  # a custom STRING value, and the largest maxLength a definition may set
MAX_DEFINITIONS = 100  # per identity store, so a customer document stays small
PATTERN_TIMEOUT_SECONDS = 0.1
SAFE_INTEGER = 2**53 - 1  # the largest integer every JSON client reads exactly

# Standard attribute names (as the API spells them, and as stored): a custom key may not shadow one.
STANDARD_FIELDS = {"given_name": "givenName", "middle_name": "middleName", "family_name": "familyName",
                   "email": "email", "phone_number": "phoneNumber", "address": "address",
                   "birthdate": "birthdate", "locale": "locale"}
RESERVED_KEYS = {name.casefold() for pair in STANDARD_FIELDS.items() for name in pair} | {
    "id", "username", "status", "password", "attributes", "emailverified", "email_verified"}

# Codes in Babel's territory list that are not ISO 3166-1 alpha-2 country codes: exceptionally reserved
# codes, groupings and private-use codes. XK (Kosovo, user-assigned) is kept: CLDR, the EU and most
# carriers use it, and its residents have no other code.
NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (249 assigned, plus XK), from Babel's copy of CLDR."""
    return frozenset(code for code in Locale("en").territories
                     if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES)


def has_control(value: str, *, allow_newline: bool = False) -> bool:
    """True for a string with a control character (C0, DEL, C1) or a lone surrogate (not text at all)."""
    if not is_text(value):
        return True
    return any(unicodedata.category(ch) == "Cc" and not (allow_newline and ch in "\r\n") for ch in value)


def _text(problems: Problems, value: Any, field: str, max_length: int, *, allow_newline: bool = False) -> str | None:
    """A trimmed short text, or None when empty; a problem for a non-string, an over-long value or control
    characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(field, "INVALID", "Enter text.")
        return None
    value = value.strip()
    if len(value) > max_length:
        problems.add(field, "TOO_LONG", f"Use at most {max_length} characters.")
    elif has_control(value, allow_newline=allow_newline):
        problems.add(field, "INVALID", "Remove control characters.")
    return value or None


def validate_name(problems: Problems, value: str | None, field: str) -> str | None:
    """A person's name (given, middle, family), trimmed; None when empty. Registration applies it too."""
    return _text(problems, value, field, NAME_MAX)


def validate_phone(problems: Problems, value: str | None, field: str = "phoneNumber",
                   region: str | None = None) -> str | None:
    """The number in E.164 (``+41446681800``), or None when empty.

    Parsed by ``phonenumbers``; without a leading ``+`` it is read as a number of ``region`` (ISO 3166-1
    alpha-2, the customer's address country) if there is one. ``INVALID`` when it cannot be parsed or is
    not a valid number for its country.
    """
    value = _text(problems, value, field, PHONE_INPUT_MAX)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        problems.add(field, "INVALID", "Enter a valid phone number in international format, e.g. +41 44 668 18 00.")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_country(problems: Problems, value: str | None, field: str = "address.country") -> str | None:
    """An ISO 3166-1 alpha-2 code in upper case (``de`` is ``DE``), or None when empty."""
    value = _text(problems, value, field, 2)
    if value is None:
        return None
    if value.upper() not in country_codes():
        problems.add(field, "INVALID", "Use an ISO 3166-1 alpha-2 country code, such as DE or CA.")
        return None
    return value.upper()


def validate_address(problems: Problems, changes: dict[str, Any] | None, current: Address | None) -> Address | None:
    """The address after ``changes`` (a sub-field left out stays, one given as None is cleared); None when
    no part is left. ``changes`` None clears the whole address."""
    if changes is None:
        return None
    merged = (current or Address()).model_dump()
    for name, value in changes.items():
        field = f"address.{ADDRESS_FIELDS[name]}"
        if name == "country":
            merged[name] = validate_country(problems, value, field)
        else:
            merged[name] = _text(problems, value, field, ADDRESS_LIMITS[name], allow_newline=name == "street_address")
    return Address(**merged) if any(merged.values()) else None


def _iso_date(problems: Problems, value: Any, field: str) -> date | None:
    if not isinstance(value, str) or not ISO_DATE.match(value.strip()):
        problems.add(field, "INVALID", "Use a date as YYYY-MM-DD.")
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.add(field, "INVALID", "This date does not exist.")
        return None


def validate_birthdate(problems: Problems, value: str | None, now: datetime, field: str = "birthdate") -> str | None:
    """``YYYY-MM-DD``, not after today (UTC, by ``now``) and at most 150 years ago; None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = _iso_date(problems, value, field)
    if day is None:
        return None
    today = now.date()
    if day > today:
        problems.add(field, "IN_FUTURE", "A birthdate cannot be in the future.")
        return None
    if day.year < today.year - BIRTHDATE_MAX_AGE_YEARS:
        problems.add(field, "OUT_OF_RANGE", f"Use a date within the last {BIRTHDATE_MAX_AGE_YEARS} years.")
        return None
    return day.isoformat()


def validate_locale(problems: Problems, value: str | None, field: str = "locale") -> str | None:
    """A BCP 47 tag Babel knows, in canonical case (``EN-us`` is ``en-US``, ``zh-hant-tw`` is
    ``zh-Hant-TW``); None when empty. ``INVALID`` for malformed tags, extensions, ``und`` and unknown
    languages."""
    value = _text(problems, value, field, LOCALE_MAX)
    if value is None:
        return None
    try:
        language, territory, script, variant = parse_locale(value.replace("_", "-"), sep="-")[:4]
        if language == "und":
            raise ValueError(value)
        Locale.parse(value.replace("_", "-"), sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        problems.add(field, "INVALID", "Use a language tag such as en, fr-CA or zh-Hant-TW.")
        return None
    parts = [language.lower(), script.title() if script else None, territory.upper() if territory else None,
             variant.lower() if variant else None]
    return "-".join(part for part in parts if part)


# -- custom attribute definitions ---------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeView:
    """One custom attribute of one customer, as shown to them (``me.attributes``) or to an admin."""

    key: str
    label: str
    type: AttributeType
    value: Any  # str, int or float, bool, "YYYY-MM-DD", or None when the customer has none
    editable: bool
    required: bool
    archived: bool
    enum_values: tuple[str, ...] = ()  # an ENUM's choices, in the definition's order


async def definitions(ctx: Context, store_id: str) -> list[AttributeDefinitionDocument]:
    """A store's definitions, archived included: one query per request and store (the loader batches)."""
    if ctx.loaders is not None:
        return await ctx.loaders.attribute_definitions.load(store_id)
    return await definitions_store.list_for_store(store_id)


def typed_value(definition: AttributeDefinitionDocument, raw: Any) -> Any:
    """A stored value in its definition's type (nx-27017 returns booleans written by ``$set`` as 1/0)."""
    if raw is not None and definition.type == AttributeType.BOOLEAN and isinstance(raw, int):
        return bool(raw)
    return raw


def self_service_visible(definition: AttributeDefinitionDocument) -> bool:
    return definition.self_service_visible and not definition.archived


def editable(definition: AttributeDefinitionDocument, *, by_admin: bool) -> bool:
    """Whether a value may be set: by an admin, any live definition; by the customer, a visible and
    self-service editable one."""
    if by_admin:
        return not definition.archived
    return self_service_visible(definition) and definition.self_service_editable


def views(defs: list[AttributeDefinitionDocument], values: dict[str, Any], *, by_admin: bool) -> list[AttributeView]:
    """What a customer sees (visible, live definitions) or an admin sees (every definition)."""
    shown = defs if by_admin else [d for d in defs if self_service_visible(d)]
    return [AttributeView(key=d.key, label=d.label, type=d.type, value=typed_value(d, values.get(d.key)),
                          editable=editable(d, by_admin=by_admin), required=d.required, archived=d.archived,
                          enum_values=tuple(d.enum_values))
            for d in shown]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


async def matches(pattern: str, value: str) -> bool | None:
    """Whether ``value`` matches ``pattern`` in full; None when the match ran out of time.

    The ``regex`` module releases the interpreter lock while it matches (``concurrent=True``) in a
    worker thread, and gives up after ``PATTERN_TIMEOUT_SECONDS``.
    """
    try:
        found = await asyncio.to_thread(_compiled(pattern).fullmatch, value, concurrent=True,
                                        timeout=PATTERN_TIMEOUT_SECONDS)
    except TimeoutError:
        return None
    return found is not None


async def check_value(problems: Problems, definition: AttributeDefinitionDocument, value: Any, field: str) -> Any:
    """The value to store for a custom attribute, or None to remove it; problems name ``field``.

    JSON types per attribute type: STRING a string (trimmed, within ``maxLength`` and ``pattern``),
    NUMBER a finite number (integers within ±2^53-1), BOOLEAN true/false, DATE ``YYYY-MM-DD``, ENUM
    one of ``enumValues``. None (or an empty string) removes the value: ``REQUIRED`` for a required one.
    """
    if isinstance(value, str) and definition.type != AttributeType.ENUM:
        value = value.strip() or None
    if value is None or value == "":
        if definition.required:
            problems.add(field, "REQUIRED", f"{definition.label} is required.")
        return None
    kind = definition.type
    if kind == AttributeType.STRING:
        if not isinstance(value, str):
            problems.add(field, "INVALID", "Enter text.")
        elif len(value) > (definition.max_length or STRING_MAX):
            problems.add(field, "TOO_LONG", f"Use at most {definition.max_length or STRING_MAX} characters.")
        elif has_control(value):
            problems.add(field, "INVALID", "Remove control characters.")
        elif definition.pattern:
            matched = await matches(definition.pattern, value)
            if matched is None:
                logger.warning("attribute pattern timed out: store=%s key=%s", definition.store_id, definition.key)
                problems.add(field, "PATTERN_TIMEOUT", "This value could not be checked; try a shorter one.")
            elif not matched:
                problems.add(field, "PATTERN_MISMATCH", f"{definition.label} is not in the expected format.")
        return value
    if kind == AttributeType.NUMBER:
        number_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok or (isinstance(value, int) and abs(value) > SAFE_INTEGER):
            problems.add(field, "INVALID", "Enter a number.")
        return value
    if kind == AttributeType.BOOLEAN:
        if not isinstance(value, bool):
            problems.add(field, "INVALID", "Enter true or false.")
        return value
    if kind == AttributeType.DATE:
        day = _iso_date(problems, value, field)
        return day.isoformat() if day else None
    if not isinstance(value, str) or value not in definition.enum_values:
        problems.add(field, "INVALID", f"Choose one of: {', '.join(definition.enum_values)}.")
    return value


# -- the admin API -----------------------------------------------------------------------------------

DEFINITION_FIELDS = {"label": "label", "required": "required", "max_length": "maxLength", "pattern": "pattern",
                     "enum_values": "enumValues", "self_service_visible": "selfServiceVisible",
                     "self_service_editable": "selfServiceEditable", "archived": "archived"}


def _check_definition(problems: Problems, d: dict[str, Any]) -> dict[str, Any]:
    """Validate a definition's settings (a whole one: created, or merged with an update); returns them cleaned."""
    kind = AttributeType(d["type"])
    label = _text(problems, d.get("label"), "label", LABEL_MAX)
    if label is None and not any(p.field == "label" for p in problems.items):
        problems.add("label", "REQUIRED", "Enter a label.")
    d["label"] = label
    if d.get("max_length") is not None:
        if kind != AttributeType.STRING:
            problems.add("maxLength", "NOT_ALLOWED", "Only STRING attributes have a maximum length.")
        elif not 1 <= d["max_length"] <= STRING_MAX:
            problems.add("maxLength", "OUT_OF_RANGE", f"Use 1 to {STRING_MAX}.")
    pattern = d.get("pattern")
    if pattern is not None and pattern != "":
        if kind != AttributeType.STRING:
            problems.add("pattern", "NOT_ALLOWED", "Only STRING attributes have a pattern.")
        elif len(pattern) > PATTERN_MAX or has_control(pattern):
            problems.add("pattern", "TOO_LONG" if len(pattern) > PATTERN_MAX else "INVALID",
                         f"Use a regular expression of at most {PATTERN_MAX} characters.")
        else:
            try:
                _compiled(pattern)
            except (regex.error, OverflowError, RecursionError, ValueError) as exc:
                problems.add("pattern", "INVALID", f"Not a valid regular expression: {exc}")
    d["pattern"] = pattern or None
    values = d.get("enum_values") or []
    if kind == AttributeType.ENUM:
        cleaned = [v.strip() if isinstance(v, str) else v for v in values]
        if not cleaned:
            problems.add("enumValues", "REQUIRED", "List the values an ENUM attribute may take.")
        elif len(cleaned) > ENUM_MAX_VALUES:
            problems.add("enumValues", "TOO_MANY", f"Use at most {ENUM_MAX_VALUES} values.")
        elif any(not v or len(v) > ENUM_VALUE_MAX or has_control(v) for v in cleaned):
            problems.add("enumValues", "INVALID", f"Each value is 1 to {ENUM_VALUE_MAX} characters of text.")
        elif len(set(cleaned)) != len(cleaned):
            problems.add("enumValues", "DUPLICATE", "List each value once.")
        d["enum_values"] = cleaned
    elif values:
        problems.add("enumValues", "NOT_ALLOWED", "Only ENUM attributes have values to choose from.")
    if d.get("self_service_editable") and not d.get("self_service_visible"):
        problems.add("selfServiceEditable", "NOT_ALLOWED", "A customer can only edit an attribute they can see.")
    return d


async def list_definitions(ctx: Context) -> list[AttributeDefinitionDocument]:
    """The attribute schema of the request's identity store (archived definitions included), oldest first."""
    return await definitions(ctx, ctx.application.identity_store_id)


async def create_definition(ctx: Context, *, key: str, label: str, type: AttributeType, required: bool = False,
                            max_length: int | None = None, pattern: str | None = None,
                            enum_values: list[str] | None = None, self_service_visible: bool = True,
                            self_service_editable: bool = True) -> AttributeDefinitionDocument:
    """Add a custom attribute to the request's identity store.

    InvalidInput: ``key`` ``INVALID`` (a letter, then letters, digits, ``_``; 64 at most), ``RESERVED`` (a
    standard attribute's name), ``TAKEN`` (archived definitions keep their key), ``TOO_MANY`` (100 per
    store); ``label``, ``maxLength``, ``pattern`` (compiled here), ``enumValues``, ``selfServiceEditable``
    as ``_check_definition`` says.
    """
    store_id = ctx.application.identity_store_id
    problems = Problems()
    key = key.strip() if isinstance(key, str) else ""
    if not KEY_RE.match(key):
        problems.add("key", "INVALID", "Start with a lower-case letter; use letters, digits and _ (64 at most).")
    elif key.casefold() in RESERVED_KEYS:
        problems.add("key", "RESERVED", "This is the name of a standard attribute.")
    settings = _check_definition(problems, {
        "type": type, "label": label, "required": required, "max_length": max_length, "pattern": pattern,
        "enum_values": enum_values, "self_service_visible": self_service_visible,
        "self_service_editable": self_service_editable})
    problems.raise_if_any()
    if len(await definitions_store.list_for_store(store_id)) >= MAX_DEFINITIONS:
        problems.add("key", "TOO_MANY", f"An identity store has at most {MAX_DEFINITIONS} custom attributes.")
        problems.raise_if_any()
    definition = AttributeDefinitionDocument(id=new_id(), store_id=store_id, key=key, created_at=ctx.now(),
                                             **{**settings, "enum_values": settings["enum_values"] or []})
    try:
        await definitions_store.insert(definition)
    except definitions_store.DuplicateAttributeKey:
        problems.add("key", "TAKEN", "This store has an attribute with this key (perhaps archived).")
        problems.raise_if_any()
    await audit.record(ctx, "attribute_definition.created", subject_id=definition.id, key=key, type=str(type))
    return definition


async def update_definition(ctx: Context, definition_id: str, version: int,
                            changes: dict[str, Any]) -> AttributeDefinitionDocument:
    """Change some settings of a definition read at ``version`` (``key`` and ``type`` never change).

    ``changes`` holds only the settings given (snake_case; None clears ``maxLength``/``pattern``).
    New rules apply to values written from now on; stored values stay as they are. NotFound for an id
    outside this store; Conflict(current version) when someone changed it since ``version``; InvalidInput
    as for creation.
    """
    store_id = ctx.application.identity_store_id
    current = await definitions_store.get(store_id, definition_id) if _plausible_id(definition_id) else None
    if current is None:
        raise NotFound("No attribute definition has this id.", field="id")
    if current.version != version:
        raise Conflict(current.version)
    problems = Problems()
    for name in ("required", "self_service_visible", "self_service_editable", "archived", "label"):
        if name in changes and changes[name] is None:
            problems.add(DEFINITION_FIELDS[name], "REQUIRED", "This setting cannot be empty.")
    problems.raise_if_any()
    merged = _check_definition(problems, {**current.model_dump(include=set(DEFINITION_FIELDS) | {"type"}), **changes})
    problems.raise_if_any()
    fields = {name: merged[name] for name in changes}
    updated = await definitions_store.update(store_id, definition_id, version, fields, ctx.now_ms())
    if updated is None:
        latest = await definitions_store.get(store_id, definition_id)
        if latest is None:
            raise NotFound("No attribute definition has this id.", field="id")
        raise Conflict(latest.version)
    await audit.record(ctx, "attribute_definition.updated", subject_id=definition_id, key=current.key,
                       fields=sorted(DEFINITION_FIELDS[name] for name in changes))
    return updated


def _plausible_id(definition_id: str) -> bool:
    return isinstance(definition_id, str) and 0 < len(definition_id) <= 64 and is_text(definition_id)


async def delete_definition(ctx: Context, definition_id: str) -> bool:
    """Remove a definition; True when it was archived instead, because customers hold values for it.

    It is archived first (no new values are accepted from then on), then deleted only if no customer of
    the store holds a value for its key: customer data is never silently dropped. An archived definition
    keeps its key, is hidden from customers and shown to admins with ``archived: true``; an admin can
    clear the values (``customerUpdate``) and delete it again, or un-archive it. NotFound for an id
    outside this store.
    """
    store_id = ctx.application.identity_store_id
    definition = await definitions_store.archive(store_id, definition_id, ctx.now_ms()) \
        if _plausible_id(definition_id) else None
    if definition is None:
        raise NotFound("No attribute definition has this id.", field="id")
    if await customers.has_attribute_value(store_id, definition.key):
        await audit.record(ctx, "attribute_definition.archived", subject_id=definition_id, key=definition.key)
        return True
    await definitions_store.delete(store_id, definition_id)
    await audit.record(ctx, "attribute_definition.deleted", subject_id=definition_id, key=definition.key)
    return False
