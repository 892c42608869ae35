"""The benchmarks in a fresh interpreter, as the lent GPU machine runs them, for the tests.

Owns the emulation of the GPU machine's image ('cuda', ``/work/.library/device/KINDS.md``):
`image_site` links into one folder the installed distributions that
``benchmarks/device_packages.txt`` lists (the image) plus those ``benchmarks/device_wheels.txt``
names (the wheels ``gpu_wheels.sh`` carries and ``run_gpu.sh`` installs there), so that an
interpreter started without its own site-packages (``python -S``) imports only those, with their
metadata, and fireact from ``src/`` as ``run_gpu.sh`` sets ``PYTHONPATH``. Also the GPU
benchmarks' import path (`gpu_import_path`: every import written in the benchmark modules
``run_gpu.sh`` runs, at module level or in a function, plus the third-party imports that the
fireact modules they load make in functions), its check (`check_gpu_imports`: import it all in
the emulated image, name each missing module and its distribution) and `run_module`
(``python -m benchmarks.<name>``, in the emulated image or with some modules made unimportable).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from benchmarks.common import package_lines

REPO = Path(__file__).resolve().parents[2]
DEVICE_PACKAGES = REPO / "benchmarks" / "device_packages.txt"
DEVICE_WHEELS = REPO / "benchmarks" / "device_wheels.txt"
GPU_BENCHMARKS = ("benchmarks.inference_bench", "benchmarks.train_bench")  # what run_gpu.sh runs
LOCAL = ("benchmarks", "fireact", "tests")  # this checkout's packages (fireact: src/ on the path)

# Third-party modules that fireact's modules on the GPU path import in a function (or probe by
# name) and that are deliberately absent from the GPU machine, with the reason. Any other such
# import must be on the image or carried (`check_gpu_imports` imports it there).
NOT_ON_DEVICE = {
    "flash_attn": "no flash-attn wheel for the image's torch: speed.attention_mode probes it and "
    "uses SDPA",
    "bitsandbytes": "8-bit / 4-bit base loading (load_in_8bit): no GPU benchmark loads so",
}
# Distributions that this virtualenv's NEWER versions of the image's packages need and the image's
# own versions do not (huggingface-hub 2 moved from httpx to httpx2): linked into the emulated
# image too, each with the distribution that requires it here (`test_version_skew_is_real`).
VERSION_SKEW = {"httpx2": "huggingface-hub", "httpcore2": "httpx2", "truststore": "httpx2"}


def normalise(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_list(path: Path) -> dict[str, str | None]:
    """``{normalised name: pinned version or None}`` of a package list: ``NAME[==VERSION]`` a
    line, ``#`` comments."""
    names: dict[str, str | None] = {}
    for line in package_lines(path):
        name, _, version = line.partition("==")
        names[normalise(name)] = version.strip() or None
    return names


def image() -> set[str]:
    """The GPU image's distributions (``benchmarks/device_packages.txt``), with `VERSION_SKEW`."""
    return set(read_list(DEVICE_PACKAGES)) | set(VERSION_SKEW)


def carried() -> frozenset[str]:
    """The distributions ``gpu_wheels.sh`` carries (``benchmarks/device_wheels.txt``)."""
    return frozenset(read_list(DEVICE_WHEELS))


