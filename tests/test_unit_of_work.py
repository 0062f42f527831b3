"""Handlers hold a transaction only to hand it to the store.

``svc.db.transaction()`` / ``svc.db.read()`` is the unit of work: a handler opens it, passes
it to ``store.repositories``, ``store.audit`` and ``store.outbox`` functions, and the commit
happens when the block ends. import-linter already keeps SQLAlchemy out of ``handlers/``;
this keeps the session's own methods out too (no ``session.add``/``execute``/``get``/…
in a handler), and ORM classes from ``store.models`` (handlers see frozen records).
"""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"


def _transaction_names(tree: ast.AST) -> set[str]:
    """Names bound by ``async with <x>.transaction() / .read() as NAME``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncWith | ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in ("transaction", "read")
                        and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
    return names


def session_method_calls(source: str) -> list[str]:
    """Calls of a method on a transaction handle (or on a parameter named ``session``)."""
    tree = ast.parse(source)
    handles = _transaction_names(tree) | {"session"}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in handles):
            found.append((node.lineno, f"line {node.lineno}: "
                                       f"{node.func.value.id}.{node.func.attr}()"))
    return [text for _, text in sorted(found)]


def orm_imports(source: str) -> list[str]:
    tree = ast.parse(source)
    return [f"line {n.lineno}: from store.models import …" for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module == "store.models"]


def test_no_handler_uses_the_session_itself() -> None:
    offences = {
        str(path.relative_to(HANDLERS.parent)): found
        for path in sorted(HANDLERS.rglob("*.py"))
        if (found := session_method_calls(path.read_text()) + orm_imports(path.read_text()))
    }
    assert offences == {}


def test_the_check_sees_a_session_used_directly() -> None:
    """The scan is not vacuous: the shapes it must catch are caught."""
    leaky = (
        "from store.models import Transfer\n"
        "async def f(svc):\n"
        "    async with svc.db.transaction() as tx:\n"
        "        tx.add(Transfer())\n"
        "        await tx.execute('x')\n"
        "async def g(session):\n"
        "    await session.get(Transfer, 'SH-1')\n"
    )
    assert session_method_calls(leaky) == ["line 4: tx.add()", "line 5: tx.execute()",
                                           "line 7: session.get()"]
    assert orm_imports(leaky) == ["line 1: from store.models import …"]
