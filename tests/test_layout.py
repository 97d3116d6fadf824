"""The package keeps its shape: imports point one way, and no cycles.

Subpackages are ranked by role (audio -> features -> model -> embedding ->
scores, then the tools around them); a module may import from its own
subpackage and from lower ranks only. Imports inside functions count too:
a lazy import pointing up is still a dependency pointing up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "speechbrain_eres2net"

# Lowest first. Top-level leaf modules (no package imports) sit below all.
# Training sits above evaluation: the verification recipe driver
# (training/verification.py) runs the evaluation pipeline on what training
# wrote, while embedding, scoring and deciding never need training code.
RANKS = {
    "paths": 0,
    "errors": 0,
    "settings": 0,
    "lobes": 1,
    "nnet": 2,
    "dataio": 3,
    "augment": 4,
    "inference": 5,
    "evaluation": 6,
    "training": 7,
    "export": 8,
    "cli": 9,
}

# Directions that must stay closed whatever the ranks become: reading data,
# embedding and scoring run without the training code (SpeechBrain's Brain,
# the recipe's data pipeline), and data reading knows nothing of models.
FORBIDDEN = {
    "dataio": {"inference", "evaluation", "training"},
    "inference": {"evaluation", "training"},
    "evaluation": {"training"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, name: str = "") -> set[str]:
    """Modules of the package that ``path`` imports, anywhere in the file."""
    name = name or module_name(path)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("speechbrain_eres2net"):
                continue
            # "from . import x" / "from .pkg import module" name modules too.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if any(
                    (PACKAGE.parent / candidate.replace(".", "/"))
                    .with_suffix(s)
                    .exists()
                    for s in (".py", "")
                ):
                    found.add(candidate)
                    break
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {
                a.name for a in node.names if a.name.startswith("speechbrain_eres2net")
            }
    return found


def subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {
    module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "hparams" not in p.parts
}


def test_every_subpackage_has_a_rank():
    names = {subpackage(m) for m in MODULES} - {""}
    assert names <= RANKS.keys(), names - RANKS.keys()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.count(".") >= 1))
def test_imports_point_down(module):
    own = subpackage(module)
    for target in package_imports(MODULES[module]):
        other = subpackage(target)
        if other in ("", own):
            continue
        assert RANKS[other] <= RANKS[own], (
            f"{module} ({own}, rank {RANKS[own]}) imports {target} "
            f"({other}, rank {RANKS[other]}): imports must point down"
        )


def test_ranks_close_the_forbidden_directions():
    for low, highs in FORBIDDEN.items():
        for high in highs:
            assert RANKS[high] > RANKS[low], f"{low} may import {high}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.count(".") >= 1))
def test_no_forbidden_import(module):
    own = subpackage(module)
    for target in package_imports(MODULES[module]):
        assert subpackage(target) not in FORBIDDEN.get(own, ()), (
            f"{module} imports {target}: {own} must not depend on {subpackage(target)}"
        )


def test_deciding_two_files_loads_no_training_code(tmp_path):
    """``eres2net verify`` runs, end to end, without importing training/."""
    import subprocess
    import sys

    import numpy as np
    import soundfile
    import torch

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.export.import_3dspeaker import import_3dspeaker
    from speechbrain_eres2net.lobes.eres2net_3dspeaker import to_3dspeaker

    torch.manual_seed(0)
    model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    torch.save(to_3dspeaker(model), tmp_path / "tiny.ckpt")
    folder = import_3dspeaker(tmp_path / "tiny.ckpt", tmp_path / "model")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        soundfile.write(tmp_path / f"{name}.wav", 0.1 * rng.normal(size=16000), 16000)
    script = f"""
import sys
from speechbrain_eres2net.cli.main import main
from speechbrain_eres2net.evaluation import decisions  # noqa: F401
code = main(["verify", "--model", {str(folder)!r}, {str(tmp_path / "a.wav")!r},
             {str(tmp_path / "b.wav")!r}, "--vad", "off", "--threshold", "0.5"])
assert code == 0, code
loaded = sorted(m for m in sys.modules if m.startswith("speechbrain_eres2net.training"))
assert not loaded, loaded
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cosine threshold" in proc.stdout


# A module a newcomer can hold: one job per module, read in one sitting.
MAX_MODULE_LINES = 600


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_600_lines(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{module} has {lines} lines, more than {MAX_MODULE_LINES}: split it into "
        "modules named for their jobs"
    )


def test_lobes_import_nothing_above_them():
    for module, path in MODULES.items():
        if subpackage(module) == "lobes":
            others = {subpackage(t) for t in package_imports(path)} - {"lobes"}
            assert not others, f"{module} imports {others}"


def test_no_import_cycles():
    graph = {
        m: {t for t in package_imports(p) if t in MODULES} for m, p in MODULES.items()
    }
    # The package __init__ re-exports; edges into it are not dependencies.
    graph = {m: targets - {"speechbrain_eres2net"} for m, targets in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_checker_sees_an_upward_import(tmp_path):
    """The checker itself: a lazy import from a lobe into training is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..training import brain\n")
    found = package_imports(probe, "speechbrain_eres2net.lobes.probe")
    assert found == {"speechbrain_eres2net.training.brain"}
    assert RANKS[subpackage(next(iter(found)))] > RANKS["lobes"]
