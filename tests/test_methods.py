"""The paper's DIP baselines (issue 6): each runs on every task, and each does what makes it that method."""

from __future__ import annotations

import json

import pytest
import torch

from aseqdip.cli import main
from aseqdip.engine.callbacks import Callback
from aseqdip.engine.state import LoopState
from aseqdip.engine.stopping import WindowedMovingVariance
from aseqdip.errors import UserInputError
from aseqdip.io import load_image, write_png
from aseqdip.methods import ESDIP, METHODS, SGLDDIP, RefGuidedDIP, RethinkingDIP, SelfGuidedDIP
from aseqdip.metrics import to_numpy_image
from aseqdip.tasks import TASKS, Denoise, Inpaint
from helpers import Crash

BASELINES = ("selfguided", "tvdip", "esdip", "sgld", "refguided", "rethinking")
TINY = dict(precision="fp32", device="cpu")


def tiny_options(name: str, iterations: int) -> dict:
    """Settings that exercise each method's own machinery within a few steps."""
    extra = {"esdip": dict(window=3, patience=2), "sgld": dict(burn_in=2, sample_every=2),
             "selfguided": dict(draws=2)}.get(name, {})
    return {**TINY, "iterations": iterations, **extra}


def simulate(task_name: str, size: int = 32):
    """A tiny problem of ``task_name`` with the task's CLI defaults (so tasks added later are covered too)."""
    task = TASKS[task_name].from_options()
    return task.simulate(task.load("skimage:camera", size=size), seed=0)


@pytest.fixture(scope="module")
def references() -> list[torch.Tensor]:
    return [load_image("skimage:coffee", size=40), load_image("skimage:camera", size=40)]


@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_runs_on_every_task(name, task_name, references):
    problem = simulate(task_name)
    options = tiny_options(name, 4)
    if name == "refguided":
        options["references"] = references
    method = METHODS[name](**options)
    try:
        method.validate(problem.y, problem.physics)
    except UserInputError as exc:  # a method that does not apply says so in one line
        assert name == "rethinking", f"{name} refused {task_name}: {exc}"
        pytest.skip(f"{name} does not apply to {task_name}: {exc}")
    result = method.reconstruct(problem.y, problem.physics, x0=problem.x0)
    assert result.image.shape == problem.x0.shape
    assert torch.isfinite(result.image).all()
    assert 1 <= result.iteration_returned <= result.iterations <= 4
    assert len(result.history["loss"]) == result.iterations


def test_windowed_moving_variance_finds_the_quietest_window_and_waits_patience_steps():
    """Iterates settle (steps 1/t) until t = 40, then drift apart: the window variance is lowest at 40."""
    state = LoopState(net=torch.nn.Identity(), z=torch.zeros(1), y=torch.zeros(1), physics=None, optimizers=[],
                      generator=torch.Generator(), iterations=200)
    rule = WindowedMovingVariance(lambda s: s.output, window=5, patience=20)
    rule.on_start(state)
    x, at_40 = torch.zeros(1, 1, 4, 4), None
    while not state.stop and state.iteration < 200:
        state.iteration += 1
        t = state.iteration
        x = x + (1.0 / t if t <= 40 else 0.1 * (t - 40))
        state.output = x.clone()
        at_40 = x.clone() if t == 40 else at_40
        rule.on_step(state)
    assert rule.best_iteration == 40
    assert state.stop and state.iteration == 60  # 20 steps without a new minimum
    image, iteration, name = rule.selection()
    assert iteration == 40 and name == "es-wmv"
    assert torch.equal(image, at_40)
    assert rule.history()["wmv_iteration"][0] == 5  # the first full window


def test_esdip_stops_before_its_budget_on_a_denoising_problem_that_overfits(astronaut64):
    problem = Denoise(25).simulate(astronaut64[..., :40, :40], seed=0)
    budget = 500
    result = ESDIP(iterations=budget, window=20, patience=60, **TINY).reconstruct(
        problem.y, problem.physics, monitor=problem.psnr, track_every=5)
    assert result.iterations < budget, "ES-DIP ran its whole budget"
    assert result.iteration_returned == result.iterations - 60
    assert result.rule == "es-wmv" and "ES-WMV" in result.info["stop_reason"]
    # the run was overfitting: the detected iterate beats the noisy image by a margin
    assert problem.metrics(result.image)["psnr"] > problem.metrics(problem.y)["psnr"] + 2.0


