"""Where admin-provided email templates render: a small, fixed set of low-priority threads, never the event loop.

Each render carries its own budget (``resolvers.template_sandbox``): it stops itself at its deadline
and at its size limit, so a thread is never held longer than the time limit. The pool is small and
fixed (``GATEWAY_TEMPLATE_RENDER_THREADS``): a flood of renders waits for a thread instead of taking
more cores from the event loop and the password-hash threads, and its threads run at a lower CPU
priority than both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from resolvers.template_sandbox import RenderBudget, render_source

RENDER_THREAD_NICENESS = 10


def lower_thread_priority(niceness: int = RENDER_THREAD_NICENESS) -> None:
    """Run the calling thread at a lower CPU priority (Linux: threads have their own nice value)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class ThreadRenderPool:
    """Implements ``resolvers.context.RenderPool`` with ``threads`` worker threads and one budget."""

    def __init__(self, *, budget: RenderBudget, threads: int = 1) -> None:
        self.budget = budget
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="template-render",
                                            initializer=lower_thread_priority)

    async def render(self, source: str, part: str, variables: dict[str, Any]) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, render_source, source, part, variables, self.budget)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
