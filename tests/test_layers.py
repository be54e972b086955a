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
    (
        "faces",
        (
            "rxbinance.websockets",
            "rxbinance.cli",
            "rxbinance.jupyter",
            "rxbinance.bridge",
            "rxbinance",
        ),
    ),
]
# Third-party packages each layer may use (the standard library is always fine).
THIRD_PARTY = {
    # optional: cryptography only for Ed25519/RSA keys, orjson (the speed extra) for JSON
    "protocol": {"cryptography", "orjson"},
    "io": {"cryptography", "orjson", "websocket", "requests"},
}
OURS_OR_STDLIB_ONLY_BELOW = {
    "reactivex", "websocket", "requests", "websockets", "pandas", "orjson",
}  # fmt: skip
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


# -- no module reads another's private attributes -------------------------------------------------

# Private names of third-party objects that rxbinance reads on purpose, each with its reason.
THIRD_PARTY_PRIVATE = {
    # The subscriber's own function inside reactivex's AutoDetachObserver (reactivex 6.x,
    # pinned below 7): the hub's fan-out calls it directly (hub._direct_on_next says why).
    ("rxbinance._reactive.hub", "_on_next"),
}


def private_accesses(path: Path) -> list[str]:
    """``x._name`` and ``getattr(x, "_name")`` where ``x`` is not ``self``/``cls``, a class or
    function of this module, or a local made by calling one of its classes: reads of another
    object's private attributes. Names ending in '_' (``_repr_html_``) are protocols, not
    private."""
    tree = ast.parse(path.read_text())
    own = {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }
    own_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    # Locals bound to an instance of this module's own classes: `view = LiveDisplay[T](...)`.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Subscript):
                func = func.value
            if isinstance(func, ast.Name) and func.id in own_classes:
                own.update(t.id for t in node.targets if isinstance(t, ast.Name))
    module = module_name(path)
    found = []

    def private(name: str) -> bool:
        return name.startswith("_") and not name.endswith("_")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and (base.id in {"self", "cls"} or base.id in own):
                continue
            if isinstance(base, ast.Call) and getattr(base.func, "id", "") in {"super", "type"}:
                continue  # super()._x, type(self)._x: one's own class
            name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id == "self")
        ):
            name = node.args[1].value
        else:
            continue
        if (module, name) not in THIRD_PARTY_PRIVATE:
            found.append(f"line {node.lineno}: {name}")
    return sorted(found, key=lambda f: int(f.split()[1].rstrip(":")))


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_no_access_to_another_objects_private_attributes(path: Path) -> None:
    assert private_accesses(path) == [], (
        f"{module_name(path)} reads private attributes of other objects; pass what is needed "
        "explicitly (e.g. through streams.context)"
    )


def test_the_private_attribute_check_catches_what_it_should(tmp_path: Path) -> None:
    sample = PACKAGE / "_layers_sample.py"
    try:
        sample.write_text(
            "def f(streams):\n"
            "    streams._registry.close()\n"
            "    return getattr(streams, '_worker_thread', None)\n"
            "class A:\n"
            "    def g(self, other: 'A'):\n"
            "        return self._x, A._y, other._z\n"
        )
        assert private_accesses(sample) == [
            "line 2: _registry",
            "line 3: _worker_thread",
            "line 6: _z",
        ]
    finally:
        sample.unlink()


def test_composition_modules_import_in_one_direction() -> None:
    """streams < pipelines < operators: streams imports no pipeline, pipelines no operator."""
    order = ["rxbinance.streams", "rxbinance.pipelines", "rxbinance.operators"]
    for path in SOURCES:
        module = module_name(path)
        rank = next((i for i, p in enumerate(order) if module.startswith(p)), None)
        if rank is None:
            continue
        for imported in imports_of(path):
            other = next((i for i, p in enumerate(order) if imported.startswith(p)), None)
            assert other is None or other <= rank, f"{module} imports {imported}"
