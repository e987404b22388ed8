"""The paper benchmark (benchmarks/paper.py) on a tiny slice: runs, tables, figures, report, resuming."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from aseqdip.errors import UserInputError
from aseqdip.methods import VanillaDIP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ lives beside src/, outside the package
from benchmarks.paper import main  # noqa: E402


def _mtimes(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.glob("runs/*/*/metrics.json")}


def test_tiny_slice_writes_tables_figures_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    assert main(["--profile", "tiny", "--out", str(out), "--only", "table2", "--tasks", "denoise", "--threads", "1"]) == 0
    runs = sorted(out.glob("runs/table2/*/metrics.json"))
    assert len(runs) == 6  # sigma 15 and 30 x aseqdip, dip, selfguided, one image
    m = json.loads(runs[0].read_text())
    assert m["task"] == "denoise" and m["iterations"] == 20 and m["size"] == 32
    rows = json.loads((out / "tables/table2.json").read_text())["rows"]
    by = {(r["setting"], r["method"]): r for r in rows}
    assert by[("sigma 15", "aseqdip")]["paper"]["psnr"] == 31.51  # the paper's number beside ours
    assert by[("sigma 30", "noisy input y")]["psnr"]["n"] == 1
    assert by[("sigma 15", "dip")]["psnr"]["mean"] == pytest.approx(
        json.loads((out / "runs/table2/denoise-sigma15-dip-astronaut-s0/metrics.json").read_text())["psnr"])
    table = (out / "tables/table2.md").read_text()
    assert "oracle: best PSNR along the run" in table and "| denoise | sigma 30 | selfguided | 1 |" in table
    assert (out / "figures/table2_psnr.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "NOT the paper's settings" in report and "skimage:astronaut" in report and "CBSD68" in report

    # Figure 1: DIP fed the truth plus noise, through the CLI's builders
    assert main(["--profile", "tiny", "--out", str(out), "--only", "fig1", "--tasks", "mri", "--threads", "1"]) == 0
    fig1 = json.loads((out / "tables/fig1.json").read_text())["rows"]
    assert {(r["input"], r["sigma"]) for r in fig1} == {("truth", 0.1), ("truth", 1.0), ("zero", 0.1), ("zero", 1.0)}
    m = json.loads(next(out.glob("runs/fig1/*sigma0.1*/metrics.json")).read_text())
    assert m["hyperparameters"]["input"].startswith("given") and m["input_sigma"] == 0.1
    assert (out / "figures/fig1.png").exists()

    # a rerun skips every finished run
    before = _mtimes(out)
    capsys.readouterr()
    assert main(["--profile", "tiny", "--out", str(out), "--only", "table2", "--tasks", "denoise", "--threads", "1"]) == 0
    assert "ran 0, skipped 6 finished" in capsys.readouterr().out
    assert _mtimes(out) == before

    # another profile into the same folder is refused rather than mixed in
    assert main(["--profile", "quick", "--out", str(out), "--only", "table2", "--tasks", "denoise"]) == 2
    assert "another profile" in capsys.readouterr().err


def test_dip_takes_a_given_input() -> None:
    given = torch.full((1, 3, 8, 8), 0.25)
    x0 = torch.zeros(1, 3, 8, 8)
    z = VanillaDIP(input=given).initial_input(x0, None, x0, torch.Generator().manual_seed(0))
    assert torch.equal(z, given)
    with pytest.raises(UserInputError, match="shape"):
        VanillaDIP(input=torch.zeros(1, 1, 8, 8)).initial_input(x0, None, x0, torch.Generator())


def test_bad_task_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "tiny", "--out", str(tmp_path), "--tasks", "xray"]) == 2
    assert "unknown xray" in capsys.readouterr().err
