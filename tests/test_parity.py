"""Numerical parity with the official 3D-Speaker implementation (test oracle)."""

from __future__ import annotations

import pytest
import torch
from oracle import official

from speechbrain_eres2net import ERes2Net
from speechbrain_eres2net.lobes.eres2net_3dspeaker import (
    infer_config,
    official_to_ours,
    to_3dspeaker,
)


@pytest.fixture(scope="module")
def oracle():
    try:
        return official()
    except Exception as err:  # pragma: no cover - only without the registry
        pytest.fail(f"cannot fetch the official speakerlab==0.0.6 oracle: {err}")


def official_model(oracle, variant: str, randomize_bn) -> torch.nn.Module:
    v1, v2, huge = oracle
    torch.manual_seed({"base": 1, "large": 2, "v2": 3, "huge": 4}[variant])
    model = {
        "base": lambda: v1.ERes2Net(m_channels=32),
        "large": lambda: v1.ERes2Net(m_channels=64),
        "v2": lambda: v2.ERes2NetV2(),
        "huge": lambda: huge.ERes2Net(m_channels=64),
    }[variant]()
    return randomize_bn(model, seed=len(variant))


@pytest.mark.parametrize("variant", ["base", "large"])
@pytest.mark.parametrize("frames", [200, 1000])
def test_eval_embeddings_match_official(oracle, randomize_bn, variant, frames):
    reference = official_model(oracle, variant, randomize_bn).eval()
    ours = ERes2Net.from_3dspeaker(reference.state_dict())
    x = torch.randn(2, frames, 80)
    with torch.no_grad():
        expected = reference(x.clone())
        got = ours(x)
    assert got.shape == (2, 1, 192)
    # Same operations in the same order: the README claims bit-identical.
    assert torch.equal(got[:, 0], expected)


@pytest.mark.parametrize("variant", ["v2", "huge"])
def test_other_official_variants_match(oracle, randomize_bn, variant):
    reference = official_model(oracle, variant, randomize_bn).eval()
    ours = ERes2Net.from_3dspeaker(reference.state_dict())
    x = torch.randn(1, 120, 80)
    with torch.no_grad():
        assert torch.equal(ours(x)[:, 0], reference(x.clone()))


def test_train_mode_gradients_match_official(oracle, randomize_bn):
    reference = official_model(oracle, "base", randomize_bn).train()
    ours = ERes2Net.from_3dspeaker(reference.state_dict()).train()
    x = torch.randn(2, 120, 80)
    target = torch.randn(2, 192)
    loss_ref = ((reference(x.clone()) - target) ** 2).mean()
    loss_ours = ((ours(x)[:, 0] - target) ** 2).mean()
    loss_ref.backward()
    loss_ours.backward()
    assert abs(loss_ref.item() - loss_ours.item()) <= 1e-5
    ours_params = dict(ours.named_parameters())
    largest = max(p.grad.abs().max() for p in reference.parameters())
    for name, param in reference.named_parameters():
        mine = ours_params[official_to_ours(name)]
        # A conv bias feeding a train-mode BN has a true gradient of zero, so
        # its computed gradient is rounding noise: floor the scale.
        scale = param.grad.abs().max().clamp(min=1e-4 * largest)
        assert (mine.grad - param.grad).abs().max() / scale <= 1e-3, name
    # Running statistics are updated identically too.
    ours_state = ours.state_dict()
    for name, buffer in reference.named_buffers():
        assert torch.allclose(
            ours_state[official_to_ours(name)].float(), buffer.float(), atol=1e-5
        ), name


@pytest.mark.parametrize("variant", ["base", "large", "v2", "huge"])
def test_variant_is_inferred_and_state_dict_round_trips(oracle, randomize_bn, variant):
    reference = official_model(oracle, variant, randomize_bn)
    state = reference.state_dict()
    config = infer_config(state)
    expected = {
        "base": (32, 32, 2, 2, "bottom_up"),
        "large": (64, 32, 2, 2, "bottom_up"),
        "v2": (64, 26, 2, 2, "last"),
        "huge": (64, 24, 3, 4, "bottom_up"),
    }[variant]
    got = tuple(
        config[k]
        for k in ("m_channels", "base_width", "scale", "expansion", "global_fusion")
    )
    assert got == expected
    assert config["lff_stages"] == [3, 4] and config["num_blocks"] == [3, 4, 6, 3]
    back = to_3dspeaker(ERes2Net.from_3dspeaker(state))
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_loads_from_file_and_ddp_prefix(tmp_path, oracle, randomize_bn):
    state = official_model(oracle, "base", randomize_bn).state_dict()
    path = tmp_path / "pretrained_eres2net.ckpt"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    model = ERes2Net.from_3dspeaker(str(path))
    assert not model.training
    assert torch.equal(model.embedding.weight, state["seg_1.weight"])


def test_bad_checkpoints_name_the_offending_tensor(tmp_path):
    state = to_3dspeaker(ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]))
    missing = dict(state)
    del missing["layer3.0.fuse_models.0.local_att.3.bias"]
    with pytest.raises(
        ValueError,
        match=r"missing tensors \['layer3\.0\.fuse_models\.0\.local_att\.3\.bias'\]",
    ):
        ERes2Net.from_3dspeaker(missing)
    extra = {**state, "layer1.0.mystery.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="layer1.0.mystery.weight"):
        ERes2Net.from_3dspeaker(extra)
    shaped = {**state, "layer2.0.convs.1.weight": torch.zeros(3, 3, 3, 3)}
    with pytest.raises(
        ValueError, match=r"'layer2\.0\.convs\.1\.weight' has shape \(3, 3, 3, 3\)"
    ):
        ERes2Net.from_3dspeaker(shaped)
    with pytest.raises(ValueError, match="conv1.weight"):
        ERes2Net.from_3dspeaker({"seg_1.weight": torch.zeros(2, 2)})
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        ERes2Net.from_3dspeaker(str(tmp_path / "nowhere.ckpt"))
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt"):
        ERes2Net.from_3dspeaker(str(tmp_path / "junk.ckpt"))


@pytest.mark.parametrize("base_width", [24, 26, 32])
@pytest.mark.parametrize("m_channels", [8, 16])
def test_small_variants_round_trip_through_official_keys(m_channels, base_width):
    model = ERes2Net(
        m_channels=m_channels,
        base_width=base_width,
        num_blocks=[1, 1, 1, 1],
        global_fusion="last",
    ).eval()
    again = ERes2Net.from_3dspeaker(to_3dspeaker(model))
    assert again.global_fusion == "last"
    x = torch.randn(1, 30, 80)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
