"""The house's rule: imports point down. A walk over every module's imports
(function-local ones too, so none can hide an upward arrow) fails on a cycle
or on a forbidden direction."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import flowtest

ROOT = Path(flowtest.__file__).parent

# (importer prefix, forbidden prefixes). The engine is everything but the
# sandbox and what sits on top of it (cli, serve, the pytest plugin).
TOP = ("flowtest.cli", "flowtest.serve", "flowtest.pytest_plugin", "flowtest.sandbox")
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    ("flowtest.model", ("flowtest.",)),
    # i18n sits at the bottom beside model (mail's sentences use it): it imports
    # nothing of flowtest's but its own package.
    ("flowtest.i18n", ("flowtest.model", "flowtest.mail", "flowtest.net", "flowtest.flows",
                       "flowtest.config", "flowtest.sandbox", "flowtest.providers",
                       "flowtest.report", "flowtest.doctor", "flowtest.cli", "flowtest.serve",
                       "flowtest.errors", "flowtest.secrets", "flowtest.guard",
                       "flowtest.pytest_plugin")),
    ("flowtest.mail", ("flowtest.net", "flowtest.flows", "flowtest.config", "flowtest.sandbox",
                       "flowtest.providers", "flowtest.report", "flowtest.doctor",
                       "flowtest.cli", "flowtest.serve")),
    # net/ is I/O: it may use mail's parsing, never its policy (judging, DMARC).
    ("flowtest.net", ("flowtest.flows", "flowtest.sandbox", "flowtest.cli", "flowtest.report",
                      "flowtest.doctor", "flowtest.serve", "flowtest.mail.judge",
                      "flowtest.mail.dmarc", "flowtest.mail.stats")),
    ("flowtest.flows", ("flowtest.cli", "flowtest.serve", "flowtest.sandbox",
                        "flowtest.report", "flowtest.pytest_plugin")),
    ("flowtest.report", ("flowtest.cli", "flowtest.serve", "flowtest.sandbox",
                         "flowtest.flows", "flowtest.net")),
    ("flowtest.doctor", ("flowtest.cli", "flowtest.serve", "flowtest.sandbox", "flowtest.flows")),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("flowtest"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            if not base.startswith("flowtest"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".")
                                                         else prefix + ".")


def test_the_walk_sees_the_package() -> None:
    graph = _graph()
    assert "flowtest.model" in graph and "flowtest.mail.authresults" in graph
    assert "flowtest.model" in graph["flowtest.mail.authresults"]


def test_no_forbidden_direction() -> None:
    wrong = []
    for importer, targets in _graph().items():
        for prefix, forbidden in FORBIDDEN:
            if not _under(importer, prefix):
                continue
            wrong += [f"{importer} -> {t}" for t in sorted(targets)
                      if any(_under(t, f) or (f.endswith(".") and t.startswith(f))
                             for f in forbidden)]
        if not importer.startswith(TOP) and importer != "flowtest.sandbox":
            wrong += [f"{importer} -> {t} (the engine never imports the sandbox)"
                      for t in sorted(targets) if _under(t, "flowtest.sandbox")]
    assert wrong == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle of layers.
    flat = {m: {t for t in ts if not (m.startswith(t + ".") and t in graph)}
            for m, ts in graph.items()}
    assert _cycle(flat) is None


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_the_cycle_finder_can_fail(graph: dict[str, set[str]], expected: bool) -> None:
    assert (_cycle(graph) is not None) is expected


def test_the_direction_check_can_fail(tmp_path: Path) -> None:
    src = tmp_path / "flowtest" / "mail"
    src.mkdir(parents=True)
    (src / "x.py").write_text("def f():\n    from flowtest.config import Config\n")
    found = _imports("flowtest.mail.x", src / "x.py", {"flowtest.config"})
    assert found == {"flowtest.config"}
