"""Per-request DataLoaders: one batched query per kind of object, whatever the query's shape.

Built on first use, so a request that loads nothing (the signed-in ``me`` hot path) pays nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from strawberry.dataloader import DataLoader

from resolvers.context import Clock, epoch_ms
from stores import attributes, customers, sessions
from stores.documents import AttributeDefinitionDocument, CustomerDocument, SessionDocument


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

    async def _attribute_definitions(self, store_ids: Sequence[str]) -> list[list[AttributeDefinitionDocument]]:
        found = await attributes.list_for_stores(store_ids)
        return [found.get(i, []) for i in store_ids]
