"""The shared loop: seeding, precision, callbacks, and that the oracle monitor never changes the output."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from aseqdip.engine import Callback, Precision
from aseqdip.methods import ASeqDIP, VanillaDIP
from aseqdip.tasks import Denoise


@pytest.fixture(scope="module")
def problem(camera48):
    return Denoise(25).simulate(camera48, seed=0)


def small(cls, **kw):
    kw.setdefault("iterations", 6)
    kw.setdefault("precision", "fp32")
    return cls(network="shallow_unet", **kw)


def test_same_seed_same_result_other_seed_other_result(problem):
    a = small(ASeqDIP, seed=1)(problem.y, problem.physics)
    b = small(ASeqDIP, seed=1)(problem.y, problem.physics)
    c = small(ASeqDIP, seed=2)(problem.y, problem.physics)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4


def test_dip_input_is_seeded_noise(problem):
    a = small(VanillaDIP, seed=5).reconstruct(problem.y, problem.physics)
    b = small(VanillaDIP, seed=5).reconstruct(problem.y, problem.physics)
    assert torch.equal(a.image, b.image)
    assert a.image.shape == problem.y.shape


def test_monitoring_the_ground_truth_does_not_change_the_output(problem):
    plain = small(ASeqDIP).reconstruct(problem.y, problem.physics)
    watched = small(ASeqDIP).reconstruct(problem.y, problem.physics, monitor=problem.psnr, track_every=1)
    assert torch.equal(plain.image, watched.image)
    assert len(watched.history["psnr"]) == 6 and "psnr" not in plain.history


def test_a_callback_can_stop_the_run(problem):
    class StopAt(Callback):
        def on_step(self, state):
            if state.iteration == 3:
                state.stop = True
                state.stop_reason = "test"

    rec = small(VanillaDIP, iterations=50).reconstruct(problem.y, problem.physics, callbacks=[StopAt()])
    assert rec.iterations == 3 and rec.iteration_returned == 3 and rec.info["stop_reason"] == "test"


def test_aseqdip_replaces_its_input_every_n_steps(problem):
    seen = []

    class Inputs(Callback):
        def on_step(self, state):
            seen.append(state.z.clone())

    small(ASeqDIP, iterations=6, inner_steps=3).reconstruct(problem.y, problem.physics, callbacks=[Inputs()])
    changed = [not torch.equal(seen[i], seen[i - 1]) for i in range(1, 6)]
    # seen[i] is z after step i+1: it starts as y and is replaced after steps 3 and 6 only
    assert changed == [False, True, False, False, True]
    assert torch.equal(seen[0], problem.y) and not torch.equal(seen[2], problem.y)


def test_aseqdip_lambda_weighs_sums_of_squares_as_the_paper_writes():
    """The paper's objective ||A f - y||^2 + lambda ||f - z||^2 (sums), divided by the number of entries of y;
    here 15-coil k-space, where the mean form would weigh the autoencoding term 15 times more."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(1, 2, 15, 8, 8, generator=g)
    out, z = torch.randn(1, 2, 8, 8, generator=g), torch.randn(1, 2, 8, 8, generator=g)
    physics = SimpleNamespace(A=lambda x: x[:, :, None].expand(-1, -1, 15, -1, -1))
    state = SimpleNamespace(physics=physics, y=y, z=z)
    paper = ((physics.A(out) - y).square().sum() + 0.7 * (out - z).square().sum()) / y.numel()
    assert float(ASeqDIP(lam=0.7).loss(state, out)) == pytest.approx(float(paper), rel=1e-6)
    means = (physics.A(out) - y).square().mean() + 0.7 * (out - z).square().mean()
    assert float(ASeqDIP(lam=0.7, lam_form="mean").loss(state, out)) == pytest.approx(float(means), rel=1e-6)
    with pytest.raises(ValueError, match="form of lambda"):
        ASeqDIP(lam_form="squares")


def test_precision_switch():
    cpu = torch.device("cpu")
    assert Precision.choose(cpu, "fp32").bf16 is False
    assert Precision.choose(cpu, "bf16").memory_format == torch.channels_last
    with pytest.raises(ValueError):
        Precision.choose(cpu, "fp16")


def test_auto_precision_keeps_fp32_on_small_gpu_images(monkeypatch):
    """On CUDA, auto picks bf16 only from 512 x 512 pixels (measured slower below: docs/speed.md)."""
    monkeypatch.delenv("ASEQDIP_AUTO_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # as on an H200; no GPU needed
    cuda = torch.device("cuda")
    assert Precision.choose(cuda, "auto", pixels=256 * 256).bf16 is False
    assert Precision.choose(cuda, "auto", pixels=512 * 512).bf16 is True
    assert Precision.choose(cuda, "bf16", pixels=64 * 64).bf16 is True  # asked for: kept


def test_bf16_path_runs_and_returns_fp32(problem):
    rec = small(ASeqDIP, iterations=4, precision="bf16").reconstruct(problem.y, problem.physics)
    assert rec.image.dtype == torch.float32 and torch.isfinite(rec.image).all()
    assert rec.info["precision"] == "bf16"


def test_a_curve_reads_values_from_before_and_after_a_resume():
    """After --resume a curve holds restored values (CPU) and new ones (on the run's device, which may be
    a GPU); reading it must not require one device (found on an H200). Floats and tensors mixed here."""
    from aseqdip.engine.callbacks import Series

    curve = Series("psnr")
    curve.load_state_dict({"iters": [1, 2], "values": [torch.tensor(20.0), torch.tensor(21.0)]})
    curve.add(3, 22.5)  # a plain float, as a callback may record
    curve.add(4, torch.tensor(23.0))
    assert curve.history() == {"psnr_iteration": [1, 2, 3, 4], "psnr": [20.0, 21.0, 22.5, 23.0]}
