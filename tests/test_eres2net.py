"""The ERes2Net lobe: shapes, lengths, padding invariance, errors, YAML, ablations."""

from __future__ import annotations

import io

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_eres2net import AFF, ERes2Net, SumFusion
from speechbrain_eres2net.lobes.fusion import ConcatFusion

TINY = {"m_channels": 8, "num_blocks": [1, 1, 1, 1]}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_paper_variants():
    # Spec section 7: measured on the official code (feat_dim 80, E 192).
    assert n_params(ERes2Net()) == 6_610_688
    assert n_params(ERes2Net(m_channels=64)) == 22_462_784


def test_output_shape_follows_speechbrain_lobe_convention():
    model = ERes2Net(embedding_size=64, **TINY).eval()
    out = model(torch.randn(3, 57, 80), torch.tensor([1.0, 0.5, 0.3]))
    assert out.shape == (3, 1, 64)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"global_fusion": "last"},
        {"global_fusion": "none", "lff_stages": []},
        {"fusion": "concat", "lff_stages": [1, 2, 3, 4]},
        {"fusion": "sum"},
    ],
    ids=["paper", "v2-fusion", "plain-res2net", "concat", "sum"],
)
def test_padding_does_not_change_an_utterance_embedding(config, randomize_bn):
    torch.manual_seed(0)
    model = randomize_bn(
        ERes2Net(m_channels=8, num_blocks=[2, 1, 2, 1], **config)
    ).eval()
    lengths = [203, 150, 117, 64, 9, 10]
    feats = [torch.randn(n, 80) for n in lengths]
    batch = torch.full(
        (len(feats), max(lengths), 80), 7.0
    )  # padding is garbage, not zeros
    for i, f in enumerate(feats):
        batch[i, : len(f)] = f
    rel = torch.tensor(lengths, dtype=torch.float) / max(lengths)
    with torch.no_grad():
        together = model(batch, rel)[:, 0]
        alone = torch.cat([model(f.unsqueeze(0))[:, 0] for f in feats])
    cosine = torch.nn.functional.cosine_similarity(together, alone)
    assert cosine.min() >= 0.9999, cosine
    assert (together - alone).abs().max() < 1e-4


def test_without_lengths_padding_leaks_like_the_official_model():
    # Guards the test above: it would pass trivially if padding never mattered.
    torch.manual_seed(0)
    model = ERes2Net(**TINY).eval()
    x = torch.randn(1, 100, 80)
    padded = torch.cat([x, torch.zeros(1, 40, 80)], dim=1)
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(model(x)[:, 0], model(padded)[:, 0])
    assert cos < 0.9999