class Record(Callback):
    """Keeps copies of the input at the start and end, and of the outputs of chosen steps."""

    def __init__(self, steps=()):
        self.steps = set(steps)
        self.outputs = {}

    def on_start(self, state):
        self.z_start = state.z.detach().clone()

    def on_step(self, state):
        if state.iteration in self.steps:
            self.outputs[state.iteration] = state.output.clone()

    def on_end(self, state):
        self.z_end = state.z.detach().clone()


def test_selfguided_trains_its_input(camera48):
    problem = Inpaint(mask="random", missing=0.5).simulate(camera48, seed=0)
    record = Record()
    SelfGuidedDIP(iterations=5, draws=2, **TINY).reconstruct(problem.y, problem.physics, callbacks=[record])
    change = (record.z_end - record.z_start).abs().max()
    assert change > 0.05, f"the input moved by {change:.3g} only"  # Adam at lr 0.1 for 5 steps moves it ~0.5


def test_sgld_returns_the_average_of_its_post_burn_in_samples(camera48):
    problem = Denoise(25).simulate(camera48, seed=0)
    method = SGLDDIP(iterations=13, burn_in=4, sample_every=3, **TINY)
    record = Record(steps=range(1, 14))
    result = method.reconstruct(problem.y, problem.physics, callbacks=[record])
    sampled = [record.outputs[i] for i in (6, 9, 12)]  # after step 4, every third step
    assert result.rule == "mean of 3 samples"
    torch.testing.assert_close(result.image, torch.stack(sampled).mean(0))
    assert all((result.image - s).abs().max() > 1e-4 for s in sampled)  # distinct iterates, not one repeated


def test_sgld_langevin_noise_moves_the_weights_beyond_adam():
    """With the same seed and Adam steps, the Langevin runs end at different weights than plain DIP."""
    x = load_image("skimage:camera", size=32)
    problem = Denoise(25).simulate(x, seed=0)
    plain = SGLDDIP(iterations=4, langevin_scale=0.0, **TINY)(problem.y, problem.physics)
    noisy = SGLDDIP(iterations=4, **TINY)(problem.y, problem.physics)
    assert (plain - noisy).abs().max() > 1e-3


def test_refguided_picks_the_shifted_copy_of_the_truth(tmp_path, astronaut64):
    truth = astronaut64
    write_png(tmp_path / "a_coffee.png", to_numpy_image(load_image("skimage:coffee", size=80)))
    write_png(tmp_path / "b_camera.png", to_numpy_image(load_image("skimage:camera", size=64)))
    write_png(tmp_path / "c_shifted_truth.png", to_numpy_image(torch.roll(truth, shifts=(3, -2), dims=(-2, -1))))
    write_png(tmp_path / "d_chelsea.png", to_numpy_image(load_image("skimage:chelsea", size=64)))
    for problem in (Denoise(25).simulate(truth, seed=0), Inpaint(hiar=0.1).simulate(truth, seed=0)):
        method = RefGuidedDIP(iterations=1, references=str(tmp_path), **TINY)
        method.reconstruct(problem.y, problem.physics)
        assert method.chosen_reference == "c_shifted_truth.png"
        assert method.hyperparameters()["chosen_reference"] == "c_shifted_truth.png"


def test_refguided_uses_the_reference_as_its_fixed_input(astronaut64):
    problem = Denoise(25).simulate(astronaut64, seed=0)
    record = Record()
    RefGuidedDIP(iterations=2, references=[astronaut64], **TINY).reconstruct(problem.y, problem.physics,
                                                                               callbacks=[record])
    torch.testing.assert_close(record.z_start, astronaut64 * (problem.x0.max() / astronaut64.max()))
    assert torch.equal(record.z_start, record.z_end)


def test_rethinking_denoises_with_sure_and_reads_sigma_from_the_physics(camera48):
    problem = Denoise(25).simulate(camera48, seed=0)
    method = RethinkingDIP(iterations=2, **TINY)
    assert method.noise_level(problem.physics) == pytest.approx(25 / 255)
    assert RethinkingDIP(sure_sigma=30).noise_level(problem.physics) == pytest.approx(30 / 255)
    record = Record()
    method.reconstruct(problem.y, problem.physics, callbacks=[record])
    assert torch.equal(record.z_start, problem.y)  # the noisy image is the input


