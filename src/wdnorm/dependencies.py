"""What a piece of code depends on, read from its imports: the transitive closure of
the wdnorm modules a script, notebook or module imports, and a content hash over them.

The workflow puts the hash of each rule's closure in the rule's params, so an edit to
any module a rule's code imports -- directly, through a package ``__init__``, or inside
a function -- marks exactly the rules that depend on it as stale, and nothing else;
the training runs record the hash of the training code's closure (provenance), so the
audit can tell runs made by other code. Nothing is imported or executed: the files are
parsed with :mod:`ast` (a notebook's code cells too), which over-approximates at worst
(an import inside a branch that never runs still counts).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "wdnorm"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(module: str, root: Path = PACKAGE_DIR) -> Path | None:
    """``wdnorm.a.b`` -> ``<root>/a/b.py`` or ``<root>/a/b/__init__.py`` (None if neither)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    rel = path.resolve().relative_to(root).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source(path: Path) -> str:
    """A Python file's source, or a notebook's code cells joined."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text).get("cells", [])
    code = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c.get("cell_type") == "code"]
    # IPython magics are not Python
    return "\n".join(line for cell in code for line in cell.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


def _package_of(path: Path, root: Path) -> str | None:
    """The package a file belongs to (for relative imports); None outside wdnorm."""
    try:
        name = module_name(path, root)
    except ValueError:
        return None
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_names(path: Path, root: Path = PACKAGE_DIR) -> set[str]:
    """Every ``wdnorm...`` name an import statement of ``path`` can bring in (modules,
    and for ``from X import y`` both X and X.y, whichever turns out to be a module).
    Parsed once per version of the file: the workflow hashes about 20 closures of the
    same 40 modules when it starts, and parsing them each time took seconds."""
    stat = Path(path).stat()
    return set(_parsed_imports(Path(path), Path(root), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=None)
def _parsed_imports(path: Path, root: Path, mtime_ns: int, size: int) -> frozenset[str]:
    names: set[str] = set()
    package = _package_of(path, root)
    for node in ast.walk(ast.parse(_source(path), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return frozenset(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))


def _with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _closure_of_file(path: Path, root: Path) -> frozenset[Path]:
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imported_names(current, root):
            for module in _with_parents(name):
                found = module_file(module, root)
                if found is not None and found not in seen:
                    todo.append(found)
    return frozenset(seen)


def closure(entries: Iterable[str | Path], root: Path = PACKAGE_DIR) -> list[Path]:
    """The wdnorm module files the ``entries`` import, transitively (sorted); an entry
    is a file (script, notebook, module) or a module name (``wdnorm.tasks``). Entry
    files outside the package are not part of the result, only what they import."""
    files: set[Path] = set()
    for entry in entries:
        path = module_file(entry, root) if isinstance(entry, str) and not entry.endswith(
            (".py", ".ipynb")) else Path(entry)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"no module or file {entry!r}")
        found = _closure_of_file(path.resolve(), root.resolve())
        files.update(p for p in found if p.is_relative_to(root.resolve()))
    return sorted(files)


def code_hash(entries: Iterable[str | Path], root: Path = PACKAGE_DIR) -> str:
    """sha256 over the closure's files, each named by its path inside the package, and
    over the entry files outside the package themselves (a script, a notebook), named
    by their file name (so a moved checkout hashes the same)."""
    entries = list(entries)
    digest = hashlib.sha256()
    base = root.resolve()
    for path in closure(entries, root):
        digest.update(path.relative_to(base).as_posix().encode())
        digest.update(path.read_bytes())
    for entry in entries:
        path = Path(entry)
        if path.suffix in (".py", ".ipynb") and not path.resolve().is_relative_to(base):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
