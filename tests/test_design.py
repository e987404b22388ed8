"""The design the code keeps: no import cycle, each decision made once, a library that speaks Python."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import torch

import aseqdip
from aseqdip import rules
from aseqdip.methods import VanillaDIP
from aseqdip.nets import UNet
from aseqdip.physics import noise_level as noise_module
from aseqdip.tasks import Denoise, Inpaint

PACKAGE = Path(aseqdip.__file__).parent


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's strongly connected components of the package's import graph (imports inside functions count)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.add(other)
                if other == module:
                    break
            found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_the_package_imports_itself_back():
    graph = grimp.build_graph("aseqdip")
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_the_tarjan_walk_finds_a_cycle_where_there_is_one():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.b", imported="p.c")
    assert sorted(map(sorted, (c for c in _strongly_connected(graph) if len(c) > 1))) == [["p.a", "p.b"]]


def _raised_messages(path: Path) -> list[str]:
    """The text of every string literal inside a ``raise`` statement of a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise):
            out += [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return out


def test_the_rules_speak_python_not_command_line_flags():
    """The rules, the run's plan and auto raise errors naming parameters (OutputRule.sigma), never flags;
    the command maps them to its flags in one table."""
    from aseqdip.cli import in_command_terms

    for name in ("rules.py", "plan.py", "auto.py", "outputrule.py"):
        flags = [m for m in _raised_messages(PACKAGE / name) if re.search(r"--[a-z]", m)]
        assert not flags, f"{name} names command-line flags in its errors: {flags}"
    said = in_command_terms("OutputRule(stop='discrepancy') needs the noise level: give OutputRule.sigma or use "
                            "OutputRule.noise='estimate'")
    assert said == "--stop discrepancy needs the noise level: give --sure-sigma (0-255 scale) or use --sigma-from estimate"


def test_a_python_user_is_told_about_parameters_and_a_command_user_about_flags(tmp_path, capsys):
    import pytest

    from aseqdip.cli import main
    from aseqdip.errors import UserInputError

    problem = Denoise(sigma=25).simulate(torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(UserInputError, match=r"OutputRule\.tau must be positive"):
        rules.reconstruct(VanillaDIP(iterations=2), problem.y, problem.physics, rules.OutputRule(stop="discrepancy",
                                                                                                tau=-1.0))
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--iterations", "2",
                 "--stop", "discrepancy", "--tau", "-1", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--tau must be positive" in err and "OutputRule" not in err


def _small(in_channels: int, out_channels: int, generator: torch.Generator | None = None) -> torch.nn.Module:
    return UNet(in_channels, out_channels, (8, 16), generator=generator)


def test_auto_computes_the_noise_level_once_per_run(monkeypatch):
    """The plan resolves auto and the noise level once; the rules reuse it (it used to be estimated twice)."""
    calls = []
    estimate = noise_module.estimate_noise

    def counted(*args, **kwargs):
        calls.append(1)
        return estimate(*args, **kwargs)

    monkeypatch.setattr(noise_module, "estimate_noise", counted)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for task in (Denoise(sigma=25), Inpaint(hiar=0.1)):
        calls.clear()
        problem = task.simulate(x, seed=0)
        method = VanillaDIP(iterations=3, network=_small, precision="fp32", device="cpu")
        result = rules.reconstruct(method, problem.y, problem.physics)
        assert result.info["noise"]["source"] == "estimate" and result.rule.startswith("discrepancy")
        assert len(calls) == 1, f"{task.name}: the noise level was estimated {len(calls)} times"


def test_below_the_command_line_options_are_python_values():
    """Only the command parses flags; the pipeline, volumes, batch, rules and tasks take plain values
    (aseqdip.options.RunOptions, keyword arguments), never the parsed command line."""
    graph = grimp.build_graph("aseqdip", include_external_packages=True, exclude_type_checking_imports=True)
    parsing = set(graph.find_modules_that_directly_import("argparse"))
    # the command, and aSeqDIP's parser of --hole-fill's text (a number or a name), declared with its option
    assert parsing <= {"aseqdip.cli", "aseqdip.methods.aseqdip"}, parsing
    for path in [PACKAGE / "pipeline.py", *sorted((PACKAGE / "volume").glob("*.py")), *sorted((PACKAGE / "batch").glob("*.py"))]:
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        assert "args" not in names and "Namespace" not in path.read_text(), f"{path.name} reads a parsed command line"


def test_a_python_user_runs_what_the_command_runs(tmp_path):
    """RunOptions built in Python and the same run from the command line: the same image and fingerprint."""
    import json

    import numpy as np

    from aseqdip.cli import main
    from aseqdip.fingerprint import first_difference
    from aseqdip.options import RunOptions, StopOptions
    from aseqdip.pipeline import execute

    common = ["--task", "inpaint", "--image", "skimage:camera", "--size", "32", "--iterations", "4", "--hiar", "0.1",
              "--lam", "0.5", "--stop", "none", "--observe", "residual", "--precision", "fp32", "--device", "cpu",
              "--no-progress"]
    assert main(["run", *common, "--out", str(tmp_path / "cli")]) == 0
    python = execute(RunOptions(task="inpaint", out=str(tmp_path / "py"), image="skimage:camera", size=32, iterations=4,
                                precision="fp32", device="cpu", progress=False, task_options={"hiar": 0.1},
                                method_options={"lam": 0.5}, stopping=StopOptions(stop="none", observe=("residual",))))
    command = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert python["hyperparameters"]["lam"] == 0.5 and python["task_settings"]["hiar"] == 0.1
    assert first_difference(python["fingerprint"], command["fingerprint"]) is None  # options not given: None or absent
    assert np.array_equal(np.load(tmp_path / "py" / "recon.npy"), np.load(tmp_path / "cli" / "recon.npy"))
