"""Linear-time scanning of ``<tag>body</tag>`` spans in action text, shared by every tag-shaped parser.

A lazy regex such as ``<tool_call>(.*?)</tool_call>`` restarts its search for the closing tag from
every opening tag, so an action of many unclosed tags costs O(n^2) (tens of seconds for 200,000
characters). This scanner finds each needle with forward-only ``str.find`` passes and matches
openings to closings with one pointer per tag, so its cost is O(n * tags) whatever the text holds.

It keeps the regex's semantics: spans are matched left to right, a body ends at the first closing tag
of its own kind, matches never overlap, and an opening with no closing tag after it is skipped.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TagSpan:
    """One matched ``<tag>body</tag>``: the tag, where the opening tag starts, where the closing tag ends, the body."""

    tag: str
    start: int
    end: int
    body: str


@dataclass
class TagScan:
    """The matched spans in text order, how many opening tags of each kind the text holds, and whether the
    scan stopped at ``max_spans`` (``more``: further spans may follow)."""

    spans: list[TagSpan] = field(default_factory=list)
    opened: dict[str, int] = field(default_factory=dict)
    more: bool = False

    def unclosed(self) -> list[str]:
        """Tags (in the order given to the scan) with more opening tags than matched spans; [] when ``more``."""
        if self.more:
            return []
        matched: dict[str, int] = {}
        for span in self.spans:
            matched[span.tag] = matched.get(span.tag, 0) + 1
        return [tag for tag, count in self.opened.items() if count > matched.get(tag, 0)]


def find_all(text: str, needle: str) -> list[int]:
    """Start positions of every occurrence of `needle` (one forward pass; occurrences may overlap)."""
    out: list[int] = []
    i = text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


def scan_tags(text: str, tags: Sequence[str], max_spans: int | None = None) -> TagScan:
    """Match ``<tag>...</tag>`` spans of the given tags, as ``re.finditer(r"<(a|b)>(.*?)</\\1>", DOTALL)`` would.

    With `max_spans`, stops after that many spans (``more`` then says so).
    """
    scan = TagScan()
    openings: list[tuple[int, str]] = []
    closings: dict[str, list[int]] = {}
    for tag in tags:
        starts = find_all(text, f"<{tag}>")
        scan.opened[tag] = len(starts)
        if starts:
            closings[tag] = ends = find_all(text, f"</{tag}>")
            last = ends[-1] if ends else -1
            # only openings before the tag's last closing can match: unclosed floods cost no more than the finds
            openings.extend((i, tag) for i in starts[:bisect.bisect_left(starts, last)])
    if len(closings) > 1:
        openings.sort()
    next_close = dict.fromkeys(closings, 0)  # per tag: index of the first closing not yet passed (only moves forward)
    consumed = 0  # end of the last match: openings before it lie inside a matched span
    for start, tag in openings:
        if start < consumed:
            continue
        body_start = start + len(tag) + 2
        ends = closings[tag]
        k = next_close[tag]
        while k < len(ends) and ends[k] < body_start:
            k += 1
        next_close[tag] = k
        if k == len(ends):
            continue  # no closing tag after this opening; later openings of this tag have none either
        if max_spans is not None and len(scan.spans) >= max_spans:
            scan.more = True
            break
        close_end = ends[k] + len(tag) + 3
        scan.spans.append(TagSpan(tag, start, close_end, text[body_start:ends[k]]))
        consumed = close_end
    return scan


def strip_tag_blocks(text: str, tag: str) -> str:
    """`text` without its closed ``<tag>...</tag>`` blocks, as ``re.sub(r"<tag>.*?</tag>", "", text, flags=DOTALL)``."""
    spans = scan_tags(text, (tag,)).spans
    if not spans:
        return text
    pieces: list[str] = []
    pos = 0
    for span in spans:
        pieces.append(text[pos:span.start])
        pos = span.end
    pieces.append(text[pos:])
    return "".join(pieces)
