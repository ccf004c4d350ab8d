"""Per-request DataLoaders: one batched query per kind of object, whatever the query's shape.

Built on first use, so a request that loads nothing (the signed-in ``me`` hot path) pays nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from strawberry.dataloader import DataLoader

from resolvers.context import Clock, epoch_ms
from stores import attributes, config, customers, mfa, sessions
from stores.documents import (
    AttributeDefinitionDocument,
    CustomerDocument,
    MfaFactorDocument,
    PolicyDocument,
    SessionDocument,
)


class Loaders:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    @cached_property
    def customer(self) -> DataLoader[str, CustomerDocument | None]:
        return DataLoader(self._customers)

    @cached_property
    def sessions(self) -> DataLoader[str, list[SessionDocument]]:
        return DataLoader(self._sessions)

    @cached_property
    def mfa_factors(self) -> DataLoader[str, list[MfaFactorDocument]]:
        return DataLoader(self._mfa_factors)

    @cached_property
    def session_count(self) -> DataLoader[str, int]:
        """How many active sessions a customer has, by customer id (counted, not loaded)."""
        return DataLoader(self._session_counts)

    @cached_property
    def mfa_enabled(self) -> DataLoader[str, bool]:
        """Whether a customer has a confirmed second factor, by customer id."""
        return DataLoader(self._mfa_enabled)

    @cached_property
    def policy(self) -> DataLoader[str, PolicyDocument | None]:
        return DataLoader(self._policies)

    @cached_property
    def attribute_definitions(self) -> DataLoader[str, list[AttributeDefinitionDocument]]:
        """By identity store id: every custom attribute definition of the store, archived included."""
        return DataLoader(self._attribute_definitions)

    async def _customers(self, ids: Sequence[str]) -> list[CustomerDocument | None]:
        found = await customers.get_many(ids)
        return [found.get(i) for i in ids]

    async def _sessions(self, subject_ids: Sequence[str]) -> list[list[SessionDocument]]:
        now = self._clock.now()
        found = await sessions.list_active_for_subjects(subject_ids, now, epoch_ms(now))
        return [found.get(i, []) for i in subject_ids]

    async def _mfa_factors(self, customer_ids: Sequence[str]) -> list[list[MfaFactorDocument]]:
        found = await mfa.list_for_customers(customer_ids)
        return [found.get(i, []) for i in customer_ids]

    async def _session_counts(self, subject_ids: Sequence[str]) -> list[int]:
        now = self._clock.now()
        counts = await sessions.count_active_for_subjects(subject_ids, now, epoch_ms(now))
        return [counts.get(i, 0) for i in subject_ids]

    async def _mfa_enabled(self, customer_ids: Sequence[str]) -> list[bool]:
        enabled = await mfa.with_confirmed_factor(customer_ids)
        return [i in enabled for i in customer_ids]

    async def _policies(self, ids: Sequence[str]) -> list[PolicyDocument | None]:
        found = await config.get_policies(ids)
        return [found.get(i) for i in ids]

    async def _attribute_definitions(self, store_ids: Sequence[str]) -> list[list[AttributeDefinitionDocument]]:
        found = await attributes.list_for_stores(store_ids)
        return [found.get(i, []) for i in store_ids]
