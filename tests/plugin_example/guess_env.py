"""A complete agentgym environment: find a secret number, guided by 'higher' / 'lower'."""

import agentgym
from agentgym import Outcome, SplitRule, TagToolCalls, Task, TaskSuite, ToolEnv, ToolError, ToolOutput, tool


class GuessEnv(ToolEnv):
    """Guess the secret integer in [1, high]; a wrong guess is answered 'higher' or 'lower'."""

    env_id = "example/guess-v0"
    max_turns = 8
    # OpenAI tool_calls, Hermes <tool_call>{...}</tool_call>, and this env's own tag: <guess>42</guess>
    tool_parsers = ("openai", "hermes", TagToolCalls("guess-tags", {"guess": ("guess", "number")}))

    def load_suite(self) -> TaskSuite:
        tasks = [Task(kind="guess", family=f"range-{high}", template="secret", params={"secret": s, "high": high})
                 for high in (10, 50, 100) for s in range(1, high + 1)]
        # OOD: the 1..100 range is never trained on; IID: a hash split of the others.
        return TaskSuite("guess", "v0", tasks, SplitRule(ood_test_families=frozenset({"range-100"})))

    async def begin_episode(self, task: Task) -> list[dict]:
        self.secret, self.high = task.params["secret"], task.params["high"]
        return [{"role": "system", "content": "Call guess(number) until you find the number."},
                {"role": "user", "content": f"I am thinking of a number between 1 and {self.high}."}]

    @tool("Guess the secret number.", params={"number": "your guess"})
    async def guess(self, number: int) -> ToolOutput:
        if not 1 <= number <= self.high:
            raise ToolError(f"{number} is outside 1..{self.high}")  # an observation, not a crash
        if number == self.secret:
            return ToolOutput("correct!", outcome=Outcome(1.0, True, {"turns_used": float(self.turn)}))
        return ToolOutput("higher" if number < self.secret else "lower")

    async def oracle_action(self) -> str:
        return f"<guess>{self.secret}</guess>"


def register() -> None:
    """Entry point of the plug-in: [project.entry-points."agentgym.envs"] guess = "guess_env:register"."""
    agentgym.register("example/guess-v0", "guess_env:GuessEnv", description="Guess a number (README example).")
