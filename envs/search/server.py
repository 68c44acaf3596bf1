"""A loopback HTTP ``/retrieve`` endpoint speaking Search-R1's retriever payload, so external trainers can use our corpora.

POST ``{"queries": [...], "topk": k, "return_scores": bool}`` -> ``{"result": [[{"document": {"id", "contents"},
"score": s}, ...], ...]}`` (without ``return_scores``: lists of documents). Standard library only
(``http.server`` on a thread); use it as a context manager, or run
``python -m agentgym.envs.search.server --world train --port 8000``.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentgym.envs.search.retrieval import MODES, Mode, Retriever
from agentgym.envs.search.suite import SearchWorld

MAX_BODY_BYTES = 1 << 20
MAX_QUERIES = 512
MAX_TOPK = 100


class _BadRequest(ValueError):
    pass


def retrieve_payload(world: SearchWorld, retriever: Retriever, payload: Any) -> dict[str, Any]:
    """Answer one Search-R1 ``/retrieve`` request body (raises ValueError for a malformed one)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("queries"), list):
        raise _BadRequest('the body must be {"queries": [...], "topk": k, "return_scores": bool}')
    queries = payload["queries"]
    if len(queries) > MAX_QUERIES or not all(isinstance(q, str) for q in queries):
        raise _BadRequest(f"queries must be a list of at most {MAX_QUERIES} strings")
    topk = payload.get("topk", 3)
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= MAX_TOPK:
        raise _BadRequest(f"topk must be an integer in 1..{MAX_TOPK}")
    with_scores = bool(payload.get("return_scores", False))
    result = []
    for hits in retriever.search(queries, topk):
        docs = [{"id": world.ids[h.index], "contents": world.contents(h.index)} for h in hits]
        result.append([{"document": d, "score": h.score} for d, h in zip(docs, hits)] if with_scores else docs)
    return {"result": result}


class RetrievalServer:
    """``/retrieve`` over one world on 127.0.0.1 in a background thread; closed by ``close()`` or ``with``."""

    def __init__(self, world: SearchWorld, mode: Mode = "bm25", host: str = "127.0.0.1", port: int = 0):
        retriever = world.retriever(mode)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet: no per-request logging
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                if self.path.rstrip("/") != "/retrieve":
                    return self._send(404, {"error": "only POST /retrieve exists"})
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    return self._send(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
                try:
                    payload = json.loads(self.rfile.read(length) or b"null")
                    return self._send(200, retrieve_payload(world, retriever, payload))
                except (ValueError, RecursionError) as exc:
                    return self._send(400, {"error": str(exc)[:300]})

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="agentgym-retrieve", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/retrieve"

    def close(self) -> None:
        """Stop serving, close the socket and join the thread (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> RetrievalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    """Serve one world of the default suite until interrupted."""
    from agentgym.envs.search.suite import load_search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=("train", "test", "dev"), default="train")
    parser.add_argument("--mode", choices=MODES, default="bm25")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    data = load_search()
    seed = {"train": data.config.train_seed, "test": data.config.test_seed, "dev": data.config.dev_seed}[args.world]
    with RetrievalServer(data.worlds[seed], args.mode, args.host, args.port) as server:
        print(f"serving {args.world} world ({len(data.worlds[seed].ids)} passages) at {server.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
