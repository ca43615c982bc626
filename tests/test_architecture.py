"""The architecture, enforced: the pure modules import without DOLFINx, PETSc, MPI, UFL or
Basix, ``import cait_fem`` loads none of them, no module imports a higher layer, and no
private name (``_x``) is imported from another module: fast tier, no DOLFINx. With DOLFINx:
every module imports on its own in a fresh interpreter."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.blocker import BLOCKED, ENV_VAR
from support.paths import ROOT, TESTS

PACKAGE = ROOT / "cait_fem"

# The layers, lowest first: a module may import its own layer and the layers below it.
# docs/architecture.md shows the same table; change both together.
LAYERS = [
    ("base", ["cait_fem.errors", "cait_fem.fileio"]),
    ("physics", ["cait_fem.physics"]),
    ("case", ["cait_fem.case"]),
    ("analysis", ["cait_fem.analysis"]),
    ("output", ["cait_fem.output"]),
    ("mesh", ["cait_fem.mesh"]),
    ("fem", ["cait_fem.fem"]),
    ("solver", ["cait_fem.solver"]),
    ("post", ["cait_fem.post"]),
    ("run", ["cait_fem.run"]),
    ("fit", ["cait_fem.fit"]),
    ("interface", ["cait_fem.cli", "cait_fem.interrupts", "cait_fem"]),  # "cait_fem": the package's __init__ only
]

# Importable without DOLFINx and its stack: whole subpackages, and single modules of the
# others (docs/architecture.md).
PURE_PACKAGES = ["cait_fem.physics", "cait_fem.case", "cait_fem.analysis", "cait_fem.output"]
PURE_MODULES = [
    "cait_fem", "cait_fem.errors", "cait_fem.fileio", "cait_fem.cli", "cait_fem.interrupts",
    "cait_fem.fit", "cait_fem.fit.config", "cait_fem.fit.experiments", "cait_fem.fit.validation",
    "cait_fem.fit.parameters", "cait_fem.fit.problem",
    "cait_fem.fit.result", "cait_fem.fit.plots", "cait_fem.fit.arrhenius",
    "cait_fem.fem.scales", "cait_fem.fem.boundary_values", "cait_fem.solver.bdf", "cait_fem.solver.columns",
    "cait_fem.solver.stepsize",
    "cait_fem.mesh.tags", "cait_fem.mesh.depth_grading", "cait_fem.mesh.lateral_grading",
    "cait_fem.run.progress", "cait_fem.run.record", "cait_fem.run.callbacks",
]


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted name of a source file under ``root`` (a package's __init__ is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules():
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py"))


def pure_modules():
    found = list(PURE_MODULES)
    for package in PURE_PACKAGES:
        directory = ROOT / package.replace(".", "/")
        found += [package] + sorted(module_name(p) for p in directory.glob("*.py") if p.name != "__init__.py")
    return found


def layer_of(module: str):
    """Index into LAYERS of a cait_fem module, by its longest matching prefix; None if no
    layer claims it (``cait_fem`` itself claims only the package's __init__)."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "cait_fem" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def _is_module(dotted: str, root: Path) -> bool:
    path = root / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, module: str, is_package: bool, root: Path = ROOT):
    """Every cait_fem import in ``source`` (module level and inside functions), in line order,
    as (line, imported module, imported name or None, local name bound to a module object or
    None). Relative imports are resolved; ``from pkg import name`` is an import of module
    ``pkg.name`` when that is a module."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None, a.asname) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            for a in node.names:
                if _is_module(f"{base}.{a.name}", root):
                    found.append((node.lineno, f"{base}.{a.name}", None, a.asname or a.name))
                else:
                    found.append((node.lineno, base, a.name, None))
    return sorted(f for f in found if f[1] == "cait_fem" or f[1].startswith("cait_fem."))


def _private(name) -> bool:
    return bool(name) and name.startswith("_") and not name.startswith("__")


def layer_violations(source: str, module: str, path: str, is_package: bool = False, root: Path = ROOT):
    """Messages for each import of a higher layer (or of a module no layer claims)."""
    mine = layer_of(module)
    if mine is None:
        return [f"{path}: module {module} belongs to no layer of LAYERS"]
    out = []
    for line, imported, _, _ in imports_of(source, module, is_package, root):
        theirs = layer_of(imported)
        if theirs is None:
            out.append(f"{path}:{line}: imports {imported}, which belongs to no layer of LAYERS")
        elif theirs > mine:
            out.append(f"{path}:{line}: imports {imported}: layer '{LAYERS[mine][0]}' must not import the "
                       f"higher layer '{LAYERS[theirs][0]}' (order: {' < '.join(n for n, _ in LAYERS)})")
    return out


def private_violations(source: str, module: str, path: str, is_package: bool = False, root: Path = ROOT):
    """Messages for each private name taken from another module: ``from m import _x``, or
    ``m._x`` on a module bound by an import."""
    out, bound = [], {}
    for line, imported, name, local in imports_of(source, module, is_package, root):
        if _private(name) and imported != module:
            out.append((line, f"{path}:{line}: imports the private name {imported}.{name}: private names stay "
                              "in their module (make it public or move it)"))
        if local is not None and imported != module:
            bound[local] = imported
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and _private(node.attr)):
            out.append((node.lineno, f"{path}:{node.lineno}: uses the private name {bound[node.value.id]}."
                                     f"{node.attr}: private names stay in their module (make it public or "
                                     "move it)"))
    return [message for _, message in sorted(out)]


def _check_package(checker):
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        out += checker(path.read_text(), module_name(path), str(path.relative_to(ROOT)),
                       is_package=path.name == "__init__.py")
    return out


# -- purity ----------------------------------------------------------------------------------

PURITY_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    sys.path[:0] = [{tests!r}, {root!r}]
    from support import blocker
    blocker.install()
    failed = {{}}
    for name in {modules!r}:
        try:
            importlib.import_module(name)
        except Exception as error:  # the module and why: every failure at once
            failed[name] = f"{{type(error).__name__}}: {{error}}"
    print(json.dumps(failed))
""")