def test_full_lengths_equal_no_lengths():
    model = ERes2Net(**TINY).eval()
    x = torch.randn(2, 64, 80)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, torch.ones(2)))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = ERes2Net(m_channels=8, num_blocks=[2, 2, 2, 2], fusion="aff").train()
    out = model(torch.randn(4, 40, 80), torch.tensor([1.0, 0.9, 0.7, 0.5]))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feat_dim": 81}, "multiple of 8"),
        ({"feat_dim": 60}, "multiple of 8"),
        ({"num_blocks": [3, 4, 6]}, "num_blocks"),
        ({"fusion": "gated"}, "fusion"),
        ({"lff_stages": [5]}, "lff_stages"),
        ({"global_fusion": "top_down"}, "global_fusion"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ERes2Net(**{**TINY, **kwargs})


def test_bad_inputs_are_clear_errors():
    model = ERes2Net(**TINY).eval()
    with pytest.raises(ValueError, match=r"at least 9 frames.*8 frames"):
        model(torch.randn(1, 8, 80))
    with pytest.raises(ValueError, match=r"feat_dim=80"):
        model(torch.randn(1, 50, 64))
    with pytest.raises(ValueError, match=r"feat_dim=80"):
        model(torch.randn(50, 80))
    with pytest.raises(ValueError, match=r"lengths must have shape \(batch=2,\)"):
        model(torch.randn(2, 50, 80), torch.ones(3))
    with pytest.raises(ValueError, match=r"utterance 1 has 5"):
        model(torch.randn(2, 50, 80), torch.tensor([1.0, 0.1]))
    # Nine frames is the documented minimum and must give a finite embedding.
    assert torch.isfinite(model(torch.randn(1, 9, 80))).all()


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ERes2Net(**TINY).eval()
    torch.save(model.state_dict(), tmp_path / "model.ckpt")
    again = ERes2Net(**TINY).eval()
    again.load_state_dict(torch.load(tmp_path / "model.ckpt"), strict=True)
    x = torch.randn(2, 30, 80)
    assert torch.equal(model(x), again(x))


def test_yaml_instantiation_with_ablation_switches():
    yaml = """
    embedding_model: !new:speechbrain_eres2net.ERes2Net
        feat_dim: 80
        embedding_size: 32
        m_channels: 8
        num_blocks: [1, 1, 1, 1]
        lff_stages: []
        fusion: concat
        global_fusion: false
    lff_model: !new:speechbrain_eres2net.lobes.eres2net.ERes2Net
        m_channels: 8
        num_blocks: [1, 1, 1, 1]
    """
    hparams = load_hyperpyyaml(io.StringIO(yaml))
    plain = hparams["embedding_model"]
    assert isinstance(plain, ERes2Net)
    assert len(plain.downsamples) == 0 and len(plain.global_fusions) == 0
    assert not any(isinstance(m, (AFF, ConcatFusion)) for m in plain.modules())
    paper = hparams["lff_model"]
    assert len(paper.global_fusions) == 3
    assert all(isinstance(f, AFF) for f in paper.global_fusions)
    assert sum(isinstance(m, AFF) for m in paper.stages[2].modules()) == 1
    assert sum(isinstance(m, AFF) for m in paper.stages[0].modules()) == 0
    assert plain(torch.randn(1, 20, 80)).shape == (1, 1, 32)


def test_lff_stage_selection_places_aff_blocks_only_there():
    model = ERes2Net(m_channels=8, num_blocks=[1, 2, 1, 1], lff_stages=[2])
    for k, stage in enumerate(model.stages):
        kinds = {type(f) for block in stage for f in block.fusions}
        assert kinds == ({AFF} if k == 1 else {SumFusion})


def test_aff_with_zero_attention_is_plain_sum():
    torch.manual_seed(0)
    fuse = AFF(16).eval()
    with torch.no_grad():
        fuse.attention[4].weight.zero_()
        fuse.attention[4].bias.zero_()
    x, y = torch.randn(2, 16, 4, 5), torch.randn(2, 16, 4, 5)
    assert torch.allclose(fuse(x, y), x + y, atol=1e-6)


def test_aff_matches_its_closed_form():
    torch.manual_seed(0)
    fuse = AFF(8).eval()
    x, y = torch.randn(2, 8, 3, 7), torch.randn(2, 8, 3, 7)
    logits = fuse.attention(torch.cat((x, y), dim=1))
    expected = (x + y) + torch.tanh(logits) * (x - y)
    assert torch.allclose(fuse(x, y), expected, atol=1e-5)
    # Argument order matters: x receives the gate.
    assert not torch.allclose(fuse(x, y), fuse(y, x), atol=1e-3)


def _saved_bytes(fn) -> int:
    """Bytes of distinct storages autograd keeps for backward while ``fn`` runs."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values())


def test_aff_training_backward_matches_autograd_and_keeps_less():
    from speechbrain_eres2net.lobes.fusion import _gated_mix

    torch.manual_seed(0)
    x, y, logits = (torch.randn(2, 8, 5, 9, requires_grad=True) for _ in range(3))
    grad = torch.randn(2, 8, 5, 9)

    def plain():
        return _gated_mix(x, y, torch.tanh(logits))

    def lean():
        from speechbrain_eres2net.lobes.fusion import _GatedMix

        return _GatedMix.apply(x, y, logits)

    expected = torch.autograd.grad(plain(), (x, y, logits), grad)
    got = torch.autograd.grad(lean(), (x, y, logits), grad)
    assert torch.equal(plain(), lean())
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)
    # Plain autograd keeps g, 2 - g and tanh(a) beside x and y; lean only t.
    one_map = x.numel() * x.element_size()
    assert _saved_bytes(plain) - _saved_bytes(lean) == 2 * one_map


def test_training_yaml_exposes_the_ablations_as_overrides():
    from conftest import REPO

    overrides = {
        "data_folder": "/nonexistent",
        "lff_stages": [],
        "global_fusion": "none",
        "fusion": "sum",
    }
    with open(REPO / "hparams" / "train_eres2net_base.yaml") as f:
        hparams = load_hyperpyyaml(f, overrides)
    model = hparams["embedding_model"]
    assert len(model.global_fusions) == 0
    assert not any(isinstance(m, AFF) for m in model.modules())
    with open(REPO / "hparams" / "train_eres2net_base.yaml") as f:
        paper = load_hyperpyyaml(f, {"data_folder": "/nonexistent"})["embedding_model"]
    assert sum(p.numel() for p in paper.parameters()) == 6_610_688
