"""Checkpoint loading: sr-edge, demo Lightning + config.json, demo .pt + config.json."""

from __future__ import annotations

import pickle

import pytest
import torch

from sr_export.checkpoints import load_checkpoint
from sr_runtime.errors import ModelMismatchError, UsageError


@pytest.mark.parametrize("kind", ["lightning", "plain"])
def test_demo_formats_reproduce_the_network(make_demo_checkpoint, kind):
    ckpt, config = make_demo_checkpoint(kind)
    loaded = load_checkpoint(ckpt, config)
    assert loaded.source_format == ("demo-lightning" if kind == "lightning"
                                    else "demo-state-dict")
    raw = torch.load(ckpt, weights_only=True)
    state = raw["state_dict"] if kind == "lightning" else raw
    for key, value in loaded.model.state_dict().items():
        stored = state.get(f"model.{key}", state.get(key))
        assert torch.equal(value, stored), key
    # the demo's final ReLU is kept: normalized outputs are never negative
    with torch.no_grad():
        out = loaded.model(torch.randn(1, 1, 6, 6) * 3)
    assert float(out.min()) >= 0.0
    spec = loaded.description.variables[0]
    assert spec.name == "t2m" and spec.units == "K"
    assert spec.lr_mean == pytest.approx(10.0072 + 273.15)  # demo stats are in deg C
    assert spec.hr_std == pytest.approx(4.2342)
    assert len(loaded.description.checkpoint_sha256) == 64


def test_demo_checkpoint_without_config(make_demo_checkpoint):
    ckpt, _ = make_demo_checkpoint()
    with pytest.raises(UsageError, match="pass --config"):
        load_checkpoint(ckpt)


def test_config_missing_values_are_named(make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint(config_overrides={"dataset.hr_std": None,
                                                          "model.n_blocks": None})
    with pytest.raises(UsageError, match=r"model\.n_blocks, dataset\.hr_std"):
        load_checkpoint(ckpt, config)


def test_wrong_architecture_names_keys_and_fix(make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint(n_blocks=2, config_overrides={"model.n_blocks": 1})
    with pytest.raises(ModelMismatchError) as err:
        load_checkpoint(ckpt, config)
    message = str(err.value)
    assert "unexpected keys" in message and "residual_blocks.1." in message
    assert "n_blocks: 2" in message and "config.json" in message


def test_channel_mismatch_suggests_n_channels(make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint(n_channels=8, config_overrides={"model.n_channels": 16})
    with pytest.raises(ModelMismatchError, match="n_channels: 8"):
        load_checkpoint(ckpt, config)


def test_foreign_architecture(tmp_path):
    path = tmp_path / "unet.pt"
    torch.save({"encoder.0.weight": torch.zeros(3, 3), "decoder.0.weight": torch.zeros(3)}, path)
    config = tmp_path / "config.json"
    config.write_text('{"model": {"large_kernel_size": 9, "small_kernel_size": 3, '
                      '"n_channels": 8, "n_blocks": 1, "scaling_factor": 8}, "dataset": '
                      '{"lr_mean": 0, "lr_std": 1, "hr_mean": 0, "hr_std": 1}}')
    with pytest.raises(ModelMismatchError, match="not an sr-edge/demo SRResNet checkpoint"):
        load_checkpoint(path, config)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": Payload()}, handle, protocol=2)
    with pytest.raises(UsageError, match="not a loadable weights-only"):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.ckpt")
