"""The compiled training step against autograd on the reference step, and the trainer's use of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamix_forecasting import DynaMix, DynaMixConfig
from dynamix_forecasting.training import Trainer, TrainingSettings, teacher_forced_rollout, training_loss
from dynamix_forecasting.training.fast_step import _exp_nonpositive, loss_and_gradients, supports


def _perturbed(config: dict, seed: int) -> DynaMix:
    model = DynaMix.random(config, seed).train()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # away from the initialisation, so no gradient is trivially zero
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
        model.gating_network.mlp_layer1.bias.zero_()
        model.gating_network.mlp_layer2.bias.zero_()
    return model


def _reference(model, context, target, teacher, n_interleave, seed, weight):
    gen = torch.Generator().manual_seed(seed)
    pred = teacher_forced_rollout(model, context, teacher, n_interleave, gen)
    loss, mse = training_loss(model, pred, target, weight)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.item(), mse.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("config", "steps", "n_interleave"),
    [({"M": 30, "N": 3, "Experts": 10, "P": 2}, 40, 10), ({"M": 7, "N": 2, "Experts": 3, "P": 0}, 13, 4)],
)
def test_loss_and_every_gradient_equal_autograd_on_the_reference_step(config, steps, n_interleave):
    model = _perturbed(config, seed=3)
    n, batch = config["N"], 5
    gen = torch.Generator().manual_seed(0)
    context = torch.randn(120, batch, n, generator=gen)
    target = torch.randn(steps, batch, n, generator=gen)
    teacher = target + 0.05 * torch.randn(steps, batch, n, generator=gen)
    loss, mse, grads = _reference(model, context, target, teacher, n_interleave, seed=1, weight=0.1)
    # the same gating noise, drawn as the reference rollout draws it (one (N, B) block per step)
    noise_gen = torch.Generator().manual_seed(1)
    eps = torch.stack([torch.randn(n, batch, generator=noise_gen) for _ in range(steps - 1)])
    model.zero_grad(set_to_none=True)
    fast_loss, fast_mse = loss_and_gradients(model, context, target, teacher, n_interleave, eps, 0.1, threads=1)
    assert fast_loss == pytest.approx(loss, rel=1e-5)
    assert fast_mse == pytest.approx(mse, rel=1e-5)
    named = dict(model.named_parameters())
    assert set(grads) == {k for k, p in named.items() if p.grad is not None}
    for name, ref in grads.items():
        scale = ref.abs().max().item()
        assert scale > 0, name
        err = (named[name].grad - ref).abs().max().item()
        assert err <= 1e-4 * scale, f"{name}: max error {err:.3g} against gradient scale {scale:.3g}"


def test_the_result_does_not_depend_on_the_thread_count():
    model = _perturbed({"M": 8, "N": 3, "Experts": 3, "P": 1}, seed=0)
    gen = torch.Generator().manual_seed(2)
    context, target = torch.randn(50, 7, 3, generator=gen), torch.randn(15, 7, 3, generator=gen)
    eps = torch.randn(14, 3, 7, generator=gen)
    out = []
    for threads in (1, 2):
        model.zero_grad(set_to_none=True)
        loss, _ = loss_and_gradients(model, context, target, target, 5, eps, 0.1, threads=threads)
        out.append((loss, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-12)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_vectorizable_exp_matches_numpy():
    x = -np.concatenate([np.linspace(0, 50, 2001), [100.0, 700.0, 1e6]])
    got = np.array([_exp_nonpositive(v) for v in x])
    np.testing.assert_allclose(got[:2001], np.exp(x[:2001]), rtol=1e-11)
    assert got[-1] < 1e-300 and got[-1] >= 0


def test_other_expert_kinds_are_refused_with_the_way_out():
    model = DynaMix(DynaMixConfig(M=6, N=2, Experts=2, expert_type="clipped_shallow_plrnn", hidden_dim=4))
    assert "almost-linear" in supports(model)
    with pytest.raises(ValueError, match="engine='reference'"):
        loss_and_gradients(model, torch.zeros(10, 1, 2), torch.zeros(5, 1, 2), torch.zeros(5, 1, 2), 2,
                           torch.zeros(4, 2, 1), 0.1)  # fmt: skip


def _trajectory(seed: int, n: int = 400) -> np.ndarray:
    t = np.arange(n) * 0.1
    phase = np.random.default_rng(seed).uniform(0, 6, size=3)
    return np.stack([np.sin(t + phase[0]), np.cos(1.3 * t + phase[1]), np.sin(0.7 * t + phase[2])], axis=1)


def _settings(tmp_path, engine: str, **overrides) -> TrainingSettings:
    files = []
    for i in range(2):
        files.append(str(tmp_path / f"traj{i}.npy"))
        np.save(files[-1], _trajectory(i))
    values = dict(
        M=8, N=3, Experts=3, P=1, trajectory_files=files, context_length=60, sequence_length=20, overlap=5,
        windows_per_system=10, batch_size=4, batches_per_epoch=3, epochs=3, eval_every=0, checkpoint_every=1,
        output_dir=str(tmp_path / engine), lr_start=1e-2, lr_end=1e-3, threads=1, engine=engine,
    )  # fmt: skip
    values.update(overrides)
    return TrainingSettings(**values)


def test_fast_and_reference_trainers_take_the_same_first_step(tmp_path):
    """Same batch, same initial weights: the fast engine's first update equals autograd's (noise-free gating)."""
    fast, ref = Trainer(_settings(tmp_path, "fast")), Trainer(_settings(tmp_path, "reference"))
    for trainer in (fast, ref):
        with torch.no_grad():
            trainer.model.gating_network.sigma.zero_()  # the two engines draw their gating noise differently
    fast.train_step(0)
    ref.train_step(0)
    for (name, a), b in zip(fast.model.named_parameters(), ref.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_blown_up_batch_is_skipped_and_counted(tmp_path):
    trainer = Trainer(_settings(tmp_path, "fast", epochs=1))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with torch.no_grad():
        trainer.model.experts[0].W.fill_(1e30)  # the rollout overflows
    loss, mse = trainer.train_step(0)
    assert np.isnan(loss) and np.isnan(mse)
    for p, b in zip(trainer.model.parameters(), before, strict=True):
        if p is not trainer.model.experts[0].W:
            assert torch.equal(p, b)  # no update was applied
    with pytest.raises(FloatingPointError, match="non-finite loss or gradient"):
        trainer.fit(progress=False)


def test_fast_engine_needs_the_cpu(tmp_path):
    with pytest.raises(ValueError, match="engine='reference'"):
        _settings(tmp_path, "fast", device="cuda:0")