def test_every_module_has_a_layer():
    assert [m for m in all_modules() if layer_of(m) is None] == []


def test_pure_modules_import_with_dolfinx_blocked():
    modules = pure_modules()
    assert "cait_fem.physics.ops" in modules and "cait_fem.output.result" in modules  # packages enumerated
    script = PURITY_SCRIPT.format(tests=str(TESTS), root=str(ROOT), modules=modules)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failed == {}, "pure modules that need DOLFINx/PETSc/MPI/UFL/Basix:\n" + "\n".join(
        f"{name}: {why}" for name, why in failed.items())


def test_import_cait_fem_loads_none_of_the_stack():
    """Not blocked (also under make test-fast): what ``import cait_fem`` really loads, where
    DOLFINx is installed."""
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import cait_fem; "
              f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r}))")
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_purity_check_can_fail(tmp_path):
    """The same script on a module that imports ufl at the top must report it."""
    (tmp_path / "impure_pkg").mkdir()
    (tmp_path / "impure_pkg" / "__init__.py").write_text("import ufl\n")
    script = PURITY_SCRIPT.format(tests=str(TESTS), root=str(tmp_path), modules=["impure_pkg"])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ufl is blocked" in json.loads(proc.stdout.strip().splitlines()[-1])["impure_pkg"]


# -- import directions ---------------------------------------------------------------------

def test_no_module_imports_a_higher_layer():
    violations = _check_package(layer_violations)
    assert violations == [], "\n".join(violations)


def _fake_tree(tmp_path):
    """A cait_fem look-alike with the modules the synthetic snippets import."""
    for module in ("cait_fem/__init__", "cait_fem/errors", "cait_fem/physics/__init__", "cait_fem/physics/sed",
                   "cait_fem/run/__init__", "cait_fem/run/simulation", "cait_fem/output/__init__",
                   "cait_fem/output/plots", "cait_fem/fem/__init__", "cait_fem/fem/forms"):
        path = tmp_path / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return tmp_path


def test_layer_checker_finds_upward_imports_anywhere(tmp_path):
    root = _fake_tree(tmp_path)
    source = textwrap.dedent("""
        import numpy as np
        from cait_fem.physics import sed            # same layer: allowed
        from .. import errors                        # base: allowed

        def solve():
            from cait_fem.run.simulation import Simulation   # physics -> run: not allowed
            return Simulation

        class Law:
            def forms(self):
                from ..fem import forms              # physics -> fem: not allowed
                import cait_fem                      # the interface layer: not allowed
                return forms
    """)
    found = layer_violations(source, "cait_fem.physics.diffusion", "cait_fem/physics/diffusion.py", root=root)
    assert len(found) == 3, found
    assert found[0].startswith("cait_fem/physics/diffusion.py:7: imports cait_fem.run.simulation: layer "
                               "'physics' must not import the higher layer 'run'")
    assert "diffusion.py:12: imports cait_fem.fem.forms" in found[1] and "'fem'" in found[1]
    assert "diffusion.py:13: imports cait_fem:" in found[2] and "'interface'" in found[2]
    # a downward import is fine, and an unknown subpackage is reported rather than waved through
    assert layer_violations("from cait_fem.physics import sed\n", "cait_fem.run.x", "x.py", root=root) == []
    assert "no layer" in layer_violations("", "cait_fem.extras.y", "y.py", root=root)[0]


def test_private_checker_finds_imported_private_names(tmp_path):
    root = _fake_tree(tmp_path)
    source = textwrap.dedent("""
        from cait_fem.output.plots import _save, plot_profiles
        from cait_fem.output import plots
        import cait_fem.physics.sed as sed_module

        def f(self):
            self._own = 1                            # attributes of objects: not imports
            return plots._CMAPS, sed_module.__doc__, sed_module.public
    """)
    found = private_violations(source, "cait_fem.post.fields", "cait_fem/post/fields.py", root=root)
    assert len(found) == 2, found
    assert found[0].startswith("cait_fem/post/fields.py:2: imports the private name cait_fem.output.plots._save")
    assert found[1].startswith("cait_fem/post/fields.py:8: uses the private name cait_fem.output.plots._CMAPS")


def test_no_private_name_is_imported_across_modules():
    violations = _check_package(private_violations)
    assert violations == [], "\n".join(violations)


@pytest.mark.dolfinx
def test_every_module_imports_on_its_own():
    """Each module, imported first in a fresh interpreter, brings what it needs in the
    right order (mpi4py before DOLFINx/PETSc: the wheel's MPI library is loaded by
    mpi4py); a module that relies on another having loaded MPI first fails here."""
    from concurrent.futures import ThreadPoolExecutor

    def import_alone(name):
        done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
        return None if done.returncode == 0 else f"{name}: {done.stderr.strip().splitlines()[-1]}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(import_alone, all_modules()) if f is not None]
    assert failures == [], "\n".join(failures)
