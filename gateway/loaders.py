"""Per-request DataLoaders: one batched query per kind of object, whatever the query's shape."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from resolvers.context import Clock, epoch_ms
from stores import customers, sessions
from stores.documents import CustomerDocument, SessionDocument


class Loaders:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.customer: DataLoader[str, CustomerDocument | None] = DataLoader(self._customers)
        self.sessions: DataLoader[str, list[SessionDocument]] = DataLoader(self._sessions)

    async def _customers(self, ids: Sequence[str]) -> list[CustomerDocument | None]:
        found = await customers.get_many(ids)
        return [found.get(i) for i in ids]

    async def _sessions(self, subject_ids: Sequence[str]) -> list[list[SessionDocument]]:
        now = self._clock.now()
        found = await sessions.list_active_for_subjects(subject_ids, now, epoch_ms(now))
        return [found.get(i, []) for i in subject_ids]