@cache
def installed() -> dict[str, metadata.Distribution]:
    """This interpreter's distributions by normalised name (fireact itself left out: the GPU
    machine imports it from ``src/``)."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        found.setdefault(normalise(dist.metadata["Name"]), dist)
    found.pop("fireact", None)
    return found


@cache
def _owners() -> dict[str, tuple[str, ...]]:
    return {
        top: tuple(sorted({normalise(d) for d in dists}))
        for top, dists in metadata.packages_distributions().items()
    }


def distribution_of(module: str) -> str:
    """The distribution that provides `module` here (for one not installed here, its top-level
    name as a distribution name: ``liger_kernel`` -> ``liger-kernel``)."""
    top = module.split(".")[0]
    return (_owners().get(top) or (normalise(top),))[0]


def image_site(dest: Path, carry: Iterable[str] | None = None) -> Path:
    """Fill `dest` with links to the files of the installed distributions the GPU image holds
    plus the `carry` ones (default: ``device_wheels.txt``); return `dest`. A top-level folder that
    several distributions share (``__pycache__``) is made real and linked one level down."""
    allowed = image() | set(carried() if carry is None else carry)
    entries = [
        (name, dist, path.parts)
        for name, dist in installed().items()
        for path in dist.files or ()
        if path.parts and path.parts[0] != ".."
    ]
    dest.mkdir(parents=True, exist_ok=True)
    _place(dest, entries, allowed, 0)
    return dest


def _place(dest: Path, entries: list, allowed: set[str], depth: int) -> None:
    groups: dict[str, list] = {}
    for entry in entries:
        if len(entry[2]) > depth:
            groups.setdefault(entry[2][depth], []).append(entry)
    for part, group in groups.items():
        owners = {name for name, _, _ in group}
        if not owners & allowed:
            continue
        _, dist, parts = next(entry for entry in group if entry[0] in allowed)
        if owners <= allowed or any(len(p) == depth + 1 for _, _, p in group):
            (dest / part).symlink_to(Path(dist.locate_file(Path(*parts[: depth + 1]))))
        else:
            (dest / part).mkdir()
            _place(dest / part, group, allowed, depth + 1)


# ------------------------------------------------------------------- the import path, read


@dataclass
class ImportPath:
    """What the GPU benchmarks import: ``{module: names imported from it}`` in import order, the
    fireact modules that importing them loads, and those modules' third-party imports made in a
    function (``{module: [fireact module, ...]}``)."""

    imports: dict[str, list[str]] = field(default_factory=dict)
    fireact: list[str] = field(default_factory=list)
    lazy: dict[str, list[str]] = field(default_factory=dict)


def _source(module: str) -> Path | None:
    parts = module.split(".")
    for root in (REPO, REPO / "src"):
        base = root.joinpath(*parts)
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return path
    return None


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test or ast.Pass())


def _imports(module: str, eager_only: bool) -> Iterator[tuple[str, list[str], bool]]:
    """``(imported module, names, in a function)`` of `module`'s source, ``if TYPE_CHECKING``
    blocks left out; names given to ``import_module`` / ``find_spec`` count as imports."""
    path = _source(module)
    if path is None:
        return
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, lazy: bool) -> Iterator[tuple[str, list[str], bool]]:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if inner and eager_only:
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name, [], inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                yield base, [alias.name for alias in child.names], inner
            elif isinstance(child, ast.Call) and _literal_import(child):
                yield child.args[0].value, [], True  # type: ignore[attr-defined]
            yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), False)


def _literal_import(call: ast.Call) -> bool:
    name = getattr(call.func, "attr", getattr(call.func, "id", None))
    return (
        name in ("import_module", "find_spec")
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return bool(top) and top not in LOCAL and top not in sys.stdlib_module_names


def gpu_import_path(benchmarks: Iterable[str] = GPU_BENCHMARKS) -> ImportPath:
    """Read the import path from the sources: every import in the benchmark modules reached from
    `benchmarks` (following ``benchmarks.*``), the fireact modules those load at import time
    (following module-level imports), and the third-party imports those make in a function."""
    found = ImportPath()
    todo, seen = list(benchmarks), set()
    while todo:  # the benchmark package: everything, eager or in a function
        module = todo.pop(0)
        if module in seen:
            continue
        seen.add(module)
        found.imports.setdefault(module, [])
        for name, names, _ in _imports(module, eager_only=False):
            found.imports.setdefault(name, [])
            found.imports[name] += [n for n in names if n not in found.imports[name]]
            if name.split(".")[0] == "benchmarks":
                todo += [name] + [f"{name}.{n}" for n in names if _source(f"{name}.{n}")]
    todo = [m for m in found.imports if m.split(".")[0] == "fireact"]
    loaded: set[str] = set()
    while todo:  # fireact: what importing those loads (each package's __init__ too)
        module = todo.pop(0)
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name not in loaded and _source(name):
                loaded.add(name)
                todo += [
                    m for m, _, _ in _imports(name, eager_only=True) if m.startswith("fireact")
                ]
                todo += [f"{m}.{n}" for m, ns, _ in _imports(name, True) for n in ns
                         if m.startswith("fireact") and _source(f"{m}.{n}")]  # fmt: skip
    found.fireact = sorted(loaded)
    for module in found.fireact:
        for name, _, lazy in _imports(module, eager_only=False):
            if lazy and _third_party(name) and module not in found.lazy.get(name, []):
                found.lazy.setdefault(name, []).append(module)
    return found


# ------------------------------------------------------------------- the import path, imported

_SETUP = """
import site, sys
site.addsitedir({site!r})  # the image's site-packages with the carried wheels (.pth files run)
sys.path.insert(1, {src!r})  # PYTHONPATH=src, as run_gpu.sh sets it
"""
_IMPORT = """
import importlib, json
failed = {{}}
for module, names in {imports!r}:
    try:
        loaded = importlib.import_module(module)
        for name in names:  # `from module import name`: an attribute, or else a submodule
            if not hasattr(loaded, name):
                importlib.import_module(f"{{module}}.{{name}}")
    except Exception as err:
        text = str(err).splitlines()
        failed[module] = [type(err).__name__, getattr(err, "name", None), text[0] if text else ""]
