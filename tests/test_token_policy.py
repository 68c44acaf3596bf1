"""TokenPolicy: first-turn prompts equal the chat template's, later turns extend the generated ids without
re-tokenising, server log-probs equal a plain forward pass over a 5-turn SQL episode, and the context guard."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import httpx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")

import agentgym  # noqa: E402
from agentgym.cache import cache_dir  # noqa: E402
from agentgym.errors import PolicyError  # noqa: E402
from agentgym.policies.hf_server import HFServer  # noqa: E402
from agentgym.policies.tiny_model import cached_tiny_model, fit_tiny_model  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.policy import PolicyObservation  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402

TINY = dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256, vocab_size=4096,
            max_position_embeddings=4096)
SQL_CALL = {"name": "execute_sql", "arguments": {"query": "SELECT name FROM sqlite_master"}}
CALL = {"role": "assistant", "content": f"<tool_call>\n{json.dumps(SQL_CALL)}\n</tool_call>"}


def sql_env_start(steps: int = 0):
    """(messages, tools, task ids) of the SQL env's first train task, after `steps` execute_sql calls."""
    env = agentgym.make("agentgym/sql-v0")
    try:
        ids = [t.id for t in env.unwrapped.suite.tasks("train")[:4]]
        obs, _ = env.reset(seed=0, options={"task_id": ids[0]})
        messages = list(obs["messages"])
        for _ in range(steps):
            messages.append(dict(CALL))
            obs, *_ = env.step(dict(CALL))
            messages += list(obs["messages"])
        return messages, list(env.unwrapped.tools), ids
    finally:
        env.close()


def sql_model():
    """A random tiny model whose tokenizer was trained on the SQL env's prompts (built once, cached)."""
    messages, tools, _ = sql_env_start()
    return cached_tiny_model("sql", [m["content"] for m in messages] + [json.dumps(tools), CALL["content"]] * 20,
                             **TINY)


def sql_tool_model():
    """``sql_model`` fitted to call execute_sql on the first train task's real 5-turn transcript (cached)."""
    base = sql_model()
    final = cache_dir("tiny-models") / f"{base.name}-sql-toolcaller"
    if (final / "config.json").exists():
        return final
    messages, tools, _ = sql_env_start(steps=4)
    tmp = tempfile.mkdtemp(prefix=".fit-", dir=final.parent)
    fit_tiny_model(base, [messages + [dict(CALL)]], tmp, tools=tools, steps=80, lr=3e-3)
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@pytest.fixture(scope="module")
def base_dir():
    return sql_model()


@pytest.fixture(scope="module")
def model_dir():
    return sql_tool_model()


@pytest.fixture(scope="module")
def server(model_dir):
    import asyncio

    srv = HFServer(model_dir)
    asyncio.run(srv.start())  # the supervisor is loop-independent: started here, stopped below
    yield srv
    asyncio.run(srv.stop())


def _obs(messages, context=None, turn=0):
    return PolicyObservation(messages=messages, turn=turn, episode_id="e", env_id="agentgym/sql-v0", task_id="t",
                             context_token_ids=context)


async def test_first_turn_prompt_is_exactly_the_chat_template_rendering(base_dir):
    messages, tools, _ = sql_env_start()
    async with TokenPolicy(base_dir, ["http://127.0.0.1:9/v1"]) as policy:
        prompt = policy.build_prompt(_obs(messages), tools)
        expected = policy.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)
    assert prompt == list(expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected)


@pytest.mark.parametrize("stopped_by_eos", [True, False])
async def test_a_chained_turn_boundary_renders_as_the_template_would(base_dir, stopped_by_eos):
    """If the model generated exactly the template's tokens, context + new tokens == the whole rendering."""
    messages, tools, _ = sql_env_start()
    content = CALL["content"]
    async with TokenPolicy(base_dir, ["http://127.0.0.1:9/v1"]) as policy:
        tok = policy.tokenizer
        first = policy.build_prompt(_obs(messages), tools)
        generated = tok.encode(content, add_special_tokens=False) + ([tok.eos_token_id] if stopped_by_eos else [])
        convo = messages + [{"role": "assistant", "content": content},
                            {"role": "tool", "tool_call_id": "c", "content": "name\n----\nitems"}]
        chained = policy.build_prompt(_obs(convo, first + generated, turn=1), tools)
        whole = tok.encode(policy.render_text(convo, tools, True), add_special_tokens=False)
    assert chained[:len(first) + len(generated)] == first + generated
    assert chained == whole


