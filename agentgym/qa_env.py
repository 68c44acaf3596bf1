"""A ready env for question/answer datasets: the agent calls ``answer(text)`` once, a scorer grades it.

``QAEnv(path="trivia.jsonl")`` (or ``rows=`` a list of dicts, a ``datasets.Dataset`` or ``DatasetDict``)
is a complete env: tasks, splits, prompt, a terminal ``answer`` tool, exact-match scoring after SQuAD
normalisation (or any ``score(prediction, answers) -> float`` with a success threshold) and an oracle that
answers the first gold answer. Subclasses add tools (a search, a calculator) with ``@tool`` and may override
``question_messages`` (e.g. to show a context field of the row). ``register_qa`` registers one by id.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from agentgym.actions import tool_call_message
from agentgym.answer_match import exact_match
from agentgym.messages import Action, Message
from agentgym.qa_suite import QAFields, load_qa_suite
from agentgym.registry import EnvSpec, register
from agentgym.tasks import SplitRule, Task, TaskSuite
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

Scorer = Callable[[str, Sequence[str]], float]


SYSTEM_PROMPT = ("Answer the user's question. When you know the answer, call the answer tool with it: as short as "
                 "possible (a name, a number, a few words), no explanation. You can answer only once.")


def resolve_scorer(scorer: Scorer | str | None) -> Scorer:
    """A scorer from a callable, a ``"module:function"`` string (usable in registry kwargs) or None (exact match)."""
    if scorer is None:
        return exact_match
    if callable(scorer):
        return scorer
    module, sep, attr = str(scorer).partition(":")
    if not sep:
        raise ValueError(f"scorer {scorer!r}: expected a callable or 'module:function'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"scorer {scorer!r} is not callable")
    return obj


def _one_source(path: str | Path | None, rows: Any) -> Any:
    """The data source: exactly one of `path` and `rows`."""
    if (path is None) == (rows is None):
        raise ValueError("QAEnv needs exactly one of path= (a data file or folder) and rows= (dicts or a dataset)")
    return path if path is not None else rows


def _fields_and_rule(options: Mapping[str, Any]) -> tuple[QAFields, SplitRule]:
    """The field names and split rule that QAEnv's options (``*_field``, ``*_percent``, ``ood_*``) describe."""
    fields = QAFields(question=options["question_field"], answers=options["answer_field"], id=options["id_field"],
                      split=options["split_field"], family=options["family_field"],
                      difficulty=options["difficulty_field"])
    rule = SplitRule(ood_test_families=frozenset(options["ood_test_families"]),
                     ood_dev_families=frozenset(options["ood_dev_families"]),
                     iid_test_percent=options["test_percent"], iid_dev_percent=options["dev_percent"])
    return fields, rule


