"""The E2B backend through the real ``e2b-code-interpreter`` client, against a loopback stand-in of the service.

The stand-in speaks the protocol the client uses: ``POST /v2/sandboxes`` on the API host (X-API-KEY), envd's
``/files`` (multipart upload, raw download) and the code interpreter's streamed ``POST /execute`` (JSON lines:
stdout, stderr, result, error, number_of_executions) on the sandbox host, ``DELETE /sandboxes/{id}``. It runs
the code for real, in a local bubblewrap sandbox per E2B sandbox.
"""

from __future__ import annotations

import asyncio
import email.parser
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

import agentgym
from agentgym.envs.code.sandbox import local
from agentgym.envs.code.sandbox.e2b import E2BSandbox
from agentgym.envs.code.sandbox.local import LocalSandbox

pytest.importorskip("e2b_code_interpreter")
pytestmark = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")
API_KEY = "e2b_" + "0" * 40


class StandIn:
    """A loopback E2B: API, envd and code-interpreter endpoints on one port, code run in local sandboxes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.loop_thread.start()
        self.sandboxes: dict[str, LocalSandbox] = {}
        self.requests: list[tuple[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _sandbox(self) -> LocalSandbox:
                return stand_in.sandboxes[self.headers["E2b-Sandbox-Id"]]

            def do_POST(self):
                url = urlparse(self.path)
                stand_in.requests.append(("POST", url.path))
                body = self._body()
                if url.path == "/v2/sandboxes":
                    if self.headers.get("X-API-KEY") != API_KEY:
                        return self._send(401, b'{"code": 401, "message": "Invalid API key"}')
                    sid = "sbx" + uuid.uuid4().hex[:12]
                    stand_in.sandboxes[sid] = stand_in.run(LocalSandbox.create())
                    return self._send(201, json.dumps({"templateID": json.loads(body).get("templateID", "x"),
                                                       "sandboxID": sid, "clientID": "loopback",
                                                       "envdVersion": "0.2.0"}).encode())
                if url.path == "/execute":
                    req = json.loads(body)
                    ex = stand_in.run(self._sandbox().run_code(req["code"], timeout=30))
                    now = "2026-01-01T00:00:00Z"
                    lines = [{"type": "stdout", "text": t, "timestamp": now} for t in ex.logs.stdout]
                    lines += [{"type": "stderr", "text": t, "timestamp": now} for t in ex.logs.stderr]
                    lines += [{"type": "result", "text": r.text, "is_main_result": True} for r in ex.results]
                    if ex.error:
                        lines.append({"type": "error", "name": ex.error.name, "value": ex.error.value,
                                      "traceback": ex.error.traceback})
                    lines.append({"type": "number_of_executions", "execution_count": ex.execution_count})
                    return self._send(200, "".join(json.dumps(x) + "\n" for x in lines).encode(), "application/x-ndjson")
                if url.path == "/files":
                    path = parse_qs(url.query)["path"][0]
                    msg = email.parser.BytesParser().parsebytes(
                        b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                    data = next(part.get_payload(decode=True) for part in msg.walk() if not part.is_multipart())
                    stand_in.run(self._sandbox().files.write(path, data))
                    return self._send(200, json.dumps([{"name": Path(path).name, "type": "file",
                                                        "path": path}]).encode())
                return self._send(404, b'{"message": "not found"}')

            def do_GET(self):
                url = urlparse(self.path)
                stand_in.requests.append(("GET", url.path))
                if url.path == "/files":
                    path = parse_qs(url.query)["path"][0]
                    data = stand_in.run(self._sandbox().files.read(path, format="bytes"))
                    return self._send(200, data, "application/octet-stream")
                if url.path == "/health":
                    return self._send(204)
                return self._send(404, b'{"message": "not found"}')

            def do_DELETE(self):
                url = urlparse(self.path)
                stand_in.requests.append(("DELETE", url.path))
                sandbox = stand_in.sandboxes.pop(url.path.rsplit("/", 1)[-1], None)
                if sandbox is None:
                    return self._send(404, b'{"message": "not found"}')
                stand_in.run(sandbox.kill())
                return self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        for sandbox in list(self.sandboxes.values()):
            self.run(sandbox.kill())
        self.server.shutdown()
        self.server.server_close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join(5)


@pytest.fixture
def stand_in(monkeypatch):
    server = StandIn()
    monkeypatch.setattr(E2BSandbox, "connection", {"api_key": API_KEY, "api_url": server.url,
                                                   "sandbox_url": server.url})
    yield server
    server.close()


async def test_the_real_client_creates_runs_keeps_state_moves_files_and_kills(stand_in):
    sandbox = await E2BSandbox.create()
    assert sandbox.backend == "e2b" and ("POST", "/v2/sandboxes") in stand_in.requests
    first = await sandbox.run_code("x = 20\nprint('hi')")
    assert first.logs.stdout == ["hi\n"] and first.error is None
    second = await sandbox.run_code("x * 2 + 2")
    assert second.text == "42" and second.execution_count == 2
    failed = await sandbox.run_code("1 / 0")
    assert failed.error.name == "ZeroDivisionError" and "1 / 0" in failed.error.traceback
    await sandbox.files.write("/home/user/note.txt", "from the host")
    assert (await sandbox.run_code("open('/home/user/note.txt').read()")).text == "'from the host'"
    assert await sandbox.files.read("/home/user/note.txt") == "from the host"
    await sandbox.kill()
    assert stand_in.requests[-1][0] == "DELETE" and not stand_in.sandboxes


async def test_a_wrong_key_is_an_infrastructure_error(stand_in, monkeypatch):
    from agentgym.envs.code.sandbox import SandboxError

    monkeypatch.setattr(E2BSandbox, "connection", {**E2BSandbox.connection, "api_key": "e2b_" + "1" * 40})
    with pytest.raises(SandboxError, match="could not create an E2B sandbox"):
        await E2BSandbox.create()


async def test_the_env_on_e2b_runs_cells_and_grades_in_a_fresh_e2b_sandbox(stand_in, monkeypatch):
    monkeypatch.setenv("E2B_API_KEY", API_KEY)
    env = agentgym.make("agentgym/code-v0", split="test")  # auto picks e2b when the key is set
    _, info = await env.areset(seed=0)
    assert info["sandbox"] == "e2b"
    obs, *_ = await env.astep("<execute>print(sum(range(10)))</execute>")
    assert "45" in obs["messages"][0]["content"]
    created = sum(1 for r in stand_in.requests if r == ("POST", "/v2/sandboxes"))
    obs, reward, term, _, info = await env.astep(await env.oracle_action())
    assert term and reward == 1.0 and info["sandbox"] == "e2b"
    assert sum(1 for r in stand_in.requests if r == ("POST", "/v2/sandboxes")) == created + 1  # graded in a fresh one
    await env.aclose()
    deadline = time.monotonic() + 60  # a bound for a loaded machine, not a speed target: the poll ends when it empties
    while stand_in.sandboxes and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not stand_in.sandboxes
