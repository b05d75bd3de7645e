"""The package's layering, checked from its source: a module imports only from its own layer or the layers below
(type-only imports under ``TYPE_CHECKING`` excepted), so there is no cycle and no lower layer reaching up."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "crossdistill"
# Lowest first. A module's layer is that of its longest listed prefix.
LAYERS = [
    ["errors", "registry", "atomic", "runtime", "stats", "serve", "__init__"],
    ["config", "specs", "checkpoint", "distributed"],
    ["data"],
    ["models"],
    ["evaluate", "losses"],
    ["tasks"],
    ["distill"],
    ["train", "plans", "rundir", "tracking"],
    ["results", "quantize", "export_golden", "export_package", "export", "report"],
    ["search", "predict", "diagnose", "pipeline", "parallel", "tune"],
    ["api", "cli", "__main__"],
]


def layer_of(module: str) -> int:
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        for level, names in enumerate(LAYERS):
            if prefix in names:
                return level
    raise AssertionError(f"module {module!r} is in no layer: add it to LAYERS")


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported crossdistill module, line) of every import not guarded by ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    guarded = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crossdistill"):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("crossdistill")]
    return found


def test_no_module_imports_from_a_higher_layer():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        own = layer_of(module.removesuffix(".__init__") or "__init__")
        for imported, line in imports(path):
            name = imported.removeprefix("crossdistill").lstrip(".") or "__init__"
            if layer_of(name) > own:
                problems.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported} (a higher layer)")
    assert not problems, "\n".join(problems)


def test_no_module_is_over_300_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {name: n for name, n in sizes.items() if n > 300}
    assert not long, long
