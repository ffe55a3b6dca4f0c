"""The house's shape: the engine below everything, the schema below the registry, a short import chain with no
cycle, and a small core. Each wing (a sub-folder of lib/) counts as one room."""
import ast
import functools
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "lib"
WINGS = ("sudoku", "experiments", "machine", "workbook", "findings")
MAX_CHAIN = 8  # rooms, the longest import chain (issue 28; it was 12)
MAX_CORE_LINES = 4000  # lib/*.py together
MAX_MODEL_LINES = 120  # RecurrentSudoku: wiring of the parts in the registries


def room(path: Path) -> str:
    rel = path.relative_to(LIB)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_rooms(path: Path) -> set[str]:
    """The rooms a file imports, lazy imports inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lib":
            parts = node.module.split(".")
            out |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
    return out


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in LIB.rglob("*.py"):
        edges.setdefault(room(path), set()).update(imported_rooms(path) - {room(path), "__init__"})
    edges.pop("__init__", None)
    return edges


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    """The longest import chain, in rooms; a cycle is an error."""
    @functools.lru_cache(maxsize=None)
    def chain(node: str, seen: frozenset = frozenset()) -> tuple[str, ...]:
        assert node not in seen, f"import cycle through {node}: {sorted(seen)}"
        tails = [chain(n, seen | {node}) for n in sorted(edges.get(node, ()))]
        return (node, *max(tails, key=len, default=()))
    return list(max((chain(n) for n in sorted(edges)), key=len))


def test_the_engine_imports_nothing_else_from_lib():
    assert graph()["sudoku"] == set()


def test_the_schema_does_not_import_the_registry():
    assert graph()["config"] <= {"sudoku"}


def test_the_import_chain_is_short_and_has_no_cycle():
    chain = longest_chain(graph())
    assert len(chain) <= MAX_CHAIN, " -> ".join(chain)


def test_the_core_is_small():
    lines = sum(len(p.read_text().splitlines()) for p in LIB.glob("*.py"))
    assert lines <= MAX_CORE_LINES, f"lib/*.py holds {lines} lines"


def test_the_model_is_wiring():
    tree = ast.parse((LIB / "model.py").read_text())
    model = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RecurrentSudoku")
    lines = model.end_lineno - model.lineno + 1
    assert lines <= MAX_MODEL_LINES, f"RecurrentSudoku is {lines} lines"


if __name__ == "__main__":  # python tests/test_layout.py: the chain and each room's imports
    edges = graph()
    print(f"{len(longest_chain(edges))} rooms:", " -> ".join(longest_chain(edges)))
    for name in sorted(edges):
        print(f"  {name:12s} -> {', '.join(sorted(edges[name]))}")
