import json

import pytest
import torch

from crossdistill.checkpoint import load_state
from crossdistill.config import ModelSpec, TermSpec, TrainConfig
from crossdistill.data.loader import BatchLoader
from crossdistill.distill import Distiller, PrepareContext, resolve_terms
from crossdistill.models import build_model
from crossdistill.train import ema_decay, ema_with_warmup, fit, warmup_cosine

STUDENT = ModelSpec.model_validate({"encoders": {"audio": {"name": "spec_cnn", "channels": [4, 8]}},
                                    "embed_dim": 8})


TEACHER = ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "channels": [4, 8]}},
                                    "embed_dim": 8})


QUICK_STAGES = {"mst": {"cotrain_epochs": 1, "mask_epochs": 1}}


def small_fit(av_fold, run_dir, epochs, seed=0, ema=None, patience=None, losses=("ce",), checkpoint_steps=0,
              augment=None, workers=0):
    torch.manual_seed(seed)
    subset = av_fold["train"].batch(torch.arange(0, 2000, 8))  # 250 clips
    from crossdistill.data.batch import SplitData

    data = SplitData(subset.inputs, subset.target, subset.index)
    teacher = build_model(TEACHER, av_fold.info) if len(losses) > 1 else None
    distiller = Distiller(build_model(STUDENT, av_fold.info), teacher,
                          resolve_terms([TermSpec(loss=name, kwargs=QUICK_STAGES.get(name, {})) for name in losses]),
                          probe=data.batch(torch.arange(4)))
    distiller.prepare(PrepareContext(data, lambda: build_model(STUDENT, av_fold.info), seed, student=distiller.student,
                                     val=av_fold["val"], new_teacher_over=lambda _: build_model(TEACHER, av_fold.info),
                                     lr=1e-2, batch_size=16))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, progress=False, patience=patience, ema_horizon=ema,
                      checkpoint_steps=checkpoint_steps)
    train = BatchLoader(data, 16, shuffle=True, seed=seed, augment=augment, workers=workers)
    val = BatchLoader(av_fold["val"], 256)
    result = fit(distiller, train, val, av_fold["val"].target, cfg, run_dir, torch.device("cpu"))
    return distiller, result


def test_fit_learns_logs_and_keeps_the_best_validation_epoch(av_fold, tmp_path):
    distiller, result = small_fit(av_fold, tmp_path, epochs=6)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(6))
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert result.best_score == max(r["val_score"] for r in rows) > 0.15  # better than chance (0.1)
    assert rows[result.best_epoch]["val_score"] == result.best_score
    assert (tmp_path / "checkpoints" / "best.safetensors").is_file()


# With crd, c2kd, ofa and mst, resuming must also restore the queues, the NCE constants, the proxy heads, the jointly
# trained teacher, the logit branches, and mst's co-trained teachers, masks and router: any of them missing changes
# the validation scores after the crash. (mst's stages run again before the resumed fit: seeded, so identical.)
@pytest.mark.parametrize("losses", [("ce",), ("ce", "crd", "c2kd"), ("ce", "ofa", "mst")])
def test_a_crashed_fit_resumes_where_it_stopped_and_ends_identical(av_fold, tmp_path, monkeypatch, losses):
    import crossdistill.train as train_module

    straight_distiller, straight = small_fit(av_fold, tmp_path / "straight", epochs=3, losses=losses)
    real, calls = train_module.predict, []

    def crash_on_third_validation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict", crash_on_third_validation)
    with pytest.raises(RuntimeError, match="simulated crash"):
        small_fit(av_fold, tmp_path / "resumed", epochs=3, losses=losses)
    assert load_state(tmp_path / "resumed" / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "predict", real)
    resumed_distiller, resumed = small_fit(av_fold, tmp_path / "resumed", epochs=3, losses=losses)
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["val_score"] for r in rows] == [r["val_score"] for r in straight.history]
    assert resumed.best_score == straight.best_score
    for key, value in straight_distiller.training_state().state_dict().items():
        assert torch.equal(value, resumed_distiller.training_state().state_dict()[key]), key


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.0)


