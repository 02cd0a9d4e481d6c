"""Peak decimation and the min/max pyramid (Qt-free)."""

from __future__ import annotations

import numpy as np
import pytest

from sleepviewer.downsample import MinMaxPyramid, decimation_factor, peak_decimate


def test_no_decimation_when_few_samples():
    data = np.arange(20, dtype=np.float32).reshape(2, 10)
    dec = peak_decimate(data, sf=10.0, start_s=5.0, n_pixels=100)
    assert dec.factor == 1
    np.testing.assert_array_equal(dec.y, data)
    np.testing.assert_allclose(dec.t, 5.0 + np.arange(10) / 10.0)


def test_pairs_alternate_max_min_then_min_max():
    # 4 bins of 4 samples: values rise inside each bin
    data = np.tile(np.array([0, 1, 2, 3], np.float32), 4)[None, :] + np.repeat(
        np.arange(4) * 10, 4
    )[None, :].astype(np.float32)
    dec = peak_decimate(data, sf=1.0, start_s=0.0, n_pixels=1)
    assert dec.factor == 16 or dec.factor == 4 or dec.factor > 1
    dec = peak_decimate(np.repeat(data, 1, axis=0), sf=1.0, start_s=0.0, n_pixels=4)
    assert dec.factor == 4
    # bin b: max = 10b+3, min = 10b; order (max,min),(min,max),(max,min),(min,max)
    np.testing.assert_array_equal(dec.y[0], [3, 0, 10, 13, 23, 20, 30, 33])
    assert dec.y.shape == (1, 8)
    assert np.all(np.diff(dec.t) > 0)


def test_min_max_preserved_over_all_channels_in_one_pass():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(20, 100_003)).astype(np.float32)
    dec = peak_decimate(data, sf=256.0, start_s=0.0, n_pixels=1000)
    assert dec.y.shape[0] == 20
    np.testing.assert_array_equal(dec.y.max(axis=1), data.max(axis=1))
    np.testing.assert_array_equal(dec.y.min(axis=1), data.min(axis=1))
    assert dec.t[-1] <= 100_003 / 256.0


def test_nan_gap_breaks_the_line():
    data = np.ones((1, 4000), np.float32)
    data[0, 1000:2000] = np.nan
    dec = peak_decimate(data, sf=100.0, start_s=0.0, n_pixels=100)
    assert np.isnan(dec.y).any() and np.isfinite(dec.y).any()


def test_decimation_factor():
    assert decimation_factor(1000, 1000) == 1
    assert decimation_factor(40_000, 1000) == 40


@pytest.mark.parametrize("base_factor", [4, 16])
def test_pyramid_matches_direct_decimation(base_factor):
    rng = np.random.default_rng(1)
    sf = 64.0
    data = rng.normal(size=(3, int(sf * 3600))).astype(np.float32)
    pyr = MinMaxPyramid.build(
        lambda a, b: data[:, int(a * sf): int(b * sf)], 3600.0, 3, sf, chunk_s=500.0,
        base_factor=base_factor,
    )
    dec = pyr.query(0.0, 3600.0, 800)
    assert dec.factor >= base_factor
    np.testing.assert_allclose(dec.y.max(axis=1), data.max(axis=1))
    np.testing.assert_allclose(dec.y.min(axis=1), data.min(axis=1))
    assert dec.y.shape[1] <= 2 * 800 * 2
    assert 0 <= dec.t[0] < dec.factor / sf and dec.t[-1] <= 3600.0
    part = pyr.query(1800.0, 2400.0, 500, rows=np.array([2]))
    assert part.y.shape[0] == 1
    assert part.t[0] >= 1800.0 - part.factor / sf and part.t[-1] <= 2400.0 + part.factor / sf
    seg = data[2, int(1800 * sf): int(2400 * sf)]
    assert part.y.max() >= seg.max() - 1e-6
    assert pyr.nbytes < data.nbytes


def test_pyramid_query_before_finish_raises():
    with pytest.raises(RuntimeError):
        MinMaxPyramid(1, 1.0).query(0, 1, 10)


def test_float16_pyramid_is_close_and_widens_for_big_values():
    rng = np.random.default_rng(4)
    data = rng.normal(0, 200, (2, 256 * 600)).astype(np.float32)
    read = lambda a, b: data[:, int(a * 256) : int(b * 256)]  # noqa: E731
    exact = MinMaxPyramid.build(read, 600.0, 2, 256.0, chunk_s=60.0, base_factor=64)
    half = MinMaxPyramid.build(read, 600.0, 2, 256.0, chunk_s=60.0, base_factor=64,
                               dtype=np.float16)  # fmt: skip
    assert half.nbytes * 2 == exact.nbytes and half.dtype is np.float16
    a, b = exact.query(0, 600, 500), half.query(0, 600, 500)
    np.testing.assert_allclose(b.y, a.y, rtol=1e-3, atol=0.1)
    big = data.copy()
    big[1, 100_000] = 1e6  # a value float16 cannot hold: the pyramid goes float32
    wide = MinMaxPyramid.build(lambda a, b: big[:, int(a * 256) : int(b * 256)], 600.0, 2,
                               256.0, chunk_s=60.0, base_factor=64, dtype=np.float16)  # fmt: skip
    assert wide.dtype is np.float32 and wide.query(0, 600, 500).y.max() == 1e6
