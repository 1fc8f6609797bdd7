"""Modules stay readable in one sitting and functions fit on a screen, unless their top
says why not: no module of ``src/casenet`` over 400 lines, no function over 60, except
one whose docstring has a line that starts with ``Long because``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "casenet"
MODULE_LINES = 400
FUNCTION_LINES = 60
#: The marker a module's or function's docstring gives its reason after.
REASON = "Long because"



def explains(node: ast.AST) -> bool:
    """Whether the node's docstring gives a reason for its length."""
    if not isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    doc = ast.get_docstring(node) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def findings(path: Path) -> list[str]:
    """What in the module at ``path`` is too long without a reason."""
    text = path.read_text()
    tree = ast.parse(text)
    found = []
    lines = len(text.splitlines())
    if lines > MODULE_LINES and not explains(tree):
        found.append(f"module of {lines} lines")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > FUNCTION_LINES and not explains(node):
                found.append(f"{node.name}() of {length} lines (line {node.lineno})")
    return found


def modules() -> list[str]:
    return sorted(str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*.py"))


def test_the_walk_sees_the_source() -> None:
    assert "application/case_queries.py" in modules()


@pytest.mark.parametrize("module", modules())
def test_a_module_and_its_functions_are_short_or_say_why(module: str) -> None:
    assert findings(SOURCE / module) == []
