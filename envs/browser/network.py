"""Network policy for browser episodes: only the task's own origins load; everything else is blocked.

Apps are served in-process through ``context.route`` (no ports, no server process), ``file://`` task
files are allowed under given roots, and every other request is aborted. ``NetworkPolicy.allows`` is
also what ``goto`` checks before navigating, so the agent gets a clear refusal instead of a blocked page.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from agentgym.envs.browser.host import guarded


@dataclass(frozen=True)
class Response:
    """What an in-process app answers to one request."""

    body: str | bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] | None = None


App = Callable[[str, str, str | None], Awaitable[Response] | Response]  # (method, url, post body) -> Response


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased ('' when it has none)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class NetworkPolicy:
    """Allowed http(s) origins and file:// roots; ``about:blank`` is always allowed."""

    origins: tuple[str, ...] = ()
    file_roots: tuple[str, ...] = ()

    def allows(self, url: str) -> bool:
        """Whether the browser may load `url`."""
        if not isinstance(url, str) or len(url) > 4096:
            return False
        if "\\" in url or any(ord(ch) < 0x20 for ch in url):  # Chromium reads "\\" as "/": no path tricks
            return False
        if url == "about:blank":
            return True
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return origin_of(url) in self.origins
        if scheme == "file" and parts.netloc in ("", "localhost"):
            path = os.path.normpath(unquote(parts.path))
            return any(path == root or path.startswith(root.rstrip("/") + "/")
                       for root in map(os.path.normpath, self.file_roots))
        return False

    def refusal(self, url: str) -> str:
        """The observation text for a refused navigation."""
        allowed = [*self.origins, *(f"file://{r}/" for r in self.file_roots)]
        return (f"goto refused: {str(url)[:200]!r} is outside this task's sites; only these are reachable: "
                f"{', '.join(allowed) or 'none'}")

    async def install(self, context: Any, apps: Mapping[str, App] | None = None, timeout_s: float = 10.0) -> None:
        """Route every request of `context`: serve `apps` by origin, continue allowed ones, abort the rest."""
        apps = {k.lower(): v for k, v in (apps or {}).items()}

        async def handle(route: Any, request: Any) -> None:
            url = request.url
            app = apps.get(origin_of(url))
            if app is not None:
                try:
                    answer = app(request.method, url, request.post_data)
                    if isinstance(answer, Awaitable):
                        answer = await answer
                except Exception as exc:  # an app bug or odd request: a 500 page, never a crashed listener
                    await route.fulfill(status=500, body=f"internal error: {type(exc).__name__}",
                                        content_type="text/plain")
                    return
                headers = dict(answer.headers or {})
                location = headers.get("location") or headers.get("Location")
                if location and not self.allows(urljoin(url, location)):
                    await route.abort("blockedbyclient")  # a redirect must not lead outside the allow-list
                    return
                await route.fulfill(status=answer.status, body=answer.body, content_type=answer.content_type,
                                    headers=headers)
            elif self.allows(url):
                await route.continue_()
            else:
                await route.abort("blockedbyclient")

        await guarded(context.route("**/*", handle), timeout_s, "context.route")
