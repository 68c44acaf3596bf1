"""The OpenAI-compatible HTTP policy against a real HTTP server on loopback speaking /v1/chat/completions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentgym.errors import PolicyError
from agentgym.policies.openai_http import OpenAIChatPolicy
from agentgym.policy import PolicyObservation


class ScriptedServer:
    """A loopback chat-completions server: explores once with execute_sql, then submits a fixed query.

    ``fail_first`` answers that many requests with HTTP 500 first (to exercise retries).
    """

    def __init__(self, fail_first: int = 0, status: int = 200, error: str = "bad request: unknown model"):
        self.requests: list[dict] = []
        self.fail_first = fail_first
        self.status = status
        self.error = error
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    return self._send(500, {"error": "overloaded"})
                if outer.status != 200:
                    return self._send(outer.status, {"error": {"message": outer.error}})
                explored = any(m.get("role") == "tool" for m in body["messages"])
                name, query = ("submit_sql", "SELECT 1") if explored else ("execute_sql", "SELECT 2")
                self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [{
                    "index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": None, "tool_calls": [{
                        "id": f"call_{len(outer.requests)}", "type": "function",
                        "function": {"name": name, "arguments": json.dumps({"query": query})}}]},
                    "logprobs": {"content": [{"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -0.25}]}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2}})

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def observation(messages=None) -> PolicyObservation:
    return PolicyObservation(messages=messages or [{"role": "user", "content": "hi"}], turn=0, episode_id="e",
                             env_id="agentgym/sql-v0", task_id="t", seed=3)


TOOLS = [{"type": "function", "function": {"name": "execute_sql", "parameters": {"type": "object", "properties": {}}}}]


async def test_request_carries_messages_tools_and_key_and_the_reply_is_parsed():
    with ScriptedServer() as server:
        async with OpenAIChatPolicy(server.url, "tiny", api_key="sk-test", logprobs=True) as policy:
            action = await policy.act(observation(), TOOLS)
    [req] = server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "tiny" and req["body"]["tools"] == TOOLS and req["body"]["logprobs"] is True
    assert req["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert action.message["tool_calls"][0]["function"]["name"] == "execute_sql"
    assert action.logprobs == [-0.5, -0.25] and action.finish_reason == "tool_calls"


async def test_server_errors_are_retried_and_client_errors_are_not():
    with ScriptedServer(fail_first=2) as server:
        async with OpenAIChatPolicy(server.url, "tiny", max_retries=2) as policy:
            await policy.act(observation(), TOOLS)
    assert len(server.requests) == 3
    with ScriptedServer(status=400) as server:
        async with OpenAIChatPolicy(server.url, "tiny", max_retries=2) as policy:
            with pytest.raises(PolicyError, match="unknown model"):
                await policy.act(observation(), TOOLS)
    assert len(server.requests) == 1


async def test_unreachable_server_is_a_policy_error():
    async with OpenAIChatPolicy("http://127.0.0.1:9/v1", "tiny", max_retries=1, timeout_s=2) as policy:
        with pytest.raises(PolicyError, match="no answer"):
            await policy.act(observation(), TOOLS)


def test_bench_with_the_openai_policy_over_loopback(tmp_path):
    with ScriptedServer() as server:
        out = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/sql-v0", "--policy", "openai",
                              "--base-url", server.url, "--model", "tiny", "--episodes", "5", "--concurrency", "2",
                              "--out", str(tmp_path), "--no-progress"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["policy"] == "openai:tiny" and results["episodes"] == 5 and results["infra_errors"] == 0
    assert results["mean_turns"] == 2.0  # explore, then submit
    # the second request of an episode carries the tool result of the first
    second = [r["body"]["messages"] for r in server.requests if any(m["role"] == "tool" for m in r["body"]["messages"])]
    assert second and second[0][-1]["role"] in ("tool", "user")


async def test_rate_limits_back_off_and_context_overflow_is_its_own_error():
    from agentgym.errors import ContextOverflowError

    with ScriptedServer(fail_first=1) as server:
        async with OpenAIChatPolicy(server.url, "tiny", max_retries=1, backoff_s=0.01) as policy:
            assert policy._backoff(1, None) == 0.01 and policy._backoff(3, None) == 0.04
            await policy.act(observation(), TOOLS)
    assert len(server.requests) == 2

    error = "This model's maximum context length is 512 tokens. However, you requested 900 tokens."
    with ScriptedServer(status=400, error=error) as server:
        async with OpenAIChatPolicy(server.url, "tiny") as policy:
            with pytest.raises(ContextOverflowError, match="maximum context length"):
                await policy.act(observation(), TOOLS)
    assert len(server.requests) == 1  # a client error is never retried
