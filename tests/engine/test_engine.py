"""Engine: config loading, exact resume, source bank, a short learning run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aioir.engine.config import config_from_dict, load_config, load_yaml
from aioir.engine.run import train
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.methods.udair.bank_accumulation import (
    SourceBankAccumulator,
    load_source_bank,
    save_source_bank,
)

TASKS = {
    "noise": {"degradations": [{"name": "gaussian_noise", "sigma": [10, 40]}]},
    "blur": None,
    "haze": None,
}


def tiny_config(root: Path, **sections):
    raw = {
        "model": {"name": "udair-tiny"},
        "data": {
            "kind": "synthetic", "root": str(root), "tasks": TASKS, "patch_size": 32,
            "samples_per_task": 2, "items_per_task": 12, "epoch_length": 3,
            "val_items_per_task": 2, "val_size": 32, "val_batch_size": 6,
        },
        "losses": {"l1": 1.0, "cscl": {"weight": 0.2, "mode": "normalized"}},
        "optimizer": {"lr": 1e-3},
        "scheduler": {"name": "cosine_restarts", "t_0": 2, "t_mult": 2},
        "trainer": {
            "max_steps": 6, "progress_bar": False, "logger": "csv", "log_every_n_steps": 1,
            "accelerator": "cpu", "devices": 1, "num_threads": 1,
        },
        "source_bank": {"mode": "final_pass", "items_per_task": 2, "batch_size": 6},
    }  # fmt: skip
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(raw, "test")


def test_config_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: udair-tiny\n  widht: 3\ntrainer: {max_steps: 1}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.widht'"):
        load_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("trainer: {max_steps: 1}\n")
    with pytest.raises(ConfigError, match="wrong type"):
        load_config(ok, ["trainer.max_steps=abc"])
    with pytest.raises(ConfigError, match=r"data\.kind"):
        load_config(ok, ["data.kind=imagenet"])
    for key in ("photometric", "white_balance", "pale", "dark", "defocus"):
        with pytest.raises(ConfigError, match=rf"data\.{key}"):
            load_config(ok, [f"data.{key}=1.5"])
    cfg = load_config(ok, ["trainer.max_steps=7", "data.patch_size=48", "losses={l1: 1.0}"])
    assert cfg.trainer.max_steps == 7 and cfg.data.patch_size == 48


def test_numbers_read_as_yaml_1_2(tmp_path):
    """``1e-3`` (no dot) is a float in a file and in ``--set``, as YAML 1.2 reads it; PyYAML's
    YAML 1.1 reads it as a string, which a float option then refused."""
    ok = tmp_path / "ok.yaml"
    ok.write_text("trainer: {max_steps: 1}\noptimizer: {lr: 2e-4}\n")
    assert load_config(ok).optimizer.lr == pytest.approx(2e-4)
    cfg = load_config(ok, ["optimizer.lr=1e-3", "optimizer.weight_decay=-1.5E+0"])
    assert cfg.optimizer.lr == pytest.approx(1e-3) and cfg.optimizer.weight_decay == -1.5
    assert load_yaml("[1e3, 1e, 1.2.3, .5, 7]") == [1000.0, "1e", "1.2.3", 0.5, 7]
    with pytest.raises(ConfigError, match="wrong type"):
        load_config(ok, ["trainer.max_steps=1e3"])


def test_a_config_starts_from_its_base(tmp_path):
    """``base:`` reads another file (relative to this one) and merges this one over it:
    sections key by key, lists and plain values replaced whole."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "base.yaml").write_text(
        "model: {name: udair-tiny}\n"
        "data: {patch_size: 48, samples_per_task: 3, tasks: {noise: {}, haze: {}}}\n"
        "losses: {l1: 1.0}\ntrainer: {max_steps: 5, num_threads: 1}\n"
    )
    child = tmp_path / "runs" / "child.yaml"
    child.write_text("base: ../base.yaml\ndata: {patch_size: 32, tasks: {rain: {}}}\n"
                     "trainer: {max_steps: 9}\n")  # fmt: skip
    cfg = load_config(child, ["trainer.num_threads=2"])
    assert cfg.model.name == "udair-tiny" and cfg.losses == {"l1": 1.0}
    assert (cfg.data.patch_size, cfg.data.samples_per_task) == (32, 3)
    assert list(cfg.data.tasks) == ["noise", "haze", "rain"]  # a section: merged
    assert (cfg.trainer.max_steps, cfg.trainer.num_threads) == (9, 2)

    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text("base: runs/child.yaml\ntrainer: {max_steps: 2}\n")
    cfg = load_config(grandchild)
    assert (cfg.data.patch_size, cfg.trainer.max_steps) == (32, 2)

    (tmp_path / "loop.yaml").write_text("base: loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match=r"loop2\.yaml: base: loop\.yaml names a file already"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found \(the base of"):
        load_config(tmp_path / "orphan.yaml")
    (tmp_path / "odd.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match=r"odd\.yaml: base: expected the path"):
        load_config(tmp_path / "odd.yaml")


def test_a_model_name_override_is_noted_in_the_description():
    """A recipe trained with another network (``--set model.name=…``) says so in its
    description, unless the description is overridden too."""
    recipe = Path(__file__).parents[2] / "configs/udair/blur-expert.yaml"
    written = load_config(recipe).description
    assert written.startswith("nafnet-tiny ")
    other = load_config(recipe, ["model.name=nafnet-small"]).description
    assert other == f"{written} [model.name set to nafnet-small]"
    own = load_config(recipe, ["model.name=nafnet-small", "description=wide blur expert"])
    assert own.description == "wide blur expert"
    assert load_config(recipe, ["trainer.max_steps=3"]).description == written


#: The shipped configs that are filter-bank fits (``aioir fit-filter-bank``), not trainings.
def test_shipped_configs_load():
    from aioir.engine.filter_bank import load_fit_config

    root = Path(__file__).parents[2] / "configs"
    configs = sorted(root.rglob("*.yaml"))
    assert len(configs) >= 7
    for path in configs:
        if path.name.startswith("filter-bank"):  # aioir fit-filter-bank's configs
            load_fit_config(path)
        else:
            load_config(path)


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_resume_is_exact(corpus, tmp_path):
    extra = {"ema": {"enabled": True, "decay": 0.9}, "source_bank": {"mode": "epoch_mean"}}
    full = train(tiny_config(corpus, trainer={"max_steps": 6, "checkpoint_every_n_steps": 4}, **extra),
                 tmp_path / "full", export=False)  # fmt: skip
    part = train(tiny_config(corpus, trainer={"max_steps": 4, "checkpoint_every_n_steps": 4}, **extra),
                 tmp_path / "part", export=False)  # fmt: skip
    assert part.steps == 4
    mid = _ckpt(tmp_path / "part/checkpoints/last.ckpt")
    assert mid["global_step"] == 4 and mid["RestorationDataModule"]["sampler"]["position"] == 1
    resumed = train(
        tiny_config(corpus, trainer={"max_steps": 6, "checkpoint_every_n_steps": 4}, **extra),
        tmp_path / "part",
        resume="auto",
        export=False,
    )
    assert resumed.steps == 6
    a, b = _ckpt(full.last_checkpoint), _ckpt(resumed.last_checkpoint)
    assert a["global_step"] == b["global_step"] == 6
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=1e-6)
    for key in a["ema_state_dict"]:
        torch.testing.assert_close(
            a["ema_state_dict"][key], b["ema_state_dict"][key], rtol=0, atol=1e-6
        )
    sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for k in sa:
        torch.testing.assert_close(sa[k]["exp_avg"], sb[k]["exp_avg"], rtol=0, atol=1e-6)
    assert a["lr_schedulers"][0]["last_epoch"] == b["lr_schedulers"][0]["last_epoch"]
    acc_a, acc_b = a["source_bank"]["accumulator"], b["source_bank"]["accumulator"]
    torch.testing.assert_close(acc_a["counts"], acc_b["counts"])
    for k in acc_a["sums"]:
        torch.testing.assert_close(acc_a["sums"][k], acc_b["sums"][k], rtol=0, atol=1e-6)
    # the interrupted run did not just replay the same batches: weights moved after step 4
    assert not torch.equal(mid["state_dict"]["model.patch_embed.proj.weight"],
                           b["state_dict"]["model.patch_embed.proj.weight"])  # fmt: skip


