"""Checkpoints: a run interrupted and resumed returns exactly what an uninterrupted run returns (CPU)."""

from __future__ import annotations

import pytest
import torch

from helpers import Crash
from aseqdip.methods import METHODS
from aseqdip.tasks import Denoise

RESUMABLE = [name for name in ("aseqdip", "dip", "selfguided", "sgld") if name in METHODS]


@pytest.mark.parametrize("name", RESUMABLE)
def test_resumed_run_equals_uninterrupted_run(tmp_path, camera48, name):
    problem = Denoise(25).simulate(camera48[..., :32, :32], seed=0)

    def method():
        return METHODS[name](iterations=8, network="shallow_unet", precision="fp32", seed=3)

    full = method().reconstruct(problem.y, problem.physics, monitor=problem.psnr)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        method().reconstruct(problem.y, problem.physics, monitor=problem.psnr, callbacks=[Crash(5)],
                             checkpoint=ckpt, checkpoint_every=3)
    assert ckpt.exists()
    assert torch.load(ckpt, weights_only=True)["iteration"] == 3
    resumed = method().reconstruct(problem.y, problem.physics, monitor=problem.psnr, checkpoint=ckpt,
                                   checkpoint_every=3, resume=True)
    assert resumed.iterations == full.iterations == 8
    assert torch.equal(resumed.image, full.image)
    assert resumed.history["psnr"] == full.history["psnr"]
    # the resumed process timed only its own 5 steps, so its seconds per step are not diluted by 8
    assert full.steps_timed == 8 and "resumed_from_iteration" not in full.info
    assert resumed.steps_timed == 5 and resumed.info["resumed_from_iteration"] == 3
    assert resumed.seconds_per_iteration == pytest.approx(resumed.seconds / 5)
