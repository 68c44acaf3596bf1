"""build_tiny_model: an offline Llama + trained BPE tokenizer that Auto classes reload identically, with the
ChatML + tools chat template of the C1 contract."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from agentgym.policies.chat_template import IM_END  # noqa: E402
from agentgym.policies.tiny_model import build_tiny_model, cached_tiny_model  # noqa: E402

SMALL = dict(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128, vocab_size=768)
TOOLS = [{"type": "function", "function": {"name": "execute_sql", "description": "Run a query.",
                                            "parameters": {"type": "object",
                                                           "properties": {"query": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return build_tiny_model(out, ["How many singers are there?"], **SMALL, seed=3)


def test_auto_classes_reload_the_same_weights_and_token_ids_offline(built):
    from tokenizers import Tokenizer

    tok = transformers.AutoTokenizer.from_pretrained(built)
    text = "<|im_start|>user\nHow many singers are there?<|im_end|>\n<tool_call>\n{\"a\": 1}\n</tool_call>"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == Tokenizer.from_file(str(built / "tokenizer.json")).encode(text).ids  # trained ids, not swapped
    assert tok.decode(ids) == text
    model = transformers.AutoModelForCausalLM.from_pretrained(built).eval()
    config = transformers.AutoConfig.from_pretrained(built)
    torch.manual_seed(3)  # the same seed re-creates the same random init: the saved weights are exactly it
    fresh = transformers.LlamaForCausalLM(config).eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(model(x).logits, fresh(x).logits)


def test_config_is_a_small_fp32_llama_with_tied_embeddings_and_the_tokenizer_vocab(built):
    config = json.loads((built / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(built)
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_key_value_heads"]) == (64, 2, 2)
    assert config["vocab_size"] == len(tok) <= 768
    model = transformers.AutoModelForCausalLM.from_pretrained(built)
    assert next(model.parameters()).dtype == torch.float32
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_special_tokens_eos_pad_and_tool_call_tags(built):
    tok = transformers.AutoTokenizer.from_pretrained(built)
    gen = json.loads((built / "generation_config.json").read_text())
    im_end = tok.convert_tokens_to_ids(IM_END)
    assert tok.eos_token == IM_END and gen["eos_token_id"] == im_end
    assert tok.pad_token == "<|endoftext|>" and gen["pad_token_id"] == tok.pad_token_id
    for tag in ("<|im_start|>", "<tool_call>", "</tool_call>"):
        assert len(tok.encode(tag, add_special_tokens=False)) == 1
    ids = tok.encode("<tool_call>x</tool_call><|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<tool_call>x</tool_call>"  # tags survive, eos does not


def test_chat_template_renders_tools_tool_calls_and_tool_responses_chatml_style(built):
    tok = transformers.AutoTokenizer.from_pretrained(built)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count singers."},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "execute_sql", "arguments": "{\"query\": \"SELECT 1\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "1"}]
    text = tok.apply_chat_template(messages, tools=TOOLS, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(TOOLS[0]) + "\n</tools>" in text
    assert text.endswith(
        "<|im_start|>user\nCount singers.<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"execute_sql\", \"arguments\": {\"query\": \"SELECT 1\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n1\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n")
    plain = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert plain == "<|im_start|>user\nhi<|im_end|>\n"


def test_cached_tiny_model_builds_once_per_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    first = cached_tiny_model("t", ["abc"], **SMALL)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert cached_tiny_model("t", ["abc"], **SMALL) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert cached_tiny_model("t", ["abc"], **{**SMALL, "seed": 1}) != first
