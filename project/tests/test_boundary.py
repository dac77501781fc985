"""The boundary stays stock (STYLE.md 11-12): the project's own code, read as code.

- No module reads, calls or overrides an underscore name of the frameworks (Django, DRF,
  psycopg, kombu, Celery, simplejwt...): such code passes every test today and breaks on a minor
  release or behind the first pooler. Django's documented `_meta` API, `Model._state` and the
  manager's `_db` (used by the docs' own custom-manager example) are public despite the underscore.
- No branch on the database vendor: PostgreSQL is the only database.
- The imports run one way: apis/views -> services/selectors -> models, tasks -> services,
  referrals -> accounts; no import circle; no module imports another app's underscore names.
"""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "referrals", "notifications", "project")
# namedtuple's documented API (_replace, _asdict, _fields) is public as well.
PUBLIC_DESPITE_UNDERSCORE = {"_meta", "_state", "_db", "_replace", "_asdict", "_fields"}


def _sources(*, tests=True):
    for package in (*PACKAGES, "tests", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or (not tests and "tests" in relative.parts):
                continue
            yield relative, ast.parse(path.read_text(), filename=str(relative))
    yield Path("conftest.py"), ast.parse((ROOT / "conftest.py").read_text())


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_names() -> set[str]:
    """Every name the project itself defines: functions, classes, variables, attributes and
    arguments. An underscore name outside this set belongs to someone else."""
    names = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return names


def _module_name(relative: Path) -> str:
    return ".".join(relative.with_suffix("").parts).removesuffix(".__init__")


def test_no_module_reads_or_calls_an_underscore_name_of_another_library():
    ours = _defined_names()
    found = []
    for relative, tree in _sources():
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and _private(node.attr):
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith((*PACKAGES, "tests")):
                name = next((a.name for a in node.names if _private(a.name)), None)
            if name and name not in ours and name not in PUBLIC_DESPITE_UNDERSCORE:
                found.append(f"{relative}:{node.lineno} {name}")
    assert found == []


def test_no_class_overrides_an_underscore_method_of_a_library_class():
    found = []
    for relative, _ in _sources(tests=False):
        if relative.parts[0] == "bench" or relative.name == "conftest.py":
            continue
        module = importlib.import_module(_module_name(relative))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            foreign = [base for base in cls.__mro__[1:] if not base.__module__.startswith(PACKAGES)]
            for name, value in vars(cls).items():
                if not (inspect.isfunction(value) or isinstance(value, classmethod | staticmethod | property)):
                    continue  # what a metaclass or Django sets on the class, not code of ours
                if _private(name) and any(name in vars(base) for base in foreign):
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    assert found == []


def test_nothing_branches_on_the_database_vendor():
    found = [
        f"{relative}:{node.lineno}"
        for relative, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "vendor"
    ]
    assert found == []


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (at the top or inside a function)."""
    graph = {}
    for relative, tree in _sources(tests=False):
        if relative.parts[0] == "bench" or relative.name == "conftest.py":
            continue
        name = _module_name(relative)
        package = name if relative.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                targets.add(base)
                targets |= {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t.split(".")[0] in PACKAGES and t != name}
    modules = set(graph)
    return {name: {t for t in targets if t in modules} for name, targets in graph.items()}


def test_the_project_has_no_import_circle():
    graph = _imports()
    circles = []

    def visit(node, path):
        for target in graph.get(node, ()):
            if target in path:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif len(path) < 12:
                visit(target, [*path, target])

    for start in graph:
        visit(start, [start])
    assert circles == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("accounts", "referrals"),  # referrals builds on accounts, never the other way
        ("notifications", "accounts"),
        ("notifications", "referrals"),
    ],
)
def test_the_apps_import_one_way(importer, imported):
    found = [
        f"{name} imports {target}"
        for name, targets in _imports().items()
        if name.split(".")[0] == importer
        for target in targets
        if target.split(".")[0] == imported
    ]
    assert found == []


def test_services_and_selectors_import_no_door():
    doors = ("apis", "views", "admin", "forms", "tasks")
    found = [
        f"{name} imports {target}"
        for name, targets in _imports().items()
        if name.rsplit(".", 1)[-1] in ("services", "selectors", "models")
        for target in targets
        if target.rsplit(".", 1)[-1] in doors
    ]
    assert found == []


def test_no_module_imports_another_apps_underscore_names():
    found = []
    for relative, tree in _sources(tests=False):
        app = relative.parts[0]
        for node in ast.walk(tree):
            imported_app = node.module.split(".")[0] if isinstance(node, ast.ImportFrom) and node.module else None
            if imported_app in PACKAGES and imported_app != app:
                found += [f"{relative}:{node.lineno} {a.name}" for a in node.names if _private(a.name)]
    assert found == []
