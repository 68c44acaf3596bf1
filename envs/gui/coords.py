"""Every coordinate conversion of the GUI env, in one place: screenshot pixels, CSS pixels, normalised [0, 1]
(AitW / DigiRL, with AitW's y-before-x order), CogAgent's 0-1000 grid, and AitW's tap-vs-swipe rule.

Canonical coordinates are screenshot (device) pixels, as AndroidWorld's ``x``/``y``; the browser is driven in
CSS pixels = device pixels / DPR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AITW_SWIPE_DISTANCE_THRESHOLD = 0.04   # android_in_the_wild/action_matching.py: a DUAL_POINT this short is a tap
GRID = 1000.0                          # CogAgent / DigiRL `tap [[x,y]]` grid


@dataclass(frozen=True)
class Screen:
    """The device screen: CSS size (Pixel 7 class) and the device-pixel ratio of screenshots."""

    width: int = 412
    height: int = 839
    dpr: float = 1.0

    @property
    def pixel_size(self) -> tuple[int, int]:
        """Screenshot size in device pixels."""
        return round(self.width * self.dpr), round(self.height * self.dpr)

    def to_css(self, x: float, y: float) -> tuple[float, float]:
        """Device pixels -> CSS pixels."""
        return x / self.dpr, y / self.dpr

    def to_pixels(self, x_css: float, y_css: float) -> tuple[int, int]:
        """CSS pixels -> device pixels (rounded)."""
        return round(x_css * self.dpr), round(y_css * self.dpr)

    def from_normalized(self, x: float, y: float) -> tuple[int, int]:
        """Normalised [0, 1] (x, y) -> device pixels, clamped to the screen."""
        w, h = self.pixel_size
        return _clamp(round(x * w), w), _clamp(round(y * h), h)

    def from_grid(self, x: float, y: float) -> tuple[int, int]:
        """CogAgent 0-1000 grid (x, y) -> device pixels."""
        return self.from_normalized(x / GRID, y / GRID)

    def normalized(self, x: float, y: float) -> tuple[float, float]:
        """Device pixels -> normalised [0, 1] (x, y)."""
        w, h = self.pixel_size
        return x / w, y / h

    def contains(self, x: float, y: float) -> bool:
        """Whether device pixel (x, y) lies on the screen."""
        w, h = self.pixel_size
        return 0 <= x < w and 0 <= y < h


def _clamp(v: int, size: int) -> int:
    return max(0, min(size - 1, v))


def yx_to_xy(point: tuple[float, float]) -> tuple[float, float]:
    """AitW stores points as (y, x); return (x, y)."""
    y, x = point
    return x, y


def is_tap(touch_xy: tuple[float, float], lift_xy: tuple[float, float]) -> bool:
    """AitW's rule: a DUAL_POINT whose normalised points are at most 0.04 apart is a tap, else a swipe."""
    return math.dist(touch_xy, lift_xy) <= AITW_SWIPE_DISTANCE_THRESHOLD


def swipe_direction(touch_xy: tuple[float, float], lift_xy: tuple[float, float]) -> str:
    """The finger's direction of a swipe (dominant axis): 'up', 'down', 'left' or 'right'."""
    dx, dy = lift_xy[0] - touch_xy[0], lift_xy[1] - touch_xy[1]
    if abs(dy) >= abs(dx):
        return "down" if dy > 0 else "up"
    return "right" if dx > 0 else "left"


def scroll_for_swipe(direction: str) -> str:
    """The content scroll a finger swipe causes: swiping up scrolls the content down, and so on."""
    return {"up": "down", "down": "up", "left": "right", "right": "left"}[direction]


# DigiRL-style swipe macros as normalised (x, y) touch -> lift points.
SWIPE_MACROS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "up": ((0.5, 0.8), (0.5, 0.2)), "down": ((0.5, 0.2), (0.5, 0.8)),
    "left": ((0.8, 0.5), (0.2, 0.5)), "right": ((0.2, 0.5), (0.8, 0.5)),
}
