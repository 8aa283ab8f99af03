"""Data flows one way and so do imports: no module imports one of a higher layer, there is no
circle of imports, and domain code never imports Dagster. Reads the source, runs nothing."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "finops_pipeline"

# Lowest first. A module may import its own layer and the ones before it.
LAYERS = [
    ("finops_pipeline.grain", "finops_pipeline.errors", "finops_pipeline.processes", "finops_pipeline.mapping_spec"),
    ("finops_pipeline.warehouse",),
    ("finops_pipeline.sources",),
    ("finops_pipeline.feedback",),
    ("finops_pipeline.detection",),
    ("finops_pipeline.alerting",),
    ("finops_pipeline.settings",),
    ("finops_pipeline.defs",),
    ("finops_pipeline.definitions",),
    ("finops_pipeline.feedback.cli",),  # a command: it loads the definitions
]
# Where Dagster may be imported: the wiring, and the resource that is one.
DAGSTER_ALLOWED = ("finops_pipeline.defs", "finops_pipeline.definitions", "finops_pipeline.warehouse.resource",
                   "finops_pipeline.feedback.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    matches = [(len(prefix), i) for i, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def test_no_module_imports_a_higher_layer():
    wrong = [f"{m} imports {i}" for m, imports in _graph().items() for i in imports if _layer(i) > _layer(m)]
    assert not wrong, wrong


def test_there_is_no_circle_of_imports():
    graph = _graph()
    state: dict[str, str] = {}
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package's __init__ importing its own submodules is not a circle of modules.
    circles = [c for c in circles if not all(x.startswith(c[0]) or c[0].startswith(x) for x in c)]
    assert not circles, circles


def test_domain_code_never_imports_dagster():
    offenders = [f"{_module_name(p)}: {sorted(i for i in _imports(p) if i.split('.')[0].startswith('dagster'))}"
                 for p in PACKAGE.rglob("*.py")
                 if not _module_name(p).startswith(DAGSTER_ALLOWED)
                 and any(i.split(".")[0].startswith("dagster") for i in _imports(p))]
    assert not offenders, offenders


def test_no_product_or_benchmark_module_imports_a_test_module():
    modules = [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "benchmarks").rglob("*.py")]
    offenders = [str(p) for p in modules if any(i.startswith("finops_pipeline_tests") for i in _imports(p))]
    assert not offenders, offenders
