"""Serves PhoneOS at http://phone.local/ through the browser context's router: static files and the store's API."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from agentgym.envs.browser.network import Response
from agentgym.envs.gui.device.store import OpError, PhoneStore

ORIGIN = "http://phone.local"
HOME_URL = ORIGIN + "/"
_STATIC = {"/": ("phone.html", "text/html; charset=utf-8"), "/phone.js": ("phone.js", "text/javascript; charset=utf-8"),
           "/phone.css": ("phone.css", "text/css; charset=utf-8")}


@cache
def _static(name: str) -> str:
    return Path(__file__).with_name(name).read_text(encoding="utf-8")


class PhoneServer:
    """The in-process app for the ``phone.local`` origin; ``store`` is swapped at every episode."""

    def __init__(self) -> None:
        self.store: PhoneStore | None = None

    def __call__(self, method: str, url: str, body: str | None) -> Response:
        path = urlsplit(url).path
        if path in _STATIC:
            name, kind = _STATIC[path]
            return Response(_static(name), content_type=kind, headers={"cache-control": "no-store"})
        if self.store is None:
            return Response("no episode", status=503, content_type="text/plain")
        if path == "/api/state":
            return _json(self.store.state)
        if path == "/api/op" and method == "POST":
            try:
                request = json.loads(body or "{}")
                self.store.apply(str(request.get("op")), request.get("args") or {})
                error = None
            except OpError as exc:
                error = str(exc)
            except (ValueError, AttributeError, TypeError):
                error = "bad request"
            return _json({"state": self.store.state, "error": error})
        return Response("not found", status=404, content_type="text/plain")


def _json(data: object) -> Response:
    return Response(json.dumps(data), content_type="application/json", headers={"cache-control": "no-store"})