print(json.dumps(failed))
"""


def _lists() -> str:
    return (
        f"the GPU image ({DEVICE_PACKAGES.relative_to(REPO)}) nor carried "
        f"({DEVICE_WHEELS.relative_to(REPO)})"
    )


def lazy_problems(path: ImportPath, allowed: set[str]) -> tuple[list[str], list[str]]:
    """The lazy imports of `path` (third-party, in a function of a fireact module it loads): one
    line for each whose distribution is not `allowed` and not excused in `NOT_ON_DEVICE`, and the
    modules of those that are allowed (to be imported by the check)."""
    problems, importable = [], []
    for module, users in path.lazy.items():
        dist = distribution_of(module)
        if dist in allowed:
            importable.append(module)
        elif module.split(".")[0] not in NOT_ON_DEVICE:
            problems.append(
                f"{module} ({dist}), imported in a function by {', '.join(users)}: neither on "
                f"{_lists()}; carry it, or say in NOT_ON_DEVICE why the GPU runs do without it"
            )
    return problems, importable


@dataclass
class ImportCheck:
    """`check_gpu_imports`' answer: one line per problem, each naming the module and its
    distribution; the modules of carried (or image) distributions not installed here, which this
    machine cannot import (``{module: distribution}``); how many modules were imported."""

    problems: list[str]
    unverified: dict[str, str]
    imported: int


def check_gpu_imports(carry: Iterable[str] | None = None, timeout: float = 300) -> ImportCheck:
    """Import the GPU benchmarks' import path (`gpu_import_path`) in a fresh interpreter that
    sees only the GPU image's distributions, the `carry` ones (default: ``device_wheels.txt``)
    and this checkout."""
    carry = set(carried() if carry is None else carry)
    allowed = image() | carry
    path = gpu_import_path()
    problems, lazy = lazy_problems(path, allowed)
    imports = path.imports | {module: [] for module in lazy if module not in path.imports}
    with tempfile.TemporaryDirectory(prefix="fireact-gpu-image-") as tmp:
        site = image_site(Path(tmp) / "site", carry)
        code = _SETUP.format(site=str(site), src=str(REPO / "src"))
        done = _run(code + _IMPORT.format(imports=list(imports.items())), timeout, image=True)
    if done.returncode != 0:
        raise RuntimeError(f"the import check itself failed:\n{done.stderr[-3000:]}")
    unverified: dict[str, str] = {}
    for module, (kind, missing, message) in json.loads(done.stdout.splitlines()[-1]).items():
        dist = distribution_of(missing or module)
        if (
            kind == "ModuleNotFoundError"
            and missing
            and dist in allowed
            and dist not in installed()
        ):
            unverified[module] = dist
        elif kind == "ModuleNotFoundError" and missing and dist not in allowed:
            problems.append(f"{module}: needs {missing} ({dist}), neither on {_lists()}")
        else:
            problems.append(f"{module}: {kind}: {message}")
    return ImportCheck(problems, unverified, len(imports))


# ------------------------------------------------------------------- running a benchmark

_RUN = """
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError
sys.argv = [{module!r}, *{argv!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


def image_lacks() -> tuple[str, ...]:
    """The top-level modules of the distributions installed here that the GPU image does not
    hold (the image as it arrives: the carried wheels' modules included)."""
    keep = image() | {"fireact"}
    return tuple(
        sorted(
            top
            for top, owners in _owners().items()
            if top.isidentifier() and not keep & set(owners)
        )
    )


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "GPU_IMAGE_LACKS":  # computed on first use: reads every installed RECORD
        return image_lacks()
    raise AttributeError(name)


def run_module(
    name: str,
    argv: list[str],
    *,
    blocked: Iterable[str] = (),
    carry: Iterable[str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.<name> ARGV`` from the repository root, stdout and stderr captured:
    with the `blocked` modules unimportable, or, given `carry`, in the emulated GPU image with
    those carried distributions (``()``: the image as it arrives)."""
    code = _RUN.format(blocked=tuple(blocked), module=f"benchmarks.{name}", argv=argv)
    if carry is None:
        return _run(code, timeout)
    with tempfile.TemporaryDirectory(prefix="fireact-gpu-image-") as tmp:
        site = image_site(Path(tmp) / "site", carry)
        return _run(_SETUP.format(site=str(site), src=str(REPO / "src")) + code, timeout, True)


def _run(code: str, timeout: float, image: bool = False) -> subprocess.CompletedProcess[str]:
    flags = ["-S", "-E"] if image else []  # no site-packages of ours; PYTHON* variables ignored
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
