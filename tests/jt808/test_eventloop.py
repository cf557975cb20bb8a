"""The event loop the gateway runs on."""

from __future__ import annotations

import asyncio

from truckcarbon.jt808.eventloop import run_async


def test_run_async_runs_a_coroutine_to_its_result() -> None:
    async def main() -> tuple[int, bool]:
        await asyncio.sleep(0)
        return 42, asyncio.get_running_loop().is_running()

    assert run_async(main()) == (42, True)
