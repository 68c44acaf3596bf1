"""Loop-end cleanup hooks: registered callbacks run inside the loop before it closes, however the loop ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agentgym import shutdown


def test_callbacks_run_inside_the_loop_when_asyncio_run_ends() -> None:
    events: list[str] = []

    async def main() -> str:
        loop = asyncio.get_running_loop()

        async def async_cleanup() -> None:
            await asyncio.sleep(0)  # it can still await: the loop runs
            events.append(f"async, same loop: {asyncio.get_running_loop() is loop}")

        shutdown.on_loop_end(lambda: events.append("sync"))
        shutdown.on_loop_end(async_cleanup)
        events.append("main done")
        return "result"

    assert asyncio.run(main()) == "result"
    assert events == ["main done", "async, same loop: True", "sync"]  # last registered runs first


def test_callbacks_run_once_when_run_early_and_unregister_works() -> None:
    calls: list[str] = []

    async def main() -> None:
        shutdown.on_loop_end(lambda: calls.append("a"))
        unregister = shutdown.on_loop_end(lambda: calls.append("never"))
        unregister()
        await shutdown.run_loop_end()
        assert calls == ["a"]
        shutdown.on_loop_end(lambda: calls.append("late"))  # registered after the early run: runs at the end

    shutdown.run(main())
    assert calls == ["a", "late"]


def test_a_failing_cleanup_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise OSError("disk gone")

    async def main() -> None:
        shutdown.on_loop_end(lambda: calls.append("first registered"))
        shutdown.on_loop_end(broken)

    with caplog.at_level(logging.ERROR, logger="agentgym.shutdown"):
        asyncio.run(main())
    assert calls == ["first registered"]
    assert "disk gone" in caplog.text


def test_a_loop_shut_down_by_hand_runs_them_too() -> None:
    calls: list[str] = []

    async def main() -> None:
        shutdown.on_loop_end(lambda: calls.append("cleanup"))

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        assert calls == []  # the loop has not ended yet
        loop.run_until_complete(loop.shutdown_asyncgens())  # what asyncio documents before close()
        assert calls == ["cleanup"]
    finally:
        loop.close()


def test_each_loop_keeps_its_own_callbacks() -> None:
    calls: list[str] = []

    async def register(name: str) -> None:
        shutdown.on_loop_end(lambda: calls.append(name))

    asyncio.run(register("first loop"))
    asyncio.run(register("second loop"))
    assert calls == ["first loop", "second loop"]


def test_registering_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        shutdown.on_loop_end(lambda: None)