class QAEnv(ToolEnv):
    """Question answering over a user dataset: one terminal ``answer(text)`` tool, graded by a scorer.

    Data: ``path`` (JSON/JSONL[.gz], Parquet, a folder of them, or a ``save_to_disk`` folder) or ``rows`` (dicts,
    a ``datasets.Dataset``/``DatasetDict``). Fields: ``question_field``, ``answer_field`` (a string or list;
    dotted paths reach nested fields), ``id_field``, ``split_field``, ``family_field``, ``difficulty_field``.
    Splits: the dataset's own, else a hash split with ``dev_percent``/``test_percent``; whole families can be
    held out with ``ood_test_families``/``ood_dev_families``. Reward: the scorer's value; success: reward >=
    ``success_threshold``.
    """

    env_id: ClassVar[str] = "agentgym/qa-v0"
    max_turns = 3  # room to recover from a malformed call; the answer itself is final
    system_prompt: str = SYSTEM_PROMPT

    def __init__(self, *, path: str | Path | None = None, rows: Any = None, name: str = "qa", version: str = "v0",
                 question_field: str = "question", answer_field: str = "answer", id_field: str | None = "id",
                 split_field: str | None = "split", family_field: str | None = None,
                 difficulty_field: str | None = None, scorer: Scorer | str | None = None,
                 success_threshold: float = 1.0, dev_percent: int = 10, test_percent: int = 10,
                 ood_test_families: Iterable[str] = (), ood_dev_families: Iterable[str] = (),
                 pinned_path: str | Path | None = None, env_id: str | None = None, **kwargs: Any):
        """Exactly one of `path` and `rows`; the other keyword arguments are ToolEnv's (split, max_turns, ...)."""
        self.source: Any = _one_source(path, rows)
        self.fields, self.rule = _fields_and_rule(locals())  # the parameters above, read as qa_suite_for reads them
        super().__init__(**kwargs)
        self.name, self.version = name, version
        self.scorer = resolve_scorer(scorer)
        self.success_threshold = float(success_threshold)
        self.pinned_path = pinned_path
        if env_id is not None:
            self.env_id = env_id

    # --- hooks ------------------------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        """The dataset's tasks (a file is parsed once per process and shared by every env over it)."""
        return load_qa_suite(self.source, self.fields, name=self.name, version=self.version, rule=self.rule,
                             pinned_path=self.pinned_path)

    def question_messages(self, task: Task) -> list[Message]:
        """The first messages of an episode (override to show more of ``task.data["row"]``)."""
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": task.data["question"]}]

    def score(self, prediction: str, task: Task) -> float:
        """The scorer's value for a prediction; a non-number is the scorer's bug, so an infrastructure failure."""
        value = float(self.scorer(prediction, list(task.data["answers"])))
        if not math.isfinite(value):
            raise ValueError(f"scorer {getattr(self.scorer, '__name__', self.scorer)!r} returned {value}")
        return value

    async def begin_episode(self, task: Task) -> list[Message]:
        return self.question_messages(task)

    @tool("Give your final answer to the question; this ends the episode.", terminal=True,
          params={"text": "the answer, as short as possible"})
    def answer(self, text: str) -> ToolOutput:
        # a plain def: it runs in a worker thread, so a slow user scorer never blocks other episodes
        assert self.task is not None
        value = self.score(text, self.task)
        success = value >= self.success_threshold
        return ToolOutput("correct" if success else "answer recorded",
                          outcome=Outcome(value, success, {"score": value}))

    async def oracle_action(self) -> Action | None:
        """Answer the first gold answer (an oracle failure is a row whose gold the scorer rejects: a data bug)."""
        return tool_call_message("answer", {"text": self.task.data["answers"][0]}) if self.task else None


def qa_suite_for(**options: Any) -> TaskSuite:
    """The suite ``QAEnv(**options)`` serves, read without making the env: the registry's loader for QA datasets.

    QAEnv's own defaults fill the options not given, so the two never disagree; the options that do not shape
    the suite (split, scorer, ...) are ignored.
    """
    args = inspect.signature(QAEnv).bind_partial(**options)
    args.apply_defaults()
    o = args.arguments
    fields, rule = _fields_and_rule(o)
    return load_qa_suite(_one_source(o["path"], o["rows"]), fields, name=o["name"], version=o["version"], rule=rule,
                         pinned_path=o["pinned_path"])


def register_qa(id: str, *, path: str | Path | None = None, rows: Any = None, description: str = "",
                entry_point: str | Callable[..., QAEnv] = "agentgym.qa_env:QAEnv", **kwargs: Any) -> EnvSpec:
    """Register a question/answer dataset as env `id`: ``register_qa("me/trivia-v0", path="trivia.jsonl")``.

    `kwargs` are QAEnv's (field names, scorer as "module:function", success_threshold, ...); give a
    subclass as `entry_point` to add tools. A relative `path` is resolved now, not at make time.
    """
    data: dict[str, Any] = {"path": str(Path(path).resolve())} if path is not None else {"rows": rows}
    caller = sys._getframe(1).f_globals.get("__name__", "?")  # `agentgym envs list` names the registering plug-in
    # the loader reads the suite without making the env, unless a subclass may load it its own way
    loader = qa_suite_for if entry_point in ("agentgym.qa_env:QAEnv", QAEnv) else None
    return register(id, entry_point, description=description or f"question answering over {path or 'rows'}",
                    source=caller, suite_loader=loader, env_id=id, **data, **kwargs)