def test_ema_is_a_running_mean_until_its_horizon_then_exponential():
    update = ema_with_warmup(0.9)
    average = torch.tensor([3.0])  # AveragedModel copies the first value; avg_fn gets the count so far
    for count, value in enumerate([6.0, 9.0], start=1):
        average = update(average, torch.tensor([value]), torch.tensor(count))
    assert average.item() == pytest.approx(6.0)  # (3 + 6 + 9) / 3
    assert update(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor(1000)).item() == pytest.approx(0.9)


def test_fit_keeps_the_moving_average_weights(av_fold, tmp_path):
    from safetensors.torch import load_file

    distiller, _ = small_fit(av_fold, tmp_path, epochs=2, ema=0.2)
    saved = load_file(str(tmp_path / "checkpoints" / "best.safetensors"))
    last = load_state(tmp_path / "checkpoints" / "last.pt")
    raw = last["student"]
    assert any(not torch.equal(saved[k], raw[k]) for k in saved if saved[k].is_floating_point())
    assert all(torch.equal(saved[k], v) for k, v in distiller.student.state_dict().items())


def test_ema_decay_scales_with_the_run():
    assert ema_decay(0.2, 500) == pytest.approx(0.99)  # time constant 100 steps
    assert ema_decay(0.2, 5000) == pytest.approx(0.999)
    assert ema_decay(0.5, 1) == 0.0  # a one-step run keeps its weights


def test_an_early_stopped_fit_stays_stopped_when_run_again(av_fold, tmp_path):
    _, first = small_fit(av_fold, tmp_path, epochs=40, patience=1)
    assert first.epochs_run < 40  # stopped early
    _, again = small_fit(av_fold, tmp_path, epochs=40, patience=1)
    assert again.epochs_run == first.epochs_run and again.best_score == first.best_score


@pytest.mark.parametrize("workers", [0, 2])
def test_a_fit_killed_mid_epoch_resumes_from_that_step_bit_for_bit(av_fold, tmp_path, monkeypatch, workers):
    """train.checkpoint_steps: a crash in the middle of an epoch (15 steps) loses only the steps since the last
    mid-epoch checkpoint; the resumed fit continues the same batches, augmentation draws, dropout and loss sums
    (in the training process or in DataLoader workers) and ends identical to a fit never stopped."""
    import crossdistill.train as train_module
    from crossdistill.config import SpecAugment

    augment = {"audio": SpecAugment(time_shift=4, freq_masks=1, freq_width=3)}
    settings = {"epochs": 3, "losses": ("ce", "crd"), "checkpoint_steps": 3, "augment": augment, "workers": workers}
    straight_distiller, straight = small_fit(av_fold, tmp_path / "straight", **settings)
    real, calls = train_module._autocast, []

    def crash_in_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 15 + 8:  # epoch 1, step 7: after the checkpoint written at step 6
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_autocast", crash_in_the_second_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        small_fit(av_fold, tmp_path / "resumed", **settings)
    saved = load_state(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert saved["epoch"] == 0 and saved["mid_epoch"]["epoch"] == 1 and saved["mid_epoch"]["step"] == 6
    monkeypatch.setattr(train_module, "_autocast", real)
    resumed_distiller, resumed = small_fit(av_fold, tmp_path / "resumed", **settings)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]
    assert [r["val_score"] for r in resumed.history] == [r["val_score"] for r in straight.history]
    for key, value in straight_distiller.training_state().state_dict().items():
        assert torch.equal(value, resumed_distiller.training_state().state_dict()[key]), key
    for key, value in straight_distiller.student.state_dict().items():
        assert torch.equal(value, resumed_distiller.student.state_dict()[key]), key
    assert "mid_epoch" not in load_state(tmp_path / "resumed" / "checkpoints" / "last.pt")  # ended cleanly
