"""The browser machinery shared by the web and GUI envs: a host's browsers die with the process that owns them
(real Chromium, every env kind that drives one), the host sampler sees a run's browsers, and set-of-marks drawing
outlines exactly the boxes it is given."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import pytest

import agentgym
from agentgym.envs.browser.host import marked_browser_pids
from agentgym.envs.browser.marks import draw_marks
from agentgym.envs.browser.watch import HostSampler
from agentgym.envs.web.observation import Element, set_of_marks
from agentgym.processes import alive, stop_pids_sync, wait_gone

BROWSER_ENVS = [("agentgym/web-miniwob-v0", {"tasks": ["click-test"]}), ("agentgym/gui-phone-v0", {})]


@pytest.mark.parametrize(("env_id", "kwargs"), BROWSER_ENVS)
def test_killing_the_owning_process_leaves_no_browser_behind(env_id, kwargs):
    code = ("import asyncio, agentgym\n"
            "async def main():\n"
            f"    env = agentgym.make({env_id!r}, **{kwargs!r})\n"
            "    await env.areset(seed=0)\n"
            "    print(' '.join(map(str, env.browser_session.host.process_tree())), flush=True)\n"
            "    await asyncio.sleep(60)\n"
            "asyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # the browser notices its owner's pipe closed and exits by itself: wait for that (bounded), no signal
        assert wait_gone(pids, timeout_s=60) == []
    finally:
        proc.kill()
        proc.wait()
        stop_pids_sync(pids)   # only if the assertion failed: leave nothing behind for the next test


async def test_the_sampler_sees_a_runs_browser_and_none_survives_closing_it():
    async with HostSampler(interval_s=0.1) as sampler:
        async with agentgym.make("agentgym/web-miniwob-v0", tasks=["click-test"]) as env:
            await env.areset(seed=0)
            await sampler.sample()
            main = set(marked_browser_pids()) & set(env.browser_session.host.process_tree())
            assert len(main) == 1 and main <= sampler.pids and len(sampler.pids) > 1 and sampler.peak_pss_mb > 0
    assert sampler.survivors() == [] and not main & set(marked_browser_pids())


RED, WHITE = (255, 0, 0), (255, 255, 255)


def _blank_png(width: int = 100, height: int = 80) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), WHITE).save(out, format="PNG")
    return out.getvalue()


def _pixels(png: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def test_marks_outline_each_box_with_its_label_and_skip_boxes_off_the_image_or_too_thin():
    image = _pixels(draw_marks(_blank_png(), [("7", (20, 30, 60, 50)), ("off", (200, 200, 250, 250)),
                                               ("thin", (5, 5, 5.5, 40))], "gui"))
    assert image.getpixel((20, 40)) == RED and image.getpixel((60, 40)) == RED    # left and right edges
    assert image.getpixel((40, 40)) == WHITE                                     # the inside stays visible
    assert image.getpixel((5, 20)) == WHITE                                      # the thin box is not drawn
    tag = [image.getpixel((x, y)) for x in range(20, 28) for y in range(20, 30)]
    assert RED in tag and any(g > 100 for _, g, _ in tag)                        # a red tag with a light label


def test_web_marks_only_interactive_elements_with_a_box():
    elements = [Element("1", "BUTTON", (10, 10, 30, 20), False), Element("2", "DIV", (50, 10, 30, 20), False),
                Element("3", "DIV", (10, 50, 30, 20), True), Element("4", "A", None, False)]
    image = _pixels(set_of_marks(_blank_png(), elements))
    assert image.getpixel((10, 20)) == RED      # a button
    assert image.getpixel((50, 20)) == WHITE    # a plain div is not interactive
    assert image.getpixel((10, 60)) == RED      # a div where the pointer cursor starts is
