"""Imports point one way: protocol at the bottom, the faces users touch at the top.

Read statically from the source (every ``import``, also inside functions), because importing any
submodule runs the package ``__init__``, which pulls in everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rxbinance"

# Lowest first. A module may import rxbinance modules of its own layer or below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "protocol",
        (
            "rxbinance.errors",
            "rxbinance.events",
            "rxbinance.enums",
            "rxbinance.protocol",
            "rxbinance.models",
        ),
    ),
    ("io", ("rxbinance.transport", "rxbinance.rest")),
    ("reactive", ("rxbinance._reactive",)),
    (
        "composition",
        (
            "rxbinance.streams",
            "rxbinance.pipelines",
            "rxbinance.operators",
            "rxbinance.recording",
            "rxbinance.aio",
        ),
    ),
    ("faces", ("rxbinance.websockets", "rxbinance.cli", "rxbinance.jupyter", "rxbinance")),
]
# Third-party packages each layer may use (the standard library is always fine).
THIRD_PARTY = {
    "protocol": {"cryptography"},  # optional, imported only for Ed25519/RSA keys
    "io": {"cryptography", "websocket", "requests"},
}
OURS_OR_STDLIB_ONLY_BELOW = {"reactivex", "websocket", "requests", "websockets", "pandas"}
# The simulator is for tests, demos and notebooks: only the faces that offer --sim/offline use it.
MAY_IMPORT_TESTING = ("rxbinance.cli", "rxbinance.jupyter")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if path.name != "__init__.py":
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def layer_of(module: str) -> int:
    best = -1
    best_prefix = ""
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > len(best_prefix):
                best, best_prefix = index, prefix
    return best


SOURCES = [
    p for p in sorted(PACKAGE.rglob("*.py")) if not module_name(p).startswith("rxbinance.testing")
]


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    if module == "rxbinance.__main__":
        return
    layer = layer_of(module)
    assert layer >= 0, f"{module} belongs to no layer: add it to LAYERS"
    layer_name = LAYERS[layer][0]
    for imported in imports_of(path):
        top = imported.split(".")[0]
        if top == "rxbinance":
            if imported.startswith("rxbinance.testing"):
                assert module.startswith(MAY_IMPORT_TESTING), f"{module} imports {imported}"
                continue
            assert layer_of(imported) <= layer, (
                f"{module} ({layer_name}) imports {imported} "
                f"({LAYERS[layer_of(imported)][0]}), a layer above it"
            )
        elif layer_name in THIRD_PARTY and top in OURS_OR_STDLIB_ONLY_BELOW | {"cryptography"}:
            assert top in THIRD_PARTY[layer_name], f"{module} ({layer_name}) imports {imported}"
