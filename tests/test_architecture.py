"""The architecture as executable rules: imports follow the data flow, packaging lists every package."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> import prefixes it must never import
FORBIDDEN = {
    "agentgym": ("agentgym.envs", "agentgym.policies", "agentgym.trainers", "agentgym.planning",
                 "envs", "policies", "trainers", "planning"),
    "envs": ("agentgym.policies", "agentgym.trainers", "agentgym.planning", "policies", "trainers", "planning"),
    "policies": ("agentgym.envs", "agentgym.trainers", "agentgym.planning", "envs", "trainers", "planning"),
    # training reads search trees (agentgym.search_tree) but never runs a search: planning -> trainers -> core
    "trainers": ("agentgym.envs", "agentgym.planning", "envs", "planning"),
    # search runs any env and any policy the CLI hands it, through the core's contracts
    "planning": ("agentgym.envs", "agentgym.policies", "envs", "policies"),
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


# Notes that live beside the checkout, not in it: a citation of one is a dead link for every reader of the code.
# The dots are escaped so that a plain search for those names finds no hit here either.
OUTSIDE_CITATIONS = re.compile(r"algorithms\.md|\.\./shared\b|/work/shared\b")
SOURCE_FOLDERS = ("agentgym", "envs", "policies", "trainers", "planning", "tests", "bench", "scripts")


def test_no_code_cites_a_file_outside_the_repository():
    """Docstrings and comments state the equation or cite the paper; they never point at notes beside the checkout."""
    files = [p for folder in SOURCE_FOLDERS for p in (ROOT / folder).rglob("*.py")]
    files += [ROOT / name for name in ("pyproject.toml", "Makefile", "README.md")]
    bad = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in files if path != Path(__file__).resolve()
           for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if OUTSIDE_CITATIONS.search(line)]
    assert files and not bad, "\n".join(bad)
    assert OUTSIDE_CITATIONS.search("Equations (" + "algorithms" + ".md §3)")  # the rule can fail (split: see above)


def test_every_test_file_the_build_names_exists():
    """pyproject.toml and the Makefile name only test files that are in tests/."""
    named = set()
    for name in ("pyproject.toml", "Makefile"):
        named.update(re.findall(r"tests/[\w/]+\.py", (ROOT / name).read_text()))
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, missing


# Sub-packages of envs/ that hold machinery shared by several env kinds; every other sub-package is one env kind.
SHARED_ENV_PACKAGES = {"browser"}   # Chromium hosts, leases, network policy, settling: used by web and gui


def _env_package_imported(path: Path, name: str, level: int) -> str | None:
    """The envs/ sub-package that an import in `path` names (absolute or relative), or None."""
    if level:   # a relative import: resolve it against the importing file's package
        package = path.relative_to(ROOT).parent.parts[:len(path.relative_to(ROOT).parent.parts) - level + 1]
        name = ".".join([*package, *([name] if name else [])])
    parts = name.split(".")
    parts = parts[1:] if parts[0] == "agentgym" else parts
    return parts[1] if len(parts) > 1 and parts[0] == "envs" else None


def _cross_kind_imports(path: Path, kind: str) -> list[str]:
    """Imports in `path` (inside envs/<kind>) of another env kind's package."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = ([(a.name, 0) for a in node.names] if isinstance(node, ast.Import)
                   else [(node.module or "", node.level)] if isinstance(node, ast.ImportFrom) else [])
        for name, level in targets:
            other = _env_package_imported(path, name, level)
            if other is not None and other != kind and (other not in SHARED_ENV_PACKAGES or kind in SHARED_ENV_PACKAGES):
                bad.append(f"{path.relative_to(ROOT)} imports {name or '.' * level} (envs/{other})")
    return bad


def test_env_kinds_import_only_their_own_package_and_the_shared_machinery():
    """No env kind imports another kind's package (gui never imports web, web never imports gui, ...); what two
    kinds share lives in a shared sub-package (browser), which itself imports no env kind."""
    kinds = sorted(p.name for p in (ROOT / "envs").iterdir() if (p / "__init__.py").is_file())
    assert {"web", "gui", *SHARED_ENV_PACKAGES} <= set(kinds)
    bad = [line for kind in kinds for path in sorted((ROOT / "envs" / kind).rglob("*.py"))
           for line in _cross_kind_imports(path, kind)]
    assert not bad, "\n".join(bad)
    # the rule can fail: a gui module reaching into web, absolutely or relatively, and the shared part reaching
    # into an env kind, are all caught
    probe = ROOT / "envs" / "gui" / "tasks" / "probe.py"
    assert _env_package_imported(probe, "agentgym.envs.web.browser", 0) == "web"
    assert _env_package_imported(probe, "web.network", 3) == "web"
    assert _env_package_imported(probe, "base", 1) == "gui"
    assert _env_package_imported(ROOT / "envs" / "browser" / "host.py", "agentgym.envs.gui.env", 0) == "gui"
