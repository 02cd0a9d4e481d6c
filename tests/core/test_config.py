"""Config overrides: ``sleeplm train/finetune --set SECTION.KEY=VALUE``."""

from __future__ import annotations

import pytest


def test_set_overrides_change_one_setting_and_name_bad_ones() -> None:
    from sleeplm_core.errors import ConfigError
    from sleeplm_core.model.config import load_config, with_overrides

    base = load_config("sleeplm-tiny")
    cfg = with_overrides(base, ["train.augment_prob=0.8", "train.modalities=[\"brain\"]"])
    assert cfg.train.augment_prob == 0.8 and cfg.train.modalities == ["brain"]
    assert base.train.augment_prob == 0.5  # the original is left alone
    with pytest.raises(ConfigError, match="signal.width: unknown|only train, loss"):
        with_overrides(base, ["signal.width=128"], sections=("train", "loss"))
    with pytest.raises(ConfigError, match="train.nope: unknown key"):
        with_overrides(base, ["train.nope=1"])
    with pytest.raises(ConfigError, match="expected SECTION.KEY=VALUE"):
        with_overrides(base, ["augment_prob"])
    with pytest.raises(ConfigError, match="train.batch_size: expected int"):
        with_overrides(base, ["train.batch_size=big"])
