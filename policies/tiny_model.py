"""Tiny offline models: a random-init Llama plus a byte-level BPE tokenizer trained on the spot, no download.

Tests, benchmarks and CPU examples need a real ``transformers`` model directory that the Auto classes (and
vLLM) load offline. ``build_tiny_model(out_dir)`` writes one: ``LlamaForCausalLM`` (fp32, tied embeddings),
a ``PreTrainedTokenizerFast`` whose chat template is ChatML with tools (``policies/chat_template.py``) and a
generation config whose eos is ``<|im_end|>``. A Llama config, not qwen2: ``AutoTokenizer`` would swap a
qwen2 model's trained pre-tokenizer for Qwen's own and silently change the ids.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.extras import require
from agentgym.policies.chat_template import (CHATML_TOOLS_TEMPLATE, ENDOFTEXT, IM_END, IM_START, TOOL_CALL_CLOSE,
                                             TOOL_CALL_OPEN)

_WORDS = ("the a an of to in is for on with as by at from that this it be are was which or and not no yes "
          "select from where group by order having join left inner on limit count sum avg min max distinct "
          "table column row value name id date price city country customer order product employee salary "
          "department year month total number average list show find return answer query result error tool "
          "call function arguments search open click type page file code test python def return import print "
          "user assistant system response observation question task done submit help please thanks result").split()
_TOOL_NAMES = ("execute_sql", "submit_answer", "search", "open_page", "run_python", "list_tables", "describe_table")


def builtin_corpus(n: int = 3000, seed: int = 0) -> Iterator[str]:
    """Deterministic synthetic text (ChatML turns, tool calls, SQL, JSON, numbers) to train the BPE on."""
    rng = random.Random(seed)
    for i in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 16)))
        name = rng.choice(_TOOL_NAMES)
        args = {rng.choice(("query", "sql", "answer", "url", "code", "table")): words}
        call = f'{TOOL_CALL_OPEN}\n{json.dumps({"name": name, "arguments": args})}\n{TOOL_CALL_CLOSE}'
        yield (f"{IM_START}user\n{words.capitalize()}? {rng.randint(0, 10_000)}{IM_END}\n"
               f"{IM_START}assistant\n{call}{IM_END}\n"
               f"{IM_START}user\n<tool_response>\n[({rng.randint(0, 999)}, '{rng.choice(_WORDS)}', "
               f"{rng.random():.3f})]\n</tool_response>{IM_END}\n")
        if i % 3 == 0:
            yield (f"SELECT {rng.choice(_WORDS)}, COUNT(*) FROM {rng.choice(_WORDS)} WHERE id > {rng.randint(0, 99)} "
                   f"GROUP BY {rng.choice(_WORDS)} ORDER BY 2 DESC LIMIT {rng.randint(1, 20)};")


def train_tokenizer(texts: Iterable[str] = (), vocab_size: int = 4096):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with the ChatML special tokens and tool-call tags."""
    tokenizers = require("tokenizers", "train")
    transformers = require("transformers", "train")
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, min_frequency=2, show_progress=False,
                                  special_tokens=[ENDOFTEXT, IM_START, IM_END],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(itertools.chain(texts, builtin_corpus()), trainer)
    # tool-call tags are single tokens but not "special": decoding with skip_special_tokens keeps them
    tok.add_tokens([AddedToken(TOOL_CALL_OPEN, special=False, normalized=False),
                    AddedToken(TOOL_CALL_CLOSE, special=False, normalized=False)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=ENDOFTEXT,
                                                unk_token=None, bos_token=None, model_max_length=1 << 20)
    fast.chat_template = CHATML_TOOLS_TEMPLATE
    return fast


def build_tiny_model(out_dir: str | Path, texts: Iterable[str] = (), *, hidden_size: int = 256, num_layers: int = 4,
                     num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 768, vocab_size: int = 4096,
                     max_position_embeddings: int = 2048, seed: int = 0) -> Path:
    """Write a random-init Llama + trained tokenizer to `out_dir` (loadable offline by Auto classes and vLLM).

    `vocab_size` is the BPE target; the model's vocabulary is the tokenizer's actual size (never larger, so
    every id the model can sample decodes to text).
    """
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings, tie_word_embeddings=True, rms_norm_eps=1e-6,
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id, dtype="float32")
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config = transformers.GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id,
                                                            bos_token_id=None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def cached_tiny_model(name: str = "default", texts: Iterable[str] = (), **kwargs: Any) -> Path:
    """``build_tiny_model`` once per (name, kwargs) under the agentgym cache; later calls reuse the directory."""
    import hashlib
    import os
    import shutil
    import tempfile

    from agentgym.cache import cache_dir

    texts = list(texts)
    key = hashlib.sha256(json.dumps([name, texts, sorted(kwargs.items())], default=str).encode()).hexdigest()[:12]
    final = cache_dir("tiny-models") / f"{name}-{key}"
    if (final / "config.json").exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    build_tiny_model(tmp, texts, **kwargs)
    try:
        os.rename(tmp, final)  # atomic: concurrent builders never see half a directory
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def fit_tiny_model(model_dir: str | Path, conversations: Sequence[Sequence[Mapping[str, Any]]], out_dir: str | Path,
                   *, tools: Sequence[Mapping[str, Any]] | None = None, steps: int = 40, lr: float = 3e-3,
                   seed: int = 0) -> Path:
    """Fine-tune a tiny model on a few chat transcripts (loss on assistant tokens) and save it to `out_dir`.

    Gives tests and examples a model with a known behaviour (e.g. "always calls execute_sql") without any
    download; a few dozen AdamW steps memorise a handful of transcripts.
    """
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    from agentgym.policies.chat_template import IM_START

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows, masks = [], []
    opener = tokenizer.encode(f"{IM_START}assistant\n", add_special_tokens=False)
    eos = tokenizer.eos_token_id
    for conv in conversations:
        text = tokenizer.apply_chat_template(list(conv), tools=list(tools) if tools else None, tokenize=False)
        ids = tokenizer.encode(text, add_special_tokens=False)
        mask, inside = [0] * len(ids), False
        for j in range(len(ids)):  # train on assistant content and its closing <|im_end|>
            if ids[j - len(opener) + 1: j + 1] == opener:
                inside = True
                continue
            if inside:
                mask[j] = 1
                inside = ids[j] != eos
        rows.append(ids)
        masks.append(mask)
    width = max(map(len, rows))
    input_ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = input_ids.masked_fill(torch.tensor([m + [0] * (width - len(m)) for m in masks]) == 0, -100)
    torch.manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m agentgym.policies.tiny_model --out DIR`` (the CLI's ``agentgym model tiny``)."""
    import argparse

    parser = argparse.ArgumentParser(description=build_tiny_model.__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out, hidden_size=args.hidden_size, num_layers=args.num_layers,
                            vocab_size=args.vocab_size, seed=args.seed)
    print(path)


if __name__ == "__main__":
    main()
