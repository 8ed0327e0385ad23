"""The import rule of docs/architecture.md: a package of ``src/mockd`` imports only the packages listed
before it, lazy imports inside functions included (they are edges all the same)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import mockd

# The order of docs/architecture.md: data flows down this list; server.py assembles the layers above it
# and the entry points (cli/, testing/) start it.
LAYERS = ["support", "config", "stream", "serving", "recording", "playback", "admin", "server", "cli", "testing"]
ROOT = Path(mockd.__file__).parent


def layer_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imported_modules(source: str, package: tuple[str, ...]) -> Iterator[str]:
    """Every absolute module name ``source`` imports, relative imports resolved against its package
    (``package``: the parts below ``mockd``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            above = () if node.level == 0 else ("mockd", *package[:len(package) - node.level + 1])
            base = ".".join((*above, *([node.module] if node.module else [])))
            yield base  # and what it takes from it, which may be a module (`from mockd import server`)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def later_layers(layer: str, names: Iterable[str]) -> list[str]:
    """The layers listed after ``layer`` that ``names`` (module names) reach into."""
    later = LAYERS[LAYERS.index(layer) + 1:]
    return sorted({parts[1] for parts in (name.split(".") for name in names)
                   if parts[0] == "mockd" and len(parts) > 1 and parts[1] in later})


def layered_modules() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py") if layer_of(path) in LAYERS)


def test_every_package_and_top_level_module_has_a_place_in_the_order() -> None:
    places = {layer_of(path) for path in ROOT.rglob("*.py")} - {"__init__", "__main__"}
    assert places == set(LAYERS)


@pytest.mark.parametrize("path", layered_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_a_module_imports_no_layer_listed_after_its_own(path: Path) -> None:
    names = imported_modules(path.read_text(encoding="utf-8"), path.relative_to(ROOT).parent.parts)
    later = later_layers(layer_of(path), names)
    assert later == [], f"{path.relative_to(ROOT)} ({layer_of(path)}) imports {later}"


def test_the_check_sees_absolute_relative_and_lazy_imports_of_later_layers() -> None:
    source = ("import mockd.support.files\n"
              "from mockd.config import model\n"
              "from ..recording.session import Session\n"
              "from .. import playback\n"
              "def later():\n"
              "    import mockd.admin.app\n")
    names = set(imported_modules(source, ("stream",)))
    assert {"mockd.support.files", "mockd.config.model", "mockd.recording.session", "mockd.playback",
            "mockd.admin.app"} <= names
    assert later_layers("stream", names) == ["admin", "playback", "recording"]
    assert later_layers("testing", names) == []