async def test_five_sql_turns_keep_token_ids_and_server_logprobs_match_a_forward_pass(model_dir, server):
    from transformers import AutoModelForCausalLM

    _, _, task_ids = sql_env_start()
    async with TokenPolicy(model_dir, [server.base_url], temperature=0.0, max_tokens=40) as policy:
        engine = RolloutEngine(lambda: agentgym.make("agentgym/sql-v0"), policy, RolloutConfig(concurrency=1))
        [record] = await engine.run(make_jobs(task_ids[:1]))
    turns = record.turns
    assert record.termination == "turn_budget" and len(turns) == 5, (record.termination, record.infra_errors)
    # the fitted model calls execute_sql (parsed from its text into tool_calls): the env answers with tool messages
    assert turns[0].action["tool_calls"][0]["function"]["name"] == "execute_sql", turns[0].action
    assert turns[1].observation[0]["role"] == "tool"
    for prev, cur in zip(turns, turns[1:]):  # no re-tokenisation: every prompt extends the previous sequence
        assert cur.prompt_token_ids[:len(prev.prompt_token_ids) + len(prev.token_ids)] == \
            prev.prompt_token_ids + prev.token_ids
    last = turns[-1]
    ids = last.prompt_token_ids + last.token_ids
    spans = last.loss_mask_spans
    assert [e - s for s, e in spans] == [len(t.token_ids) for t in turns]
    assert [ids[s:e] for s, e in spans] == [t.token_ids for t in turns]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    recomputed = [float(logp[j - 1, ids[j]]) for s, e in spans for j in range(s, e)]
    stored = [lp for t in turns for lp in t.logprobs]
    assert len(recomputed) == len(stored) > 5 * 10
    assert max(abs(a - b) for a, b in zip(recomputed, stored)) < 1e-4  # fp32: batched server vs plain forward
    assert all(t.model_version == 0 for t in turns)


async def test_a_small_max_model_len_ends_the_episode_as_context_overflow(model_dir, server):
    messages, tools, task_ids = sql_env_start()
    async with TokenPolicy(model_dir, [server.base_url], max_tokens=16) as probe:
        first_len = len(probe.build_prompt(_obs(messages), tools))
    async with TokenPolicy(model_dir, [server.base_url], max_tokens=16, max_model_len=first_len + 24) as policy:
        engine = RolloutEngine(lambda: agentgym.make("agentgym/sql-v0"), policy, RolloutConfig(concurrency=1))
        [record] = await engine.run(make_jobs(task_ids[:1]))
    assert record.termination == "context_overflow"
    assert record.success is False and record.scored and record.infra_errors == []
    assert len(record.turns) == 1


def _completion(version=None):
    body = {"choices": [{"text": "hi", "token_ids": [5, 6], "prompt_token_ids": None,
                         "logprobs": {"token_logprobs": [-1.0, -2.0]}, "finish_reason": "length"}]}
    if version is not None:
        body["model_version"] = version
    return body


async def test_requests_go_round_robin_and_version_source_fills_a_missing_version(base_dir):
    seen: list[str] = []

    def handler(name):
        def reply(request: httpx.Request) -> httpx.Response:
            seen.append(name)
            assert json.loads(request.content)["return_token_ids"] is True
            return httpx.Response(200, json=_completion())
        return reply

    policy = TokenPolicy(base_dir, ["http://a/v1", "http://b/v1"], version_source=lambda: 7, max_tokens=2)
    policy._clients = [httpx.AsyncClient(base_url=u, transport=httpx.MockTransport(handler(n)))
                       for n, u in (("a", "http://a/v1"), ("b", "http://b/v1"))]
    async with policy:
        actions = [await policy.act(_obs([{"role": "user", "content": "x"}]), []) for _ in range(4)]
    assert seen == ["a", "b", "a", "b"]
    assert all(a.model_version == 7 and a.token_ids == [5, 6] and a.logprobs == [-1.0, -2.0] for a in actions)


async def test_a_server_without_token_ids_is_a_policy_error(base_dir):
    policy = TokenPolicy(base_dir, ["http://a/v1"], max_tokens=2)
    bad = {"choices": [{"text": "hi", "finish_reason": "length", "logprobs": None}]}
    policy._clients = [httpx.AsyncClient(base_url="http://a/v1",
                                         transport=httpx.MockTransport(lambda r: httpx.Response(200, json=bad)))]
    async with policy:
        with pytest.raises(PolicyError, match="return_token_ids"):
            await policy.act(_obs([{"role": "user", "content": "x"}]), [])
