"""Per-application email template overrides."""

from __future__ import annotations

from stores.documents import EmailTemplateDocument


def _col():
    return EmailTemplateDocument.get_pymongo_collection()


def template_id(application_id: str, kind: str, locale: str | None) -> str:
    return f"{application_id}:{kind}:{locale or '*'}"


async def upsert(template: EmailTemplateDocument) -> None:
    """Replace the whole override (a template is edited as one unit)."""
    await _col().replace_one({"_id": template.id}, template.model_dump(by_alias=True), upsert=True)


async def delete(application_id: str, kind: str, locale: str | None) -> bool:
    result = await _col().delete_one({"_id": template_id(application_id, kind, locale)})
    return result.deleted_count == 1


async def for_application(application_id: str) -> list[EmailTemplateDocument]:
    found = await _col().find({"application_id": application_id}).sort("_id", 1).to_list()
    return [EmailTemplateDocument.model_validate(raw) for raw in found]


async def best_match(application_id: str, kind: str, locale: str | None) -> EmailTemplateDocument | None:
    """application+locale (fr-CA, then fr), then application (any locale); None means the shipped default."""
    ids = [template_id(application_id, kind, None)]
    if locale:
        language = locale.split("-")[0]
        if language != locale:
            ids.insert(0, template_id(application_id, kind, language))
        ids.insert(0, template_id(application_id, kind, locale))
    found = {raw["_id"]: raw for raw in await _col().find({"_id": {"$in": ids}}).to_list()}
    for wanted in ids:
        if wanted in found:
            return EmailTemplateDocument.model_validate(found[wanted])
    return None


async def delete_for_application(application_id: str) -> int:
    """Every override of an application (it is being deleted)."""
    result = await _col().delete_many({"application_id": application_id})
    return result.deleted_count
