"""The rollout engine: concurrency, groups, retries, timeouts, token spans, and env reuse."""

from __future__ import annotations

import asyncio

from guess_env import GuessEnv

from agentgym.policy import PolicyAction
from agentgym.rollout import RolloutConfig, RolloutEngine, episode_seed, make_jobs
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy



class SlowOracle:
    """Answers with the reference action after a delay, tracking how many calls overlap."""

    name = "slow-oracle"
    privileged = True

    def __init__(self, delay: float = 0.05):
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def act(self, observation, tools):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return PolicyAction(message={"role": "assistant", "content": observation.oracle_action},
                            prompt_token_ids=[1] * (10 + observation.turn), token_ids=[7, 8, 9], logprobs=[-1.0] * 3)


class GatedOracle(SlowOracle):
    """The oracle whose calls wait until `gate` of them are in flight at once (then all pass): a run whose
    concurrency is below `gate` times out instead of depending on how fast the machine is."""

    def __init__(self, gate: int):
        super().__init__(delay=0)
        self.gate = gate
        self.opened = asyncio.Event()
        self.entered = asyncio.Event()      # set by the first call: an episode is in flight

    async def act(self, observation, tools):
        self.entered.set()
        if self.in_flight + 1 >= self.gate:
            self.opened.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.wait_for(self.opened.wait(), timeout=120)
        finally:
            self.in_flight -= 1
        return await super().act(observation, tools)


def task_ids(n: int, split: str = "test") -> list[str]:
    env = GuessEnv(split=split)
    return [t.id for t in env.load_suite().tasks(split)[:n]]


async def test_episodes_overlap_up_to_the_concurrency_limit_and_envs_are_reused():
    made = []

    def factory():
        made.append(GuessEnv(split="test"))
        return made[-1]

    policy = GatedOracle(gate=8)     # 8 calls must be in flight at once before any may finish
    records = await RolloutEngine(factory, policy, RolloutConfig(concurrency=8)).run(make_jobs(task_ids(24)))
    assert len(records) == 24 and all(r.success for r in records)
    assert policy.opened.is_set() and policy.max_in_flight == 8   # reached the limit, never above it
    assert len(made) == 8  # one env per worker, reset between episodes
    assert all(env.task is None for env in made)  # closed at the end


async def test_groups_of_k_samples_share_a_group_id_with_distinct_seeds():
    ids = task_ids(3)
    records = await RolloutEngine(lambda: GuessEnv(split="test"), RandomPolicy(seed=1),
                                  RolloutConfig(concurrency=4)).run(make_jobs(ids, 4, base_seed=7))
    assert len(records) == 12
    for tid in ids:
        group = [r for r in records if r.group_id == tid]
        assert sorted(r.sample for r in group) == [0, 1, 2, 3]
        assert len({r.seed for r in group}) == 4
        assert {r.seed for r in group} == {episode_seed(7, tid, s) for s in range(4)}


async def test_token_ids_logprobs_and_loss_spans_are_recorded():
    [rec] = await RolloutEngine(lambda: GuessEnv(split="test"), SlowOracle(0)).run(make_jobs(task_ids(1)))
    turn = rec.turns[0]
    assert turn.token_ids == [7, 8, 9] and turn.logprobs == [-1.0, -1.0, -1.0]
    assert turn.loss_mask_spans == [(10, 13)]
    assert turn.policy_ms >= 0 and turn.env_ms >= 0
    assert rec.first_observation[0]["role"] == "system" and rec.split == "test"
    assert rec.task_info["axis"] in ("ood", "iid")


async def test_only_privileged_policies_see_the_oracle_action():
    seen = []

    class Spy:
        name = "spy"

        async def act(self, observation, tools):
            seen.append(observation.oracle_action)
            return "<guess>1</guess>"

    await RolloutEngine(lambda: GuessEnv(split="test"), Spy()).run(make_jobs(task_ids(2)))
    assert seen and all(o is None for o in seen)


class FlakyEnv(GuessEnv):
    failures_left = 0

    async def begin_episode(self, task):
        if FlakyEnv.failures_left > 0:
            FlakyEnv.failures_left -= 1
            raise ConnectionError("sandbox did not start")
        return await super().begin_episode(task)


async def test_infrastructure_failures_are_retried_and_kept_in_the_record():
    FlakyEnv.failures_left = 1
    [rec] = await RolloutEngine(lambda: FlakyEnv(split="test"), OraclePolicy()).run(make_jobs(task_ids(1)))
    assert rec.success is True and rec.attempts == 2
    assert rec.infra_errors[0]["where"] == "reset" and "sandbox did not start" in rec.infra_errors[0]["message"]


async def test_persistent_failure_is_recorded_as_infra_error_not_reward_zero():
    FlakyEnv.failures_left = 100
    [rec] = await RolloutEngine(lambda: FlakyEnv(split="test"), OraclePolicy(),
                                RolloutConfig(max_infra_retries=2)).run(make_jobs(task_ids(1)))
    FlakyEnv.failures_left = 0
    assert rec.termination == "infra_error" and rec.success is None and rec.reward is None
    assert rec.attempts == 3 and len(rec.infra_errors) == 3 and not rec.scored


async def test_policy_errors_and_timeouts_are_policy_failures():
    class Crashes:
        name = "crash"

        async def act(self, observation, tools):
            raise RuntimeError("server returned 500")

    class Hangs:
        name = "hang"

        async def act(self, observation, tools):
            await asyncio.sleep(60)

    [crash] = await RolloutEngine(lambda: GuessEnv(split="test"), Crashes(),
                                  RolloutConfig(max_infra_retries=0)).run(make_jobs(task_ids(1)))
    assert crash.termination == "policy_error" and "500" in crash.infra_errors[0]["message"]
    [hang] = await RolloutEngine(lambda: GuessEnv(split="test"), Hangs(),
                                 RolloutConfig(max_infra_retries=0, policy_timeout_s=0.1)).run(make_jobs(task_ids(1)))
    assert hang.termination == "policy_error" and hang.infra_errors[0]["type"] == "TimeoutError"


