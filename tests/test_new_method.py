"""A method added in one file: declared and registered in a module of its own, run through ``aseqdip run``
with its own option, and no other file of the package touched."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import torch

from aseqdip.cli import main
from aseqdip.engine.state import LoopState
from aseqdip.methods import METHODS, Option, VanillaDIP, register_method
from aseqdip.methods.registry import unregister_method


class SparseDIP(VanillaDIP):
    """Vanilla DIP with an L1 penalty on the image (a test method: one class, one option)."""

    name: ClassVar[str] = "sparsedip"
    options: ClassVar[tuple[Option, ...]] = (Option("l1_weight", float, "sparsedip: weight of the L1 penalty"),)

    def __init__(self, l1_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l1_weight = l1_weight

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "l1_weight": self.l1_weight}

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        return self.data_fidelity(state, out) + self.l1_weight * out.abs().mean()


@pytest.fixture
def registered():
    register_method(SparseDIP)
    yield SparseDIP
    unregister_method(SparseDIP.name)


def _run(tmp_path, name: str, *extra: str) -> dict[str, Any]:
    out = tmp_path / name
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--method", "sparsedip",
                 "--iterations", "5", "--stop", "none", "--precision", "fp32", "--device", "cpu", "--no-progress",
                 "--out", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_a_method_registered_from_its_own_module_runs_with_its_own_option(tmp_path, registered, capsys):
    plain = _run(tmp_path, "plain")
    weighted = _run(tmp_path, "weighted", "--l1-weight", "5")
    assert plain["method"] == weighted["method"] == "sparsedip"
    assert (plain["hyperparameters"]["l1_weight"], weighted["hyperparameters"]["l1_weight"]) == (0.0, 5.0)
    assert weighted["psnr"] != plain["psnr"]  # the option reached the loss
    assert weighted["fingerprint"]["--l1-weight"] == 5.0  # and the fingerprint
    assert weighted["stopping"]["stop"] == "none"
    capsys.readouterr()
    # auto reads the class: a DIP-family method gets the discrepancy principle without any table entry
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--method", "sparsedip",
                 "--iterations", "5", "--precision", "fp32", "--device", "cpu", "--no-progress",
                 "--out", str(tmp_path / "auto")]) == 0
    assert json.loads((tmp_path / "auto" / "metrics.json").read_text())["stopping"]["stop"] == "discrepancy"


def test_a_method_name_is_registered_once(registered):
    class Other(VanillaDIP):
        name: ClassVar[str] = "sparsedip"

    with pytest.raises(ValueError, match="registered already"):
        register_method(Other)
    assert METHODS["sparsedip"] is SparseDIP


def test_an_option_the_method_does_not_take_is_refused_at_registration():
    class Broken(VanillaDIP):
        name: ClassVar[str] = "brokendip"
        options: ClassVar[tuple[Option, ...]] = (Option("nonexistent", float, "nothing takes it"),)

    with pytest.raises(ValueError, match="does not take"):
        register_method(Broken)
    assert "brokendip" not in METHODS
