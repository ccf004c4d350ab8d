"""The four self-service areas a signed-in customer manages, and the policy switches that turn them off.

Every account-management use case starts with :func:`own_account`: it acts only on the signed-in
customer's own account, and only when the application's policy has that area on (else
FeatureDisabled). ``me.selfService`` shows the same switches, so a frontend draws only live tabs.
"""

from __future__ import annotations

from enum import StrEnum

from resolvers.context import Context
from resolvers.errors import FeatureDisabled, unauthenticated


class Area(StrEnum):
    """The areas, named as the policy's ``accountManagement`` fields."""

    PERSONAL_INFORMATION = "personal_information"
    ACCOUNT_SETTINGS = "account_settings"
    SECURITY_SETTINGS = "security_settings"
    PRIVACY_AND_DATA = "privacy_and_data"
    ACCOUNT_DELETION = "account_deletion"  # within account settings
    DATA_EXPORT = "data_export"  # within privacy and data

    @property
    def parent(self) -> Area | None:
        return {Area.ACCOUNT_DELETION: Area.ACCOUNT_SETTINGS, Area.DATA_EXPORT: Area.PRIVACY_AND_DATA}.get(self)


def is_on(ctx: Context, area: Area) -> bool:
    """True when the policy has this area (and the area it belongs to) on."""
    switches = ctx.policy.account_management
    return getattr(switches, area.value) and (area.parent is None or getattr(switches, area.parent.value))


def areas(ctx: Context) -> dict[Area, bool]:
    return {area: is_on(ctx, area) for area in Area}


def own_account(ctx: Context, area: Area) -> str:
    """The signed-in customer's id; raises UNAUTHENTICATED without a customer, FeatureDisabled when the
    area is off."""
    if ctx.principal is None or ctx.principal.kind != "customer":
        raise unauthenticated()
    if not is_on(ctx, area):
        raise FeatureDisabled()
    return ctx.principal.subject_id