async def test_episode_deadline():
    [rec] = await RolloutEngine(lambda: GuessEnv(split="test"), SlowOracle(0.5),
                                RolloutConfig(max_infra_retries=0, episode_deadline_s=0.1)).run(make_jobs(task_ids(1)))
    assert rec.termination == "deadline" and rec.success is None


async def test_records_stream_to_the_callback_as_they_finish():
    got = []

    async def sink(r):
        got.append(r.key)

    records = await RolloutEngine(lambda: GuessEnv(split="test"), OraclePolicy(),
                                  RolloutConfig(concurrency=3)).run(make_jobs(task_ids(5)), on_record=sink)
    assert sorted(got) == sorted(r.key for r in records) and len(got) == 5


async def test_cancelling_a_run_closes_its_envs():
    made = []

    def factory():
        made.append(GuessEnv(split="test"))
        return made[-1]

    policy = GatedOracle(gate=3)    # never opens with 2 workers: both episodes stay in flight until cancelled
    run = asyncio.create_task(RolloutEngine(factory, policy, RolloutConfig(concurrency=2)).run(make_jobs(task_ids(4))))
    await asyncio.wait_for(policy.entered.wait(), timeout=60)     # cancel mid-episode, not before the run began
    run.cancel()
    try:
        await run
    except asyncio.CancelledError:
        pass
    assert made and all(env.task is None for env in made)


async def test_odd_policy_output_and_a_broken_oracle_cost_one_episode_not_the_run():
    class Odd:
        name = "odd"

        async def act(self, observation, tools):
            return {"content": 5} if observation.turn == 0 else {"content": [{"type": "text", "text": 7}]}

    records = await RolloutEngine(lambda: GuessEnv(split="test", max_turns=2), Odd()).run(make_jobs(task_ids(3)))
    assert len(records) == 3 and all(r.scored and r.success is False for r in records)

    class BadOracle(GuessEnv):
        async def oracle_action(self):
            raise KeyError("gold missing")

    [rec] = await RolloutEngine(lambda: BadOracle(split="test"), OraclePolicy(),
                                RolloutConfig(max_infra_retries=0)).run(make_jobs(task_ids(1)))
    assert rec.termination == "infra_error" and rec.infra_errors[0]["where"] == "oracle"


async def test_context_overflow_is_a_scored_failure():
    from agentgym.errors import ContextOverflowError

    class Overflows:
        name = "overflow"

        async def act(self, observation, tools):
            if observation.turn == 1:
                raise ContextOverflowError("prompt is too long")
            return "<guess>0</guess>"

    [rec] = await RolloutEngine(lambda: GuessEnv(split="test"), Overflows()).run(make_jobs(task_ids(1)))
    assert rec.termination == "context_overflow" and rec.success is False and rec.scored and rec.num_turns == 1


class ByteTokenPolicy:
    """A token-in/token-out policy over byte 'tokens': extends the engine's context, never re-encodes it."""

    name = "byte-tokens"

    def __init__(self, chain: bool = True):
        self.chain = chain
        self.contexts: list[list[int] | None] = []

    async def act(self, observation, tools):
        context = observation.context_token_ids
        self.contexts.append(None if context is None else list(context))
        new = observation.messages if context is None else observation.messages[-1:]
        new_ids = list("".join(str(m.get("content")) for m in new).encode()[:40])
        prompt = (list(context) if context is not None and self.chain else []) + new_ids
        action = f"<guess>{observation.turn + 1}</guess>"  # counts up: several turns
        return PolicyAction(message={"role": "assistant", "content": action}, prompt_token_ids=prompt,
                            token_ids=list(action.encode()), logprobs=[-0.5] * len(action.encode()))


def multi_turn_task() -> list[str]:
    """A task the counting policy needs at least three turns for."""
    tasks = GuessEnv(split="test").load_suite().tasks("test")
    return [next(t.id for t in tasks if 3 <= t.params["secret"] <= 8)]


async def test_chained_token_contexts_give_one_sequence_with_every_action_span():
    policy = ByteTokenPolicy()
    [record] = await RolloutEngine(lambda: GuessEnv(split="test"), policy).run(make_jobs(multi_turn_task()))
    assert len(record.turns) >= 2 and policy.contexts[0] is None
    for prev, turn, seen in zip(record.turns, record.turns[1:], policy.contexts[1:]):
        assert seen == prev.prompt_token_ids + prev.token_ids  # the policy got the exact generated history
        assert turn.prompt_token_ids[:len(seen)] == seen
    last = record.turns[-1]
    sequence = last.prompt_token_ids + last.token_ids
    assert len(last.loss_mask_spans) == len(record.turns)
    assert [sequence[a:b] for a, b in last.loss_mask_spans] == [t.token_ids for t in record.turns]


async def test_a_policy_that_restarts_its_prompt_gets_one_span_per_turn():
    policy = ByteTokenPolicy(chain=False)
    [record] = await RolloutEngine(lambda: GuessEnv(split="test"), policy).run(make_jobs(multi_turn_task()))
    assert len(record.turns) >= 2
    for turn in record.turns:
        n = len(turn.prompt_token_ids)
        assert turn.loss_mask_spans == [(n, n + len(turn.token_ids))]
