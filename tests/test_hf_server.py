"""The built-in server against the official openai client: chat with tool calls parsed from generated text,
log-probs equal to a plain forward pass, token-id prompts, n/seed/stop, the context-length 400, step batching
of 64 concurrent requests, and weight reloads."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

torch = pytest.importorskip("torch")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from agentgym.policies.hf_server import HFServer  # noqa: E402
from test_token_policy import SQL_CALL, sql_env_start, sql_tool_model  # noqa: E402  (shared cached model)

MAX_LEN = 4096


@pytest.fixture(scope="module")
def model_dir():
    return sql_tool_model()


@pytest.fixture(scope="module")
def model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def server(model_dir):
    srv = HFServer(model_dir, max_model_len=MAX_LEN)
    asyncio.run(srv.start())
    yield srv
    asyncio.run(srv.stop())


@pytest.fixture
def client(server):
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def recompute(model, ids: list[int], start: int) -> list[float]:
    """log p(ids[j] | ids[:j]) for j >= start, by one plain forward pass."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return [float(logp[j - 1, ids[j]]) for j in range(start, len(ids))]


async def test_openai_client_chat_gets_tool_calls_parsed_from_generated_text(client, server):
    messages, tools, _ = sql_env_start()
    resp = await client.chat.completions.create(model=server.model_name, messages=messages, tools=tools,
                                                temperature=0, max_tokens=40)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == SQL_CALL["name"] and json.loads(call.function.arguments) == SQL_CALL["arguments"]
    assert not choice.message.content
    assert resp.model_version == 0  # extension field, kept by the client as an extra
    models = await client.models.list()
    assert [m.id for m in models.data] == [server.model_name]


async def test_chat_logprobs_are_the_raw_model_log_softmax(client, server, model):
    resp = await client.chat.completions.create(
        model=server.model_name, messages=[{"role": "user", "content": "Which tables exist?"}], temperature=1.0,
        seed=3, max_tokens=12, logprobs=True, top_logprobs=3, extra_body={"return_token_ids": True, "ignore_eos": True})
    data = resp.model_dump()
    prompt, choice = data["prompt_token_ids"], data["choices"][0]
    content = choice["logprobs"]["content"]
    assert len(content) == len(choice["token_ids"]) == resp.usage.completion_tokens == 12
    stored = [c["logprob"] for c in content]
    diffs = [abs(a - b) for a, b in zip(stored, recompute(model, prompt + choice["token_ids"], len(prompt)))]
    assert max(diffs) < 1e-4  # fp32: tolerance 1e-4
    for c in content:
        tops = [t["logprob"] for t in c["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True) and c["logprob"] <= tops[0] + 1e-6


async def test_completions_take_token_ids_and_seeded_choices_are_reproducible(client, server, model):
    prompt = [11, 12, 13, 14, 15]
    kwargs = dict(model=server.model_name, prompt=prompt, n=3, seed=5, max_tokens=6, temperature=3.0, logprobs=2,
                  extra_body={"return_token_ids": True, "ignore_eos": True})
    first = (await client.completions.create(**kwargs)).model_dump()
    again = (await client.completions.create(**kwargs)).model_dump()
    assert len(first["choices"]) == 3
    assert [c["token_ids"] for c in first["choices"]] == [c["token_ids"] for c in again["choices"]]
    assert len({tuple(c["token_ids"]) for c in first["choices"]}) > 1  # choice i is seeded with seed + i
    for c in first["choices"]:
        assert c["prompt_token_ids"] == prompt and len(c["logprobs"]["top_logprobs"][0]) <= 2
        assert max(abs(a - b) for a, b in zip(c["logprobs"]["token_logprobs"],
                                              recompute(model, prompt + c["token_ids"], len(prompt)))) < 1e-4
    greedy = (await client.completions.create(**{**kwargs, "temperature": 0})).model_dump()
    assert len({tuple(c["token_ids"]) for c in greedy["choices"]}) == 1


async def test_a_stop_string_cuts_the_text_before_it(client, server):
    base = dict(model=server.model_name, prompt="SELECT name FROM", max_tokens=12, temperature=0,
                extra_body={"ignore_eos": True})
    text = (await client.completions.create(**base)).choices[0].text
    stop = next(text[i:i + 2] for i in range(3, len(text) - 1) if text[i:i + 2].strip())
    cut = (await client.completions.create(**base, stop=[stop])).choices[0]
    assert cut.finish_reason == "stop" and cut.text == text[:text.find(stop)]


async def test_a_prompt_beyond_max_model_len_is_a_400_in_openai_wording(client, server):
    with pytest.raises(openai.BadRequestError, match="maximum context length is 4096"):
        await client.completions.create(model=server.model_name, prompt=[5] * (MAX_LEN - 4), max_tokens=8)


async def test_64_concurrent_requests_share_forward_passes(server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as http:
        before = (await http.get(server.root_url + "/metrics")).json()
        replies = await asyncio.gather(*[
            http.post("/completions", json={"prompt": [20 + i % 50, 7, 8], "max_tokens": 8, "ignore_eos": True})
            for i in range(64)])
        after = (await http.get(server.root_url + "/metrics")).json()
    assert {r.status_code for r in replies} == {200}
    assert all(len(r.json()["choices"][0]["text"]) >= 0 for r in replies)
    assert after["requests"] - before["requests"] == 64
    assert after["generated_tokens"] - before["generated_tokens"] == 64 * 8
    passes = after["forward_passes"] - before["forward_passes"]
    assert passes < 64, passes  # unbatched would be 64 x 8 = 512
    assert after["max_batch_seen"] > 8


async def test_load_weights_changes_outputs_and_bumps_the_version(client, server, model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    perturbed = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    perturbed.save_pretrained(tmp_path / "v1")
    request = dict(model=server.model_name, prompt=[11, 12, 13], max_tokens=5, temperature=0, logprobs=1)
    before = (await client.completions.create(**request)).model_dump()
    assert await server.load_weights(tmp_path / "v1") == 1 and server.version == 1
    after = (await client.completions.create(**request)).model_dump()
    assert after["model_version"] == 1 and before["model_version"] == 0
    assert after["choices"][0]["logprobs"]["token_logprobs"] != before["choices"][0]["logprobs"]["token_logprobs"]
    assert await server.load_weights(model_dir) == 2  # back to the original weights: same outputs again
    back = (await client.completions.create(**request)).model_dump()
    assert back["choices"][0]["logprobs"]["token_logprobs"] == before["choices"][0]["logprobs"]["token_logprobs"]
