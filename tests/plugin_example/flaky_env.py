"""A plug-in env whose tool breaks on a third of the tasks (a bug in the env, not the agent's mistake)."""

import agentgym
from agentgym import ToolOutput, tool
from guess_env import GuessEnv


class FlakyGuessEnv(GuessEnv):
    """GuessEnv whose ``guess`` tool raises (an infrastructure failure) when the secret is a multiple of 3."""

    env_id = "example/flaky-guess-v0"

    @tool("Guess the secret number.", params={"number": "your guess"})
    async def guess(self, number: int) -> ToolOutput:
        if self.secret % 3 == 0:
            raise RuntimeError("the third-party task generator crashed")
        return await GuessEnv.guess(self, number)


def register() -> None:
    """Entry point: registers both the flaky env and the guess env it builds on."""
    agentgym.register("example/flaky-guess-v0", "flaky_env:FlakyGuessEnv", description="Guess, but the tool breaks.")