def test_methods_without_what_they_need_fail_in_one_clear_line(camera48):
    problem = Denoise(25).simulate(camera48, seed=0)
    with pytest.raises(UserInputError, match="--references"):
        RefGuidedDIP(iterations=1)(problem.y, problem.physics)
    clean = Denoise(0).simulate(camera48, seed=0)
    with pytest.raises(UserInputError, match="noise level"):
        RethinkingDIP(iterations=1)(clean.y, clean.physics)
    holes = Inpaint().simulate(camera48, seed=0)
    with pytest.raises(UserInputError, match="denoising"):
        RethinkingDIP(iterations=1)(holes.y, holes.physics)


@pytest.mark.parametrize("argv, message", [
    (["--method", "refguided"], "--references"),
    (["--method", "refguided", "--references", "/nonexistent/refs"], "not a folder"),
    (["--method", "rethinking", "--sigma", "0"], "noise level"),
    (["--method", "esdip", "--es-window", "1"], "window"),
])
def test_cli_exits_2_with_the_reason(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code = main(["run", "--task", "denoise", "--image", "skimage:camera", "--size", "16", "--iterations", "2",
                 "--out", str(out), "--no-progress", "--device", "cpu", *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name", BASELINES)
def test_cli_writes_the_same_run_record_for_every_baseline(name, tmp_path, capsys):
    refs = tmp_path / "refs"
    refs.mkdir()
    write_png(refs / "camera.png", to_numpy_image(load_image("skimage:camera", size=40)))
    extra = {"refguided": ["--references", str(refs)], "esdip": ["--es-window", "3", "--es-patience", "2"],
             "sgld": ["--burn-in", "2", "--sample-every", "2"], "selfguided": ["--draws", "2"]}.get(name, [])
    out = tmp_path / "run"
    code = main(["run", "--task", "denoise", "--image", "skimage:astronaut", "--size", "24", "--iterations", "8",
                 "--method", name, "--out", str(out), "--no-progress", "--device", "cpu", "--precision", "fp32",
                 "--track-every", "1", *extra])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == name and metrics["finite_output"]
    assert {"psnr", "ssim", "psnr_oracle_best", "iteration_returned", "seconds_per_iteration"} <= set(metrics)
    assert (out / "psnr_curve.png").stat().st_size > 0 and (out / "recon.png").exists()
    if name == "esdip":
        assert metrics["output_rule"] == "es-wmv" and metrics["iteration_returned"] <= metrics["iterations"]


@pytest.mark.parametrize("name, options", [("esdip", dict(window=3, patience=50)), ("rethinking", {}),
                                           ("selfguided", dict(draws=2)),
                                           ("sgld", dict(burn_in=2, sample_every=2))])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, camera48, name, options):
    """Method state (moving averages, device generators) and the stopping rule survive a checkpoint."""
    problem = Denoise(25).simulate(camera48[..., :24, :24], seed=0)

    def run(**kwargs):
        method = METHODS[name](iterations=9, network="shallow_unet", seed=3, **TINY, **options)
        return method.reconstruct(problem.y, problem.physics, monitor=problem.psnr, **kwargs)

    full = run()
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(callbacks=[Crash(7)], checkpoint=ckpt, checkpoint_every=5)
    resumed = run(checkpoint=ckpt, checkpoint_every=5, resume=True)
    assert torch.equal(resumed.image, full.image)
    assert resumed.iteration_returned == full.iteration_returned
    assert resumed.history == full.history


def test_every_declared_option_is_a_flag_that_reaches_its_method():
    """Each method's options (declared once in its module) are flags of aseqdip run that set its keyword argument."""
    from aseqdip.cli import options_from_argv
    from aseqdip.pipeline import make_method
    from aseqdip.tasks import TASKS

    for name, cls in METHODS.items():
        for option in getattr(cls, "options", ()):
            if option.type is None:
                given, value = [option.option_string], True
            elif option.choices:
                given, value = [option.option_string, option.choices[-1]], option.choices[-1]
            elif option.type is int:
                given, value = [option.option_string, "3"], 3
            elif option.name == "references":
                given, value = [option.option_string, "refs"], "refs"
            else:
                given, value = [option.option_string, "0.375"], 0.375
            options = options_from_argv(["run", "--task", "denoise", "--image", "camera", "--out", "o", "--method", name,
                                         "--stop", "none", *given])
            method = make_method(options, TASKS["denoise"])
            assert getattr(method, option.name) == value, f"{name} {option.option_string}"