def test_step_cadence_checkpoint_keeps_the_validation_of_its_step(corpus, tmp_path):
    """The step-3 save runs before step 3's validation; the file still records it, so a run
    resumed from it reports every validation."""
    cadence = {"checkpoint_every_n_steps": 3}
    part = train(tiny_config(corpus, trainer={"max_steps": 3, **cadence}), tmp_path / "run",
                 export=False)  # fmt: skip
    mid = _ckpt(part.last_checkpoint)
    assert mid["global_step"] == 3
    assert [row["step"] for row in mid["val_history"]] == [3]
    resumed = train(tiny_config(corpus, trainer={"max_steps": 6, **cadence}), tmp_path / "run",
                    resume="auto", export=False)  # fmt: skip
    assert [row["step"] for row in resumed.val_history] == [3, 6]
    assert [row["step"] for row in _ckpt(resumed.last_checkpoint)["val_history"]] == [3, 6]
    # the record names the run's own files relative to the run folder, not this machine's paths
    assert resumed.record["resumed_from"] == "checkpoints/last.ckpt"
    assert resumed.record["best_checkpoint"] == "checkpoints/best.ckpt"


def test_last_checkpoint_follows_training_when_validation_plateaus(corpus, tmp_path, monkeypatch):
    """A run killed after a plateau resumes from its latest state, not its last improvement."""
    import lightning.pytorch as pl

    import aioir.engine.run as run_module

    seen: list[tuple[int, int]] = []

    class Probe(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            last = tmp_path / "flat/checkpoints/last.ckpt"
            if trainer.current_epoch > 0:
                seen.append((trainer.global_step, _ckpt(last)["global_step"]))

    build = run_module.build_trainer
    monkeypatch.setattr(
        run_module, "build_trainer",
        lambda config, output, dm, callbacks=None: build(
            config, output, dm, callbacks=[*(callbacks or []), Probe()]
        ),
    )  # fmt: skip
    # a model without running buffers at lr 1e-12: Adam's steps vanish under float32 rounding,
    # val/psnr stays put and `best` is written once, after the first epoch
    cfg = tiny_config(
        corpus, model={"name": "restormer-tiny"}, optimizer={"lr": 1e-12},
        source_bank={"enabled": False}, trainer={"max_steps": 9},
    )  # fmt: skip
    cfg.losses = {"l1": 1.0}  # Restormer has no degradation features for CSCL
    res = train(cfg, tmp_path / "flat", export=False)
    assert res.steps == 9
    assert seen == [(3, 3), (6, 6)]
    assert _ckpt(res.best_checkpoint)["global_step"] == 3


def test_source_bank_epoch_mean_in_checkpoint_and_final_pass_export(corpus, tmp_path):
    cfg = tiny_config(corpus, source_bank={"mode": "epoch_mean"}, trainer={"max_steps": 4})
    res = train(cfg, tmp_path / "em")
    state = _ckpt(res.last_checkpoint)["source_bank"]
    assert state["task_names"] == ["noise", "blur", "haze"] and state["mode"] == "epoch_mean"
    bank = state["bank"]
    # udair-tiny: dim 8 → g4 64×(32/8)², g3 32×(32/4)², g2 16×(32/2)²
    assert {k: tuple(v.shape) for k, v in bank.items()} == {
        "g4": (3, 64, 4, 4), "g3": (3, 32, 8, 8), "g2": (3, 16, 16, 16)
    }  # fmt: skip
    exported, meta = load_source_bank(res.export_dir)
    assert meta["task_names"] == ["noise", "blur", "haze"] and meta["mode"] == "epoch_mean"
    torch.testing.assert_close(exported["g3"], bank["g3"])

    res2 = train(tiny_config(corpus, trainer={"max_steps": 2}), tmp_path / "fp")
    bank2, meta2 = load_source_bank(res2.export_dir / "bank.safetensors")
    assert meta2["mode"] == "final_pass" and meta2["count"] == [2, 2, 2]
    assert tuple(bank2["g2"].shape) == (3, 16, 16, 16)
    # format 2: the final pass also stores the per-task row statistics
    assert meta2["format_version"] == 2 and meta2["statistics"]["images"] == [2, 2, 2]
    from aioir.methods.udair.bank import SourceBank

    full = SourceBank.load(res2.export_dir)
    assert full.has_statistics and tuple(full.covs["g4"].shape) == (3, 64, 64)
    record = json.loads((res2.export_dir / "training.json").read_text())
    assert record["source_bank"]["statistics"]["images"] == [2, 2, 2]
    config = json.loads((res2.export_dir / "config.json").read_text())
    assert config["metadata"]["source_bank"] == "bank.safetensors"
    assert config["metadata"]["task_names"] == ["noise", "blur", "haze"]
    from aioir.models import load_model

    model = load_model(res2.export_dir)
    assert model(torch.rand(1, 3, 24, 24)).shape == (1, 3, 24, 24)
    # the exported bank travels with the weights
    assert model.source_bank.task_names == ["noise", "blur", "haze"]
    torch.testing.assert_close(model.source_bank.levels["g2"], bank2["g2"])
    assert model.source_bank.task_index("blur") == 1


def test_source_bank_accumulator_round_trip(tmp_path):
    acc = SourceBankAccumulator(["a", "b"])
    g = [torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 2, 2) for _ in range(3)]
    acc.add_task_ordered(g)  # batch [a, a, b, b] → means 0.5 and 2.5
    acc.add_task_ordered([x + 1 for x in g])
    mean = acc.mean()
    assert mean["g4"][:, 0, 0, 0].tolist() == [1.0, 3.0]
    other = SourceBankAccumulator(["a", "b"])
    other.load_state_dict(acc.state_dict())
    torch.testing.assert_close(other.mean()["g2"], mean["g2"])
    path = save_source_bank(tmp_path / "bank.safetensors", mean, ["a", "b"], {"mode": "x"})
    loaded, meta = load_source_bank(path)
    torch.testing.assert_close(loaded["g3"], mean["g3"])
    assert meta == {"task_names": ["a", "b"], "mode": "x", "format_version": 2, "dtype": "float32"}
    with pytest.raises(ConfigError):
        SourceBankAccumulator(["a", "b", "c"]).add_task_ordered(g)


