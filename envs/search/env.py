"""The search environment (``agentgym/search-v0``): multi-hop QA over a generated encyclopedia.

Tools: ``search(query, k)`` returns passages as ``Doc i(Title: ...) [doc_id] text`` (Search-R1's layout,
truncated to a character budget); ``open_page(doc_id)`` shows a passage's whole article (ASearcher's
access); ``answer(text)`` ends the episode. Search-R1 tags work too: ``<search>``, ``<access>``,
``<answer>`` (``<think>`` is ignored), with results in ``<information>``. The reward is exact match after
SQuAD normalisation, computed on the answer in the agent's action only; F1 (HotpotQA yes/no rule),
sub-EM and format are reported in ``info["reward_components"]``; with ``format_gating=True`` the reward is
EM x format (no invalid action in the episode), as ASearcher. Every observation message is environment
text: ``info["observation_tokens"] == "env"`` says to mask it out of the policy loss (Search-R1
``state_masking``). ``dataset="searchr1"`` with ``path=DIR`` serves a Search-R1 corpus and NQ/HotpotQA-style
questions on disk instead of the generated worlds (``datasets.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from agentgym.actions import random_tool_call
from agentgym.env import EnvSnapshot
from agentgym.envs.search.datasets import DATASET_SYSTEM_PROMPT
from agentgym.envs.search.datasets import oracle_action as dataset_oracle
from agentgym.envs.search.oracle import oracle_action as oracle_next
from agentgym.envs.search.prompting import (INVALID_ACTION_HINT, SYSTEM_PROMPT, format_page, format_results,
                                            question_prompt)
from agentgym.envs.search.retrieval import MODES, Mode
from agentgym.envs.search.rewards import score_answer
from agentgym.envs.search.suite import SearchConfig, SearchData, SearchWorld, check_source, search_data
from agentgym.errors import ToolError
from agentgym.messages import Action, Message
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import TagToolCalls
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

SEARCH_TAGS = TagToolCalls("search-r1", {"search": ("search", "query"), "access": ("open_page", "doc_id"),
                                         "answer": ("answer", "text")}, response_tag="information")
MAX_TURNS_LIMIT = 64
MAX_K = 10


class SearchEnv(ToolEnv):
    """Multi-hop QA with search; see the module docstring for the protocol and reward."""

    env_id = "agentgym/search-v0"
    max_turns = 8
    tool_parsers = ("openai", "hermes", SEARCH_TAGS)
    tool_timeout_s = 30.0
    options_help = {
        "dataset": "generated (default) | searchr1: which corpus and questions to serve",
        "path": "folder with a corpus (corpus.jsonl / wiki-18.jsonl, .gz ok) and question files (with dataset=searchr1)",
        "split": "task split to draw from: train | dev | test (default train; test with a dataset)",
        "max_turns": f"turn budget (default 8, at most {MAX_TURNS_LIMIT})",
        "config": "world sizes and question counts, a dict of SearchConfig fields (default: the pinned suite)",
        "retrieval": "bm25 | dense | hybrid (default bm25; dense embeds the corpus on first use)",
        "topk": "passages per search when k is not given (default 3)",
        "passage_chars": "characters shown per passage (default 600)",
        "observation_chars": "characters per search observation (default 3000)",
        "format_gating": "reward = EM x format (no invalid action), as ASearcher (default false)",
    }

    def __init__(self, *, dataset: str = "generated", path: str | None = None, split: str | None = None,
                 config: SearchConfig | Mapping[str, Any] | None = None, retrieval: Mode = "bm25",
                 topk: int = 3, passage_chars: int = 600, observation_chars: int = 3000, page_chars: int = 4000,
                 max_query_chars: int = 1000, max_answer_chars: int = 500, format_gating: bool = False,
                 **kwargs: Any):
        if kwargs.get("max_turns") is not None and kwargs["max_turns"] > MAX_TURNS_LIMIT:
            raise ValueError(f"max_turns must be at most {MAX_TURNS_LIMIT}")
        if retrieval not in MODES:
            raise ValueError(f"unknown retrieval mode {retrieval!r}; expected one of {MODES}")
        if not 1 <= topk <= MAX_K:
            raise ValueError(f"topk must be in 1..{MAX_K}")
        check_source(dataset, path, config)
        super().__init__(split=split or ("train" if dataset == "generated" else "test"), **kwargs)
        self.dataset = dataset
        self.path = path
        self.config = SearchConfig(**config) if isinstance(config, Mapping) else (config or SearchConfig())
        self.retrieval: Mode = retrieval
        self.topk = topk
        self.passage_chars = passage_chars
        self.observation_chars = observation_chars
        self.page_chars = page_chars
        self.max_query_chars = max_query_chars
        self.max_answer_chars = max_answer_chars
        self.format_gating = format_gating
        self.history: list[dict[str, Any]] = []

    # --- suite and episode ------------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        return self.data.suite

    @cached_property
    def data(self) -> SearchData:
        """The worlds (passages, indexes) and suite, built once per process by ``search_data``."""
        return search_data(self.dataset, self.path, self.config)

    @property
    def world(self) -> SearchWorld:
        """The world of the current task (each world has its own passages and index)."""
        assert self.task is not None, "no episode is running"
        return self.data.worlds[self.task.params["world"]]

    async def begin_episode(self, task: Task) -> list[Message]:
        self.history = []
        if self.retrieval != "bm25":  # embed the corpus off the event loop before the first search
            await asyncio.to_thread(lambda: self.data.worlds[task.params["world"]].dense().embeddings)
        prompt = SYSTEM_PROMPT if self.dataset == "generated" else DATASET_SYSTEM_PROMPT
        return [{"role": "system", "content": prompt.format(max_turns=self.max_turns, topk=self.topk, max_k=MAX_K)},
                {"role": "user", "content": question_prompt(task.data["question"])}]

    def extra_info(self) -> dict[str, Any]:
        return {"observation_tokens": "env"}  # every observation token is env text: mask it out of the policy loss

    def no_call_message(self) -> str:
        return f"{INVALID_ACTION_HINT}\n{super().no_call_message()}"

    # --- tools ------------------------------------------------------------------------------------

    @tool("Search the encyclopedia and see the top-k passages.",
          params={"query": "a few keywords or a question", "k": f"number of passages, 1 to {MAX_K} (default 3)"})
    async def search(self, query: str, k: int | None = None) -> str:
        q = " ".join(query.split())
        if not q:
            raise ToolError("the query is empty; write a few keywords, e.g. <search>founder of Example Press</search>")
        if len(q) > self.max_query_chars:
            raise ToolError(f"the query is too long ({len(q)} characters; at most {self.max_query_chars}); "
                            "use a few keywords")
        k = self.topk if k is None else k
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be between 1 and {MAX_K}, got {k}")
        world = self.world
        hits = (await asyncio.to_thread(world.retriever(self.retrieval).search, [q], k))[0]
        if not hits:
            if self.retrieval == "bm25" and not world.bm25.terms(q):
                text = (f"No results for {q[:200]!r}: none of its words occurs in the encyclopedia "
                        "(common words are ignored). Try names or other keywords.")
            else:
                text = f"No results for {q[:200]!r}. Try other keywords."
            self.history.append({"tool": "search", "query": q, "k": k, "shown": {}})
            return text
        docs = [(world.ids[h.index], world.titles[h.index], world.texts[h.index]) for h in hits]
        text, shown = format_results(docs, passage_chars=self.passage_chars, budget_chars=self.observation_chars)
        self.history.append({"tool": "search", "query": q, "k": k, "shown": shown})
        return text

    @tool("Open the whole article that a passage belongs to.", params={"doc_id": "a doc id from search results, e.g. d000123"})
    async def open_page(self, doc_id: str) -> str:
        world = self.world
        key = doc_id.strip().strip("[]")
        if key not in world.position:
            raise ToolError(f"unknown doc id {doc_id[:60]!r}; doc ids appear in brackets in search results, "
                            f"e.g. [{world.ids[0]}]")
        passages = [(world.ids[i], world.titles[i], world.texts[i]) for i in world.article(world.position[key])]
        text = format_page(passages, budget_chars=self.page_chars)
        self.history.append({"tool": "open_page", "doc_id": key,
                             "shown": {d: text[text.find(f"[{d}]"):] if f"[{d}]" in text else "" for d, _, _ in passages}})
        return text

    @tool("Give your final answer: a short phrase (a name, a number, or yes/no). This ends the episode.",
          params={"text": "the answer"}, terminal=True)
    async def answer(self, text: str) -> ToolOutput:
        assert self.task is not None
        if len(text) > self.max_answer_chars:
            raise ToolError(f"the answer is too long ({len(text)} characters; at most {self.max_answer_chars}); "
                            "give the shortest exact phrase")
        score = score_answer(text, self.task.data["aliases"])
        format_ok = float(self.invalid_actions == 0)
        reward = score.em * (format_ok if self.format_gating else 1.0)
        components = {**score.components(), "format_ok": format_ok, "answered": 1.0,
                      "searches": float(sum(h["tool"] == "search" for h in self.history)),
                      "pages_opened": float(sum(h["tool"] == "open_page" for h in self.history))}
        verdict = "Correct." if reward == 1.0 else "Incorrect."
        return ToolOutput(f"{verdict} Your answer: {text[:200]!r}.", outcome=Outcome(reward, reward == 1.0, components))

    async def budget_outcome(self) -> Outcome:
        return Outcome(0.0, False, {"em": 0.0, "f1": 0.0, "sub_em": 0.0, "format_ok": float(self.invalid_actions == 0),
                                    "answered": 0.0,
                                    "searches": float(sum(h["tool"] == "search" for h in self.history)),
                                    "pages_opened": float(sum(h["tool"] == "open_page" for h in self.history))})

    # --- capabilities -----------------------------------------------------------------------------

    async def oracle_action(self) -> Action | None:
        """The next step of the gold-path walk with real searches (``oracle.py``; ``datasets.py`` for a dataset)."""
        if self.task is None:
            return None
        if "hops" not in self.task.data:
            return dataset_oracle(self.task.data, self.history, self.topk, self.max_query_chars)
        return oracle_next(self.task.data, self.history, self.topk)

    async def snapshot(self) -> EnvSnapshot:
        """Searches are deterministic, so the state is the episode counters plus what was searched and shown."""
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {"base": self._base_state(),
                                                       "history": json.loads(json.dumps(self.history))})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        await self.aload_suite()
        self._load_base_state(snapshot.payload["base"])
        self.history = json.loads(json.dumps(snapshot.payload["history"]))

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random search, page or answer (a random title of the current world), in a random tool-call format."""
        world = self.data.worlds[self.task.params["world"]] if self.task else next(iter(self.data.worlds.values()))
        i = int(rng.integers(len(world.ids)))
        words = world.texts[i].split()
        kind = ("search", "open_page", "answer")[int(rng.choice(3, p=[0.5, 0.2, 0.3]))]
        if kind == "search":
            start = int(rng.integers(max(1, len(words) - 3)))
            name, args = "search", {"query": " ".join(words[start:start + 3])}
        elif kind == "open_page":
            name, args = "open_page", {"doc_id": world.ids[i]}
        else:
            name, args = "answer", {"text": world.titles[i].split(" (")[0]}
        tag = {"search": "search", "open_page": "access", "answer": "answer"}[name]
        return random_tool_call(rng, name, args, tag=tag, thought="let me try")
