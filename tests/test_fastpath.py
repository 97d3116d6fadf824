"""The fast inference path equals the training-time model; long-audio windows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from model_builders import randomise_batchnorms  # noqa: E402

from speechbrain_eres2net import ERes2Net  # noqa: E402
from speechbrain_eres2net.inference.fastpath import (
    FastERes2Net,
    fold_batchnorms,
    optimize_for_inference,
)
from speechbrain_eres2net.inference.long import embed_long
from speechbrain_eres2net.inference.streaming import WindowMean, window_starts

MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def base() -> ERes2Net:
    torch.manual_seed(0)
    return randomise_batchnorms(ERes2Net())


@pytest.fixture(scope="module")
def fast(base: ERes2Net) -> nn.Module:
    return optimize_for_inference(base)


@pytest.fixture(scope="module")
def folded(base: ERes2Net) -> nn.Module:
    import copy

    return fold_batchnorms(copy.deepcopy(base))


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cosine_similarity(a.squeeze(1), b.squeeze(1), dim=-1)


def test_folding_removes_every_batchnorm_and_is_exact(base, folded):
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 150, 80)
    lengths = torch.tensor([1.0, 0.6])
    with torch.inference_mode():
        for args in ((x,), (x, lengths)):
            expected, got = base(*args), folded(*args)
            assert (got - expected).abs().max() < 1e-4 * expected.abs().max()


@pytest.mark.parametrize(("batch", "frames"), [(1, 600), (3, 200), (2, 37)])
def test_fast_path_matches_eager(base, fast, batch, frames):
    x = torch.randn(batch, frames, 80)
    with torch.inference_mode():
        expected, got = base(x), fast(x)
    assert got.shape == expected.shape == (batch, 1, 192)
    assert got.dtype == torch.float32
    assert cosines(got, expected).min() >= MIN_COSINE
    assert (got - expected).abs().max() < 0.02 * expected.abs().max()


def test_fast_path_is_padding_aware(base, fast):
    """A padded utterance gets its unpadded embedding, as with the eager model."""
    short, long = torch.randn(1, 120, 80), torch.randn(1, 300, 80)
    batch = torch.cat([long, nn.functional.pad(short, (0, 0, 0, 180))])
    lengths = torch.tensor([1.0, 120 / 300])
    with torch.inference_mode():
        padded = fast(batch, lengths)
        alone = fast(short)
        eager = base(batch, lengths)
        unaware = fast(batch)
    assert cosines(padded[1:], alone).item() >= MIN_COSINE
    assert cosines(padded, eager).min() >= MIN_COSINE
    # Without lengths the padding changes the embedding far beyond bf16 error.
    error = (padded[1:] - alone).abs().max()
    assert (unaware[1:] - alone).abs().max() > 10 * error


def test_original_model_untouched(base):
    before = {k: v.clone() for k, v in base.state_dict().items()}
    optimize_for_inference(base, precision="fp32")
    after = base.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, nn.BatchNorm2d) for m in base.modules())


def test_fp32_fast_path_is_near_exact(base):
    fast32 = optimize_for_inference(base, precision="fp32", engine="torch")
    assert isinstance(fast32, FastERes2Net) and not fast32.bf16
    assert fast32.min_frames == base.min_frames
    x = torch.randn(2, 100, 80)
    with torch.inference_mode():
        expected = base(x)
        assert (fast32(x) - expected).abs().max() < 1e-4 * expected.abs().max()


def test_bf16_fallback_when_check_fails(base):
    """An unreachable cosine threshold makes the builder fall back to fp32."""
    with pytest.warns(UserWarning, match="using fp32"):
        fallback = optimize_for_inference(
            base, example_frames=50, precision="bf16", min_cosine=1.5
        )
    assert not fallback.bf16


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_graph_is_traced_once_then_read_from_the_cache(
    engine, tmp_path, monkeypatch
):
    """Second load: no export, same bits; a damaged entry is rebuilt."""
    from speechbrain_eres2net.inference import onnx_engine
    from speechbrain_eres2net.inference.fastpath import engine_available

    if not engine_available(engine):
        pytest.skip(f"{engine} is not installed")
    monkeypatch.setenv("ERES2NET_CACHE", str(tmp_path))
    exports = []
    trace = onnx_engine.onnx_graph

    def counted(*args, **kwargs):
        exports.append(1)
        return trace(*args, **kwargs)

    monkeypatch.setattr(onnx_engine, "onnx_graph", counted)
    torch.manual_seed(0)
    model = randomise_batchnorms(ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]))
    x, lengths = torch.randn(2, 120, 80), torch.tensor([1.0, 0.7])

    def load_and_embed():
        fast = optimize_for_inference(model, engine=engine)
        assert fast.engine == engine
        with torch.inference_mode():
            return fast(x, lengths)

    first = load_and_embed()
    assert len(exports) == 1
    (entry,) = tmp_path.iterdir()
    assert torch.equal(load_and_embed(), first)
    assert len(exports) == 1  # read from the cache, not traced again
    entry.write_bytes(entry.read_bytes()[:-64])  # a torn or damaged file
    assert torch.equal(load_and_embed(), first)
    assert len(exports) == 2
    assert torch.equal(load_and_embed(), first)
    assert len(exports) == 2  # the rebuilt entry is read again
    other = randomise_batchnorms(
        ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]), seed=1
    )
    optimize_for_inference(other, engine=engine)
    assert len(exports) == 3 and len(list(tmp_path.iterdir())) == 2


def test_unwritable_cache_only_costs_the_build(tmp_path, monkeypatch):
    from speechbrain_eres2net.inference.graph_cache import cached_graph

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ERES2NET_CACHE", str(blocker / "cache"))
    assert cached_graph(lambda: b"graph", "key") == b"graph"


def test_bad_arguments():
    with pytest.raises(TypeError, match="ERes2Net"):
        optimize_for_inference(nn.Linear(2, 2))
    small = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    with pytest.raises(ValueError, match="precision"):
        optimize_for_inference(small, precision="fp16")
    with pytest.raises(ValueError, match="example_frames"):
        optimize_for_inference(small, example_frames=4)


@pytest.mark.parametrize(
    ("frames", "window", "hop"),
    [(2500, 1000, 1000), (3000, 1000, 1000), (2999, 1000, 300), (10, 1000, 500)],
)
def test_windows_cover_every_frame_with_equal_length(frames, window, hop):
    starts = window_starts(frames, window, hop)
    length = min(window, frames)
    covered = torch.zeros(frames, dtype=torch.bool)
    for start in starts:
        assert start >= 0 and start + length <= frames
        covered[start : start + length] = True
    assert covered.all()
    assert starts == sorted(set(starts))


def test_deprecated_embed_long_combines_windows_as_embed_stream_does():
    """Frame windows placed by window_starts, mean direction x mean norm."""
    torch.manual_seed(1)
    model = randomise_batchnorms(ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]))
    feats = torch.randn(530, 80)
    with torch.inference_mode():
        windows = [model(feats[s : s + 200].unsqueeze(0)) for s in (0, 200, 330)]
        units = torch.stack(
            [nn.functional.normalize(w.flatten(), dim=0) for w in windows]
        )
        norms = torch.stack([w.flatten().norm() for w in windows])
        expected = nn.functional.normalize(units.sum(0), dim=0) * norms.mean()
        with pytest.warns(DeprecationWarning, match="embed_long is deprecated"):
            got = embed_long(model, feats, window_frames=200, batch_size=2)
        assert got.shape == (1, 1, 192)
        torch.testing.assert_close(got.flatten(), expected, atol=1e-5, rtol=1e-4)
        # The same rule as the streaming embedder's, window by window.
        mean = WindowMean()
        for w in windows:
            mean.add(w.flatten())
        torch.testing.assert_close(got.flatten(), mean.result(), atol=1e-5, rtol=1e-4)
        # Batching windows differently changes nothing.
        one = embed_long(model, feats.unsqueeze(0), window_frames=200, batch_size=1)
        torch.testing.assert_close(one, got, atol=1e-5, rtol=1e-4)
        # Shorter than a window: the embedding of the whole input.
        short = embed_long(model, feats[:150], window_frames=200)
        torch.testing.assert_close(short, model(feats[:150].unsqueeze(0)))


def test_embed_long_rejects_bad_input():
    model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    with pytest.raises(ValueError, match="feats"):
        embed_long(model, torch.randn(2, 100, 80))
    with pytest.raises(ValueError, match="batch_size"):
        embed_long(model, torch.randn(100, 80), batch_size=0)
    with pytest.raises(ValueError, match="normalize=False"):
        embed_long(model, torch.randn(100, 80), normalize=False)
    with pytest.raises(ValueError, match="hop"):
        window_starts(100, 50, 0)