def test_tiny_run_lowers_loss_and_raises_val_psnr(corpus, tmp_path):
    cfg = tiny_config(
        corpus,
        data={"epoch_length": 25, "items_per_task": 50, "val_items_per_task": 4},
        trainer={"max_steps": 100, "val_every_n_steps": 20},
        scheduler={"name": "constant"},
        optimizer={"lr": 2e-3},
        source_bank={"enabled": False},
    )
    res = train(cfg, tmp_path / "learn", export=False)
    import csv

    with open(tmp_path / "learn/logs/version_0/metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["train/l1"]) for r in rows if r.get("train/l1")]
    assert len(losses) >= 90
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    history = [h["val/psnr"] for h in res.val_history]
    print("l1", first, last, "val psnr", history)
    assert last < 0.8 * first, (first, last)
    assert len(history) == 5  # every 20 steps
    assert history[-1] > history[0] + 0.5, history


@pytest.mark.parametrize(
    "schedule",
    [
        {"max_steps": 8, "val_every_n_steps": 2},
        # the v4 configs' cadence: validation at each epoch's end, checkpoints every epoch's steps
        {"max_steps": 12, "val_every_n_epochs": 1, "checkpoint_every_n_steps": 3},
    ],
)
def test_min_gain_monitor_selects_the_checkpoint_with_the_best_worst_task(
    corpus, tmp_path, schedule
):
    import math

    from aioir.data.photos import clean_photo_splits
    from aioir.data.synthetic import SyntheticDegradationDataset
    from aioir.data.task_specs import parse_task_specs
    from aioir.metrics import get_protocol

    tasks = {**TASKS, "clean": None}
    cfg = tiny_config(
        corpus, data={"tasks": tasks}, validation={"monitor": "min_gain"},
        trainer=schedule, source_bank={"enabled": False},
    )  # fmt: skip
    res = train(cfg, tmp_path / "gain")
    rows = res.val_history
    assert len(rows) == 4
    for row in rows:
        gains = [row[f"val/{t}/psnr"] - row[f"val/{t}/input_psnr"] for t in TASKS]
        assert [row[f"val/{t}/gain"] for t in TASKS] == pytest.approx(gains)
        assert row["val/min_gain"] == pytest.approx(min(gains))
        assert "val/clean/gain" not in row and "val/clean/input_psnr" not in row  # identity task
    # the input PSNR is that of the validation items themselves
    val = SyntheticDegradationDataset(
        clean_photo_splits(corpus)[1], parse_task_specs(tasks), 32, "random", 0, True, length=2
    )
    noise = [it for it in (val[i] for i in range(len(val))) if it["task"] == "noise"]
    protocol = get_protocol("clean")
    expected = sum(
        min(float(protocol.score(it["input"][None], it["target"][None])["psnr"][0]), 100.0)
        for it in noise
    ) / len(noise)
    assert rows[0]["val/noise/input_psnr"] == pytest.approx(expected, abs=1e-4)
    best = max(rows, key=lambda r: r["val/min_gain"])
    ckpt = _ckpt(res.best_checkpoint)
    assert ckpt["global_step"] == best["step"]
    # the weights were saved with *their* validation's score, not the one before it (a save on
    # the step cadence runs before that step's validation)
    (state,) = [v for k, v in ckpt["callbacks"].items() if "'val/min_gain'" in k]
    assert float(state["current_score"]) == pytest.approx(best["val/min_gain"])
    assert res.record["monitor"] == "val/min_gain"
    assert res.record["best_val_score"] == pytest.approx(best["val/min_gain"])
    assert res.record["best_val_psnr"] == pytest.approx(best["val/psnr"])
    meta = json.loads((res.export_dir / "config.json").read_text())["metadata"]
    assert meta["val"]["step"] == best["step"]
    assert not math.isnan(best["val/min_gain"])
    with pytest.raises(ConfigError, match=r"validation\.monitor"):
        tiny_config(corpus, validation={"monitor": "lpips"})


def test_udair_layout_datamodule_holdout_and_task_order(tmp_path):
    import numpy as np
    from PIL import Image

    from aioir.engine.datamodule import RestorationDataModule

    rng = np.random.default_rng(0)
    folders = ("denoising", "dehazing", "deraining", "low-light", "underwater")
    for folder in folders:
        for sub in ("images", "labels"):
            (tmp_path / "train" / folder / sub).mkdir(parents=True)
        for i in range(5):
            img = (rng.uniform(0, 1, (20, 24, 3)) * 255).astype(np.uint8)
            for sub in ("images", "labels"):
                Image.fromarray(img).save(tmp_path / "train" / folder / sub / f"{i}.png")
    cfg = tiny_config(tmp_path, data={"kind": "udair", "tasks": None, "val_fraction": 0.2})
    dm = RestorationDataModule(cfg.data, tmp_path, seed=1)
    dm.setup()
    assert dm.task_names == ["noise", "haze", "rain", "lowlight", "underwater"]  # folder order
    assert len(dm.train_set) == 5 * 4 and len(dm.val_set) == 5  # one held out per task
    train_names = {dm.train_set[i]["name"] for i in dm.train_set.task_indices[0]}
    val_names = {
        dm.val_set[i]["name"] for i in range(len(dm.val_set)) if dm.val_set[i]["task_id"] == 0
    }
    assert not train_names & val_names
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (10, 3, 32, 32)  # small images are upscaled to the patch
    assert batch["task_id"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_validation_items_do_not_depend_on_the_training_seed(corpus):
    from aioir.engine.datamodule import RestorationDataModule

    cfg = tiny_config(corpus)

    def val_items(seed: int):
        dm = RestorationDataModule(cfg.data, corpus, seed=seed)
        dm.setup("fit")
        return [dm.val_set[i]["input"] for i in range(3)]

    for a, b in zip(val_items(1), val_items(2)):
        torch.testing.assert_close(a, b)


def test_task_weighted_loss_trains_and_unknown_tasks_fail_early(corpus, tmp_path):
    weighted = {"l1": {"weight": 1.0, "task_weights": {"blur": 3.0, "noise": 0.5}}, "cscl": 0.2}
    cfg = tiny_config(
        corpus, losses=weighted, trainer={"max_steps": 2}, source_bank={"enabled": False}
    )
    res = train(cfg, tmp_path / "weighted", export=False)
    assert res.steps == 2
    cfg = tiny_config(corpus, losses={"l1": {"weight": 1.0, "task_weights": {"rain": 2.0}}})
    with pytest.raises(ConfigError, match=r"task_weights: 'rain' not among the training tasks"):
        train(cfg, tmp_path / "unknown", export=False)
    assert not (tmp_path / "unknown").exists()  # nothing written for a config that cannot run
    cfg = tiny_config(tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match=r"nowhere: data folder does not exist"):
        train(cfg, tmp_path / "no_data", export=False)
    assert not (tmp_path / "no_data").exists()
    (tmp_path / "empty").mkdir()
    cfg = tiny_config(tmp_path / "empty")
    with pytest.raises(DatasetLayoutError, match=r"empty: neither a photo corpus"):
        train(cfg, tmp_path / "bad_layout", export=False)
    assert not (tmp_path / "bad_layout").exists()


def test_trainable_and_retired_filter_bank_config_errors(corpus, tmp_path):
    frozen = tiny_config(corpus, model={"name": "udair-tiny", "trainable": ["filter_bnak"]})
    with pytest.raises(ConfigError, match=r"model\.trainable: 'filter_bnak' names no parameter"):
        train(frozen, tmp_path / "frozen", export=False)
    # the filter bank is fitted by `aioir fit-filter-bank`, no longer inside a training run
    with pytest.raises(ConfigError, match=r"unknown key 'filter_bank'"):
        tiny_config(corpus, filter_bank={"patches": 4})
    with pytest.raises(ConfigError, match=r"trainer\.max_steps: .*aioir fit-filter-bank"):
        tiny_config(corpus, trainer={"max_steps": 0})
    old = tiny_config(corpus, model={"name": "udair-tiny", "overrides": {"filter_bank": 6}})
    with pytest.raises(ConfigError, match=r"'filter_bank' is no longer a model argument"):
        train(old, tmp_path / "old", export=False)
    assert not (tmp_path / "old").exists()
