"""The README's configuration table lists every environment variable the code reads, and nothing
that nothing reads. The code's reads are found in its syntax tree, in the forms the project
uses: ``environ.get("NAME")``, ``environ["NAME"]``, ``os.getenv("NAME")``, a helper called with
``environ`` and the name (``_text(environ, "NAME")``), and such a read inside a loop over a
literal or a module-level table of names (``for name in ("A", "B")``, ``WHATSAPP_VARIABLES.items()``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actions", "analytics", "assistant_llm", "banking", "components", "connectors",
            "rasa_sdk_plugins", "sandbox", "scripts")
SHELL = ("Makefile", "scripts/serve.sh")
NAME = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")
TABLE_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]+)` \|", re.MULTILINE)


def _is_environ(node: ast.AST) -> bool:
    """``environ`` or ``os.environ``."""
    return (isinstance(node, ast.Name) and node.id == "environ") or (
        isinstance(node, ast.Attribute) and node.attr == "environ")


def _read_arguments(node: ast.AST) -> list[ast.expr]:
    """The argument(s) that name the variable, when ``node`` reads the environment."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
        return [node.slice]
    if not isinstance(node, ast.Call):
        return []
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
        return node.args[:1]
    if isinstance(func, ast.Attribute) and func.attr == "getenv":
        return node.args[:1]
    if any(_is_environ(argument) for argument in node.args):
        return [argument for argument in node.args if not _is_environ(argument)]
    return []


def _names_in(node: ast.AST, tables: dict[str, ast.expr]) -> Iterator[str]:
    """Variable-shaped strings in a literal, following module-level names (``TABLE.items()``)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and NAME.match(child.value):
            yield child.value
        elif isinstance(child, ast.Name) and child.id in tables:
            yield from _names_in(tables[child.id], {})


def _loops(tree: ast.AST) -> Iterator[tuple[set[str], ast.expr, ast.AST]]:
    """(loop variables, what they iterate over, the loop) for every for statement and comprehension."""
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            yield {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}, node.iter, node
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            for generator in node.generators:
                yield {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}, generator.iter, node


def variables_read(source: str) -> set[str]:
    tree = ast.parse(source)
    tables = {target.id: statement.value for statement in tree.body if isinstance(statement, ast.Assign)
              for target in statement.targets if isinstance(target, ast.Name)}
    found: set[str] = set()
    for node in ast.walk(tree):
        for argument in _read_arguments(node):
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str) and NAME.match(argument.value):
                found.add(argument.value)
    for variables, iterated, loop in _loops(tree):
        if any(isinstance(argument, ast.Name) and argument.id in variables
               for node in ast.walk(loop) for argument in _read_arguments(node)):
            found.update(_names_in(iterated, tables))
    return found


def code_variables() -> dict[str, set[str]]:
    """Each variable the Python code reads -> the files that read it."""
    where: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in variables_read(path.read_text(encoding="utf-8")):
                where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return where


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(TABLE_ROW.findall(section))


def test_the_scan_finds_each_form_of_read() -> None:
    assert variables_read('x = environ.get("A_B", "")') == {"A_B"}
    assert variables_read('x = os.environ["A_B"]; y = os.getenv("C_D"); os.environ["E_F"] = x') == {"A_B", "C_D"}
    assert variables_read('x = int(_number(environ, "A_B", 1, high=3))') == {"A_B"}
    assert variables_read('x = {n: environ.get(n) for n in ("A_B", "C_D")}') == {"A_B", "C_D"}
    assert variables_read('T = {"key": "A_B"}\ndef f(environ):\n'
                          '    return {k: _text(environ, n) for k, n in T.items()}') == {"A_B"}
    assert variables_read('T = {"A_B": "key"}\ndef f(environ):\n'
                          '    for variable, name in T.items():\n        raw = environ.get(variable)') == {"A_B"}
    assert variables_read('x = "NOT_READ"; environ.get(name)') == set()


def test_the_scan_sees_the_projects_settings() -> None:
    found = code_variables()
    for name in ("ENVIRONMENT", "USER_ID_SALT", "WHATSAPP_APP_SECRET", "MONO_SECRET_KEY", "PLAID_ENV", "SANDBOX_PORT",
                 "ACTION_SERVER_TOKEN", "GROQ_MAX_RETRIES", "RATE_LIMIT_MESSAGES", "ANALYTICS_PATH"):
        assert name in found, name
    assert "DEVELOPMENT_SALT" not in found and "ITEM_LOGIN_REQUIRED" not in found


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    missing = {name: sorted(files) for name, files in code_variables().items() if name not in readme_variables()}
    assert not missing, f"add these to README.md's configuration table: {missing}"


def test_the_readme_table_lists_only_variables_something_reads() -> None:
    shell = set()
    for path in SHELL:
        shell.update(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", (ROOT / path).read_text(encoding="utf-8")))
    stale = readme_variables() - set(code_variables()) - shell
    assert not stale, f"nothing reads these any more: {sorted(stale)}"
