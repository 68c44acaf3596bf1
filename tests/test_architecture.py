"""The architecture as executable rules: imports follow the data flow, packaging lists every package."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> import prefixes it must never import
FORBIDDEN = {
    "agentgym": ("agentgym.envs", "agentgym.policies", "agentgym.trainers", "envs", "policies", "trainers"),
    "envs": ("agentgym.policies", "agentgym.trainers", "policies", "trainers"),
    "policies": ("agentgym.envs", "agentgym.trainers", "envs", "trainers"),
    "trainers": ("agentgym.envs", "envs"),
}
CLI = {ROOT / "agentgym" / name for name in ("cli.py", "cli_serving.py", "cli_train.py", "cli_search.py")}  # the command line wires parts


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_follow_the_data_flow(folder):
    bad = []
    for path in (ROOT / folder).rglob("*.py"):
        if path in CLI:
            continue
        for name in imports_of(path):
            if any(name == p or name.startswith(p + ".") for p in FORBIDDEN[folder]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found == listed


def test_core_imports_without_optional_extras():
    code = ("import sys, agentgym, agentgym.cli\n"
            "heavy = [m for m in ('torch', 'transformers', 'playwright', 'vllm', 'ray', 'e2b_code_interpreter') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_missing_extra_names_the_extra_to_install():
    from agentgym.errors import MissingExtraError
    from agentgym.extras import require

    with pytest.raises(MissingExtraError, match=r"pip install 'agentgym\[web\]'"):
        require("surely_not_installed_module_xyz", "web")


def test_readme_example_is_the_tested_plugin():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "tests" / "plugin_example" / "guess_env.py").read_text()
    assert "```python\n" + example + "```" in readme
    assert len(example.splitlines()) < 60
