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
CLI = ROOT / "agentgym" / "cli"  # the command line (a package) is the one part that wires envs, policies and trainers


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
        if path.is_relative_to(CLI):
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


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    """String literals of a module other than docstrings (which may name env modules in examples)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _is_sys_modules(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules" \
        and isinstance(node.value, ast.Name) and node.value.id == "sys"


def _sys_modules_lookups(tree: ast.AST) -> list[int]:
    """Lines that read a module out of ``sys.modules`` (``.get``, ``[...]`` loads, ``in`` tests); stores are fine."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and _is_sys_modules(node.func.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_sys_modules(node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(_is_sys_modules(c) for c in node.comparators):
            lines.append(node.lineno)
    return lines


def test_the_core_never_looks_an_env_up_by_name():
    """No ``sys.modules`` lookups and no env module paths in strings: an env's cleanup goes through agentgym.shutdown.

    The import rule above cannot see ``sys.modules.get("agentgym.envs.sql.executor")`` or
    ``importlib.import_module("agentgym.envs...")``; this one can. The entry-point group's own name
    ("agentgym.envs") is not a module path and is allowed.
    """
    bad = []
    for path in sorted((ROOT / "agentgym").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line in _sys_modules_lookups(tree):
            bad.append(f"{path.relative_to(ROOT)}:{line} looks a module up in sys.modules")
        for node in _string_constants(tree):
            if "agentgym.envs." in node.value or node.value.startswith("envs."):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names an env module: {node.value!r}")
    assert not bad, "\n".join(bad)


def test_the_by_name_rule_sees_a_lookup():
    """The rule above can fail: the lookup the core once used is caught by it."""
    source = 'import sys\nexecutor = sys.modules.get("agentgym.envs.sql.executor")\n'
    tree = ast.parse(source)
    assert _sys_modules_lookups(tree) == [2]
    assert _sys_modules_lookups(ast.parse('import sys\nif "x" in sys.modules:\n    m = sys.modules["x"]\n')) == [2, 3]
    assert [c.value for c in _string_constants(tree)] == ["agentgym.envs.sql.executor"]
