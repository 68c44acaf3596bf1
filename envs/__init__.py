"""Built-in environments. Registered through the ``agentgym.envs`` entry point, lazily (nothing heavy is imported).

Each names its suite loader, so ``agentgym.suite(id, **kwargs)`` lists tasks without a browser, sandbox or database.
"""

from __future__ import annotations


def register_builtin_envs() -> None:
    """Register every built-in env with lazy "module:Class" entry points and "module:function" suite loaders."""
    from agentgym.registry import register

    register("agentgym/sql-v0", "agentgym.envs.sql.env:SqlEnv",
             suite_loader="agentgym.envs.sql.suite:suite_for",
             description="Text-to-SQL against real SQLite databases: explore with execute_sql, answer with "
                         "submit_sql; reward = test-suite execution accuracy over 3 database instances.",
             source="agentgym")
    register("agentgym/code-v0", "agentgym.envs.code.env:CodeEnv",
             suite_loader="agentgym.envs.code.suite:suite_for",
             description="Write Python against generated function/stdin tasks in a bubblewrap sandbox; reward = "
                         "all hidden tests pass.", source="agentgym")
    register("agentgym/code-humaneval-v0", "agentgym.envs.code.env:HumanEvalEnv",
             suite_loader="agentgym.envs.code.suite:humaneval_suite_for",
             description="HumanEval's 164 problems (evaluation only), graded in the sandbox.", source="agentgym")
    register("agentgym/search-v0", "agentgym.envs.search.env:SearchEnv",
             suite_loader="agentgym.envs.search.suite:suite_for",
             description="Multi-hop QA over a generated encyclopedia with BM25/dense search; reward = exact match.",
             source="agentgym")
    register("agentgym/web-miniwob-v0", "agentgym.envs.web.miniwob:MiniWobEnv",
             suite_loader="agentgym.envs.web.miniwob:suite_for",
             description="MiniWoB++ tasks in a real Chromium with BrowserGym observations and actions.",
             source="agentgym")
    register("agentgym/gui-phone-v0", "agentgym.envs.gui.env:PhoneEnv",
             suite_loader="agentgym.envs.gui.suite:suite_for",
             description="Device control from screenshots on a simulated phone (PhoneOS in Chromium); "
                         "AndroidWorld actions, state-checked success.", source="agentgym")
    register("agentgym/web-shop-v0", "agentgym.envs.web.shop:ShopEnv",
             suite_loader="agentgym.envs.web.shop.suite:suite_for",
             description="A generated WebShop-like store served in-process; WebShop's reward.", source="agentgym")
    register("agentgym/corridor-v0", "agentgym.envs.corridor.env:CorridorEnv",
             suite_loader="agentgym.envs.corridor.env:suite_for",
             description="A key-door corridor where one hidden turn decides success and states recur across a "
                         "group: the testbed of turn-level credit assignment.", source="agentgym")
