"""gui/ has no import cycle: features depend on each other one way, so each can be read (and
tested) from its own folder down.

Every import counts, wherever it is written: at the top of a module, inside a function, or
under `if TYPE_CHECKING:`. A function-local import only postpones the cycle to run time, and a
type-only import is still a dependency a reader has to follow, so neither is a way around it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUI = REPO / "gui"


def _module_name(path: Path) -> str:
    return ".".join(("gpuops", *path.relative_to(REPO).with_suffix("").parts)).removesuffix(".__init__")


def _package_of(path: Path, name: str) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def import_graph() -> dict[str, set[str]]:
    """gpuops.gui module -> the gpuops.gui modules it imports (anywhere in its text)."""
    paths = {_module_name(p): p for p in sorted(GUI.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = _package_of(path, name).split(".")
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def test_the_gui_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in gui/: " + " -> ".join(cycle or ())


def test_the_graph_sees_every_kind_of_import() -> None:
    """The checker itself: top-level, function-local and type-only imports are edges, and a
    cycle made of them is found."""
    graph = import_graph()
    assert "gpuops.gui.window.main_window" in graph["gpuops.gui.app.console_window"]  # top level
    assert "gpuops.gui.window.settings_dialog" in graph["gpuops.gui.window.actions"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_features_are_folders() -> None:
    """gui/ holds feature packages only (plus its own __init__): no flat modules come back."""
    flat = sorted(p.name for p in GUI.glob("*.py") if p.name != "__init__.py")
    assert flat == []
