"""The package's layers point one way: a module imports only modules of its own layer or below.

Read from the source (every import, the lazy ones inside functions and those only for type
checking included), so a new import that reaches upwards, or a cycle, fails here before it
becomes a tangle. The layers, top to bottom, are those of the README's "How it is built", and
that map names every module there is.
"""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tpcloud"

# Top first. A module belongs to the layer of the longest name that is a prefix of its own.
LAYERS: list[tuple[str, ...]] = [
    ("tpcloud.cli", "tpcloud.__main__"),
    ("tpcloud.doctor", "tpcloud.completion", "tpcloud.watching"),
    ("tpcloud.output", "tpcloud.metrics"),
    ("tpcloud.factory",),
    ("tpcloud.service",),
    ("tpcloud.routes",),
    ("tpcloud.addresses", "tpcloud.cloud.account", "tpcloud.lan.links"),
    ("tpcloud.cloud", "tpcloud.lan", "tpcloud.secrets", "tpcloud.filestore", "tpcloud.keyringstore",
     "tpcloud.secretservice", "tpcloud.storechoice", "tpcloud.cache", "tpcloud.archive"),
    ("tpcloud.dialects", "tpcloud.capabilities", "tpcloud.schedulefile"),
    ("tpcloud.devices", "tpcloud.config", "tpcloud.errors", "tpcloud.redact", "tpcloud.fsutil",
     "tpcloud.charts", "tpcloud"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The tpcloud modules PATH imports (``from tpcloud import errors`` is tpcloud.errors)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tpcloud"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "tpcloud":
            submodules = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= submodules or {node.module}
    return found


def layer(module: str) -> int:
    best = max((len(name), rank) for rank, names in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + "."))
    return best[1]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def test_every_module_has_a_layer():
    for name in modules():
        layer(name)  # raises if no layer name is a prefix


def test_no_module_imports_one_above_it():
    upwards = [
        f"{module} (layer {layer(module)}) imports {imported} (layer {layer(imported)})"
        for module, imported_set in graph().items() for imported in sorted(imported_set)
        if layer(imported) < layer(module)
    ]
    assert upwards == []


def test_the_imports_have_no_cycle():
    try:
        TopologicalSorter(graph()).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_check_sees_an_upward_import(tmp_path):
    # The test above can fail: the parser finds imports inside functions and TYPE_CHECKING blocks.
    source = tmp_path / "example.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tpcloud import service\n"
                      "def f():\n    from tpcloud.cli import common\n")
    assert imports(source, {"tpcloud.service", "tpcloud.cli.common"}) == {"tpcloud.service", "tpcloud.cli.common"}
    assert layer("tpcloud.cli.common") < layer("tpcloud.service") < layer("tpcloud.routes") < layer("tpcloud.errors")


def test_the_readme_map_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("## How it is built", 1)[1].split("\n## ", 1)[0]
    missing = [
        str(path.relative_to(PACKAGE.parent)) for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py") and not named_in(section, path)
    ]
    assert missing == [], f"not in README's How it is built: {missing}"


def named_in(section: str, path: Path) -> bool:
    """Whether SECTION names the module at PATH: its package folder, then its name (``light`` or
    ``light.py``) after it. A top-level module needs only its file name."""
    if path.parent == PACKAGE:
        return re.search(rf"`?\b{re.escape(path.name)}\b", section) is not None
    folder = f"{path.parent.relative_to(PACKAGE.parent)}/"
    after = section.split(folder, 1)
    return len(after) == 2 and re.search(rf"\b{re.escape(path.stem)}\b", after[1].split("\ntpcloud/", 1)[0]) is not None
