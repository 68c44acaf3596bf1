"""agentgym: async gymnasium environments for LLM agents, with rollouts, records and held-out benchmarks."""

from agentgym.env import AsyncEnv, EnvSnapshot, SupportsOracle, SupportsSnapshot
from agentgym.errors import (
    ActionParseError,
    AgentGymError,
    DatasetError,
    InfrastructureError,
    MissingExtraError,
    PolicyError,
    SplitLeakError,
    ToolError,
    UnknownEnvError,
    UnknownOptionError,
    UnknownTaskError,
)
from agentgym.messages import Action, Message
from agentgym.registry import EnvSpec, asuite, load_plugins, make, register, registry, spec, suite
from agentgym.tasks import Manifest, SplitRule, Task, TaskSuite
from agentgym.tool_calls import TagToolCalls, ToolCall, register_parser
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import Tool, tool

__version__ = "0.1.0"

__all__ = [
    "Action", "ActionParseError", "AgentGymError", "DatasetError", "AsyncEnv", "EnvSnapshot", "EnvSpec", "InfrastructureError",
    "Manifest", "Message", "MissingExtraError", "Outcome", "PolicyError", "SplitLeakError", "SplitRule",
    "SupportsOracle", "SupportsSnapshot", "TagToolCalls", "Task", "TaskSuite", "Tool", "ToolCall", "ToolEnv",
    "ToolError", "ToolOutput", "UnknownEnvError", "UnknownOptionError", "UnknownTaskError", "asuite", "load_plugins",
    "make", "register", "register_parser", "registry", "spec", "suite", "tool",
]

# Plug-ins (the built-in envs included) register through entry points, so that after `import agentgym`
# `gymnasium.make("agentgym/sql-v0")` works as well as `agentgym.make(...)`.
load_plugins()
