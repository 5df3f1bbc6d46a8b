"""A terminal protocol is named only by its own driver package, its virtual terminal and the
registry (``posbench.drivers.registry``): everything else finds it there by name, so adding a
protocol needs no edit anywhere else.

Scanned: the installed package's sources (bench/, drivers/, fixtures/, tests/hil/). Not scanned,
on purpose: posbench's own tests (tests/unit, tests/e2e exercise each protocol by name) and the
docs (they describe them)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from posbench.drivers import registry

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bench", "drivers", "fixtures", "tests/hil")


def _owners() -> dict[Path, set[str]]:
    """Source file or package directory -> the protocol names it may use (its own)."""
    owners: dict[Path, set[str]] = {ROOT / "drivers" / "registry.py": set(registry.sim_names())}
    for name, entry in registry.ECR_PROTOCOLS.items():
        own = {name, *entry.variants}
        owners[ROOT / "drivers" / "ecr" / entry.package] = own
        where = ROOT / "bench" / "sim" / entry.virtual.replace(".", "/")
        owners[where.with_suffix(".py")] = own
        owners[where] = own  # a virtual terminal grown into a package
    return owners


def _allowed(path: Path, owners: dict[Path, set[str]]) -> set[str]:
    return next((own for where, own in owners.items() if path == where or where in path.parents), set())


def protocol_names(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each protocol name in ``path``: a string literal equal to one, or an
    import of a protocol's driver package."""
    names = set(registry.sim_names())
    packages = {f"posbench.drivers.ecr.{e.package}": name for name, e in registry.ECR_PROTOCOLS.items()}
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append((node.lineno, f'"{node.value}"'))
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        for module in modules:
            for package, name in packages.items():
                if module == package or module.startswith(package + "."):
                    found.append((node.lineno, f"import {module} ({name})"))
    return found


def places() -> list[str]:
    owners = _owners()
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            allowed = _allowed(path, owners)
            for line, what in protocol_names(path):
                name = what.strip('"') if what.startswith('"') else what.rsplit("(", 1)[1].rstrip(")")
                if name not in allowed:
                    out.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    return out


def test_only_a_protocols_package_its_virtual_terminal_and_the_registry_name_it():
    found = places()
    assert not found, "protocol names outside their packages (use posbench.drivers.registry):\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ('x = "zvt"\n', [(1, '"zvt"')]),
    ("from posbench.drivers.ecr.concert.link import probe\n", [(1, "import posbench.drivers.ecr.concert.link (concert)")]),
    ('x = "zvt protocol"\nfrom posbench.drivers import registry\n', []),
])
def test_the_scan_sees_literals_and_imports(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert protocol_names(path) == expected


def test_a_package_names_only_its_own_protocol():
    owners = _owners()
    assert _allowed(ROOT / "drivers" / "ecr" / "zvt" / "probe.py", owners) == {"zvt", "zvt-tcp"}
    assert _allowed(ROOT / "bench" / "sim" / "ecr" / "concert.py", owners) == {"concert"}
    assert _allowed(ROOT / "bench" / "sim" / "ecr" / "zvt" / "wire.py", owners) == {"zvt", "zvt-tcp"}
    assert _allowed(ROOT / "bench" / "diagnosis" / "rules.py", owners) == set()
