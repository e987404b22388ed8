"""Checkpoints: a run interrupted and resumed returns exactly what an uninterrupted run returns (CPU)."""

from __future__ import annotations

import pytest
import torch

from aseqdip.methods import METHODS
from aseqdip.tasks import Denoise
from helpers import Crash

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


def test_a_checkpoint_resumes_only_the_run_that_saved_it(tmp_path, camera48):
    from aseqdip.engine.checkpoint import CheckpointError

    problem = Denoise(25).simulate(camera48[..., :16, :16], seed=0)
    ckpt = tmp_path / "run.ckpt"
    saved_with = {"--lr": 0.01}
    with pytest.raises(KeyboardInterrupt):
        METHODS["aseqdip"](iterations=6, network="shallow_unet", precision="fp32").reconstruct(
            problem.y, problem.physics, callbacks=[Crash(3)], checkpoint=ckpt, checkpoint_every=2,
            checkpoint_fingerprint=saved_with)
    saved = ckpt.read_bytes()

    def resume(name, fingerprint=saved_with, **options):
        method = METHODS[name](iterations=6, network="shallow_unet", precision="fp32", **options)
        return method.reconstruct(problem.y, problem.physics, checkpoint=ckpt, checkpoint_every=2, resume=True,
                                  checkpoint_fingerprint=fingerprint)

    with pytest.raises(CheckpointError, match="method is ASeqDIP in the checkpoint but VanillaDIP in this run"):
        resume("dip")  # another method's network and optimiser: refused by name, not a state_dict traceback
    with pytest.raises(CheckpointError, match="settings"):
        resume("aseqdip", lam=2.0)
    with pytest.raises(CheckpointError, match="--lr is 0.01 in the checkpoint but 0.1 in this run"):
        resume("aseqdip", fingerprint={"--lr": 0.1})
    ckpt.write_bytes(saved[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        resume("aseqdip")
    ckpt.write_bytes(saved)
    assert resume("aseqdip").info["resumed_from_iteration"] == 2
