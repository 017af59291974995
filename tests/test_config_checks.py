"""core.config_checks: the warnings across fields (valid values that will not do what they seem to), and a
config's differences from the lab preset; the headless CLI prints the warnings when a run starts."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import make_folder, run_in_process

from resnet_tui.core.config import FIELDS, RUN_FIELDS, TrainConfig, build_config
from resnet_tui.core.config_checks import cross_field_warnings, differences_from_lab


def warnings_of(**changes) -> dict[str, str]:
    return cross_field_warnings(TrainConfig(**changes).to_dict())


def test_the_lab_and_fast_presets_and_the_real_data_folder_warn_of_nothing(cifar_dir: Path) -> None:
    assert warnings_of() == {}
    assert cross_field_warnings(build_config({}, {"preset": "fast"}).to_dict()) == {}
    assert cross_field_warnings(build_config({}, {"preset": "fast"}, device_type="cuda").to_dict()) == {}
    assert warnings_of(data=str(cifar_dir)) == {}
    for source in ("auto", "cifar10", "sample"):
        assert warnings_of(data=source) == {}


def test_a_warm_up_as_long_as_the_run_warns_that_the_lr_never_decays() -> None:
    warned = warnings_of(schedule="warmup-linear", warmup_epochs=2.0, epochs=1)
    assert warned == {"warmup_epochs": "warm-up 2 epochs >= 1 epoch: the lr never decays"}
    assert "warmup_epochs" in warnings_of(schedule="warmup-linear", warmup_epochs=3.0, epochs=3)
    assert warnings_of(schedule="warmup-linear", warmup_epochs=2.5, epochs=3) == {}
    assert warnings_of(schedule="constant", warmup_epochs=2.0, epochs=1) == {
        "warmup_epochs": "ignored with the constant schedule"}


def test_nesterov_without_momentum_and_momentum_with_adam_are_ignored_and_say_so() -> None:
    assert warnings_of(nesterov=True, momentum=0.0) == {"nesterov": "ignored with momentum 0: Nesterov needs momentum"}
    assert warnings_of(nesterov=True, momentum=0.9) == {}
    for optimizer in ("adam", "adamw"):
        warned = warnings_of(optimizer=optimizer, momentum=0.9)
        assert warned == {"momentum": f"ignored by {optimizer} (it has its own betas)"}
    assert warnings_of(optimizer="rmsprop", momentum=0.9) == {}  # RMSprop uses it
    assert "nesterov" in warnings_of(optimizer="rmsprop", momentum=0.9, nesterov=True)


def test_a_data_path_that_is_not_an_image_folder_is_marked(tmp_path: Path, cifar_dir: Path) -> None:
    assert warnings_of(data=str(tmp_path / "40")) == {"data": "no such folder"}
    assert warnings_of(data="40") == {"data": "no such folder"}  # relative: to the working directory
    (tmp_path / "file").write_text("x")
    assert warnings_of(data=str(tmp_path / "file")) == {"data": "not a folder"}
    assert warnings_of(data=str(tmp_path)) == {"data": "no train/ and test/ folders in it"}
    folder = make_folder(cifar_dir, tmp_path / "imgs", classes=("cat", "dog"), n_train=1, n_test=1)
    assert warnings_of(data=str(folder)) == {}


def test_a_partial_mapping_counts_missing_fields_as_their_defaults() -> None:
    assert cross_field_warnings({"warmup_epochs": 1.0, "schedule": "warmup-linear"}) == {
        "warmup_epochs": "warm-up 1 epoch >= 1 epoch: the lr never decays"}
    assert cross_field_warnings({}) == {}


def test_differences_from_lab_name_every_learning_field_the_fast_preset_changes() -> None:
    fast = build_config({}, {"preset": "fast"}).to_dict()
    names = [name for name, _, _ in differences_from_lab(fast)]
    assert names == ["preset", "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                     "warmup_epochs", "label_smoothing", "augment", "tta"]
    found = {name: (value, lab) for name, value, lab in differences_from_lab(fast)}
    assert found["nesterov"] == (True, False)
    assert found["lr"] == (0.025, 0.001)
    assert found["schedule"] == ("warmup-linear", "constant")
    gpu = {name for name, _, _ in differences_from_lab(build_config({}, {"preset": "fast"}, device_type="cuda").to_dict())}
    assert "compile" in gpu


def test_differences_from_lab_leave_out_run_fields_and_follow_fields_order() -> None:
    assert differences_from_lab(TrainConfig().to_dict()) == []
    run_only = TrainConfig(data="sample", device="cpu", limit_train=10, limit_eval=10, on_hangup="stop",
                           resume_every=5.0, lens_every=0)
    assert differences_from_lab(run_only.to_dict()) == []
    changed = TrainConfig(layers=(1, 1, 1), seed=7, skip=False, epochs=3).to_dict()
    assert differences_from_lab(changed) == [
        ("epochs", 3, 1), ("seed", 7, 1234), ("layers", [1, 1, 1], (2, 2, 2)), ("skip", False, True)]
    assert differences_from_lab({**changed, "layers": (2, 2, 2)})[-1] == ("skip", False, True)  # a tuple or a list
    order = [f.name for f in FIELDS if f.name not in RUN_FIELDS]
    names = [n for n, _, _ in differences_from_lab(build_config({}, {"preset": "fast", "seed": 1}).to_dict())]
    assert names == sorted(names, key=order.index)


def test_the_headless_cli_prints_each_warning_when_a_run_starts(capsys, tiny, cifar_dir: Path, tmp_path: Path) -> None:
    # what the headless CLI prints, from cli.main in this process (the warnings are not about the process)
    proc = run_in_process(capsys, "--no-ui", "train", *tiny(cifar_dir, limit_train=32, limit_eval=20), "--epochs", "1",
               "--schedule", "warmup-linear", "--warmup-epochs", "2", "--nesterov", "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("[WARNING] --")]
    assert warnings == ["[WARNING] --nesterov: ignored with momentum 0: Nesterov needs momentum",
                        "[WARNING] --warmup-epochs: warm-up 2 epochs >= 1 epoch: the lr never decays"]
