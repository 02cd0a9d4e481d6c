"""The published SleepLM-Base port: parity with the authors' code, import, CLI, fine-tuning.

Parity data (``../shared/data/sleeplm-base-reference``) was produced by the authors' own code;
those tests skip when it is absent. Everything else runs on a tiny random model of the same
classes made by the tests.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sleeplm_core.cli.main import main
from sleeplm_core.errors import CheckpointError, ConfigError
from sleeplm_core.published.config import config_from_dict, load_config
from sleeplm_core.published.model import PublishedCoCa
from tests.core.published_helpers import REF, TINY, tiny_imported, tiny_pt
from tests.core.test_inference import small_night

pytestmark = pytest.mark.usefixtures("torch_one_thread")
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="../shared parity data is not present")


@pytest.fixture(scope="module")
def small_ref() -> tuple[PublishedCoCa, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    if not REF.is_dir():
        pytest.skip("../shared parity data is not present")
    model = PublishedCoCa(load_config(REF / "small" / "config.json")).eval()
    model.load_state_dict(load_file(REF / "small" / "model.safetensors"), strict=True)
    return model, load_file(REF / "small" / "io.safetensors")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_imported(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_night(tmp_path_factory.mktemp("published-night"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- parity with the authors' code -----------------------------------------------------------


@needs_ref
def test_parity_features_and_logits(small_ref) -> None:
    model, io = small_ref
    with torch.no_grad():
        out = model(io["signals"], io["text_ids"], io["channel_indices"])
        memory = model.encode_signal(io["signals"])[1]
        encode_text = model.encode_text(io["text_ids"])
    torch.testing.assert_close(out["signal_features"], io["image_features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["text_features"], io["text_features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(encode_text, io["encode_text"], atol=1e-5, rtol=0)
    torch.testing.assert_close(memory, io["image_embs"], atol=1e-5, rtol=0)
    logits = out["caption_logits"]
    torch.testing.assert_close(logits[:, :8], io["logits_first8"], atol=1e-4, rtol=0)
    assert torch.equal(logits.argmax(-1), io["logits_argmax"])
    lse = torch.logsumexp(logits, -1)
    torch.testing.assert_close(lse, io["logits_logsumexp"], atol=1e-4, rtol=0)
    assert float(out["logit_scale"]) == pytest.approx(float(io["logit_scale"][0]))


@needs_ref
def test_parity_greedy_and_beam_generation(small_ref) -> None:
    from sleeplm_core.published.generation import greedy, group_beam_search

    model, io = small_ref
    with torch.no_grad():
        memory = model.encode_signal(io["signals"][:2])[1]
    mods = io["channel_indices"][:2]
    got = greedy(model, memory, mods, max_len=24, min_len=8)
    assert torch.equal(got, io["generate_greedy"])
    got = group_beam_search(model, memory, mods, num_beams=3, num_groups=3, max_len=24, min_len=8)
    assert torch.equal(got, io["generate_beam"])


@needs_ref
def test_tokenizer_parity() -> None:
    from sleeplm_core.published.tokenizer import ClipTokenizer

    ref = json.loads((REF / "small" / "tokenizer.json").read_text(encoding="utf-8"))
    ids = ClipTokenizer(ref["context_length"]).ids(ref["strings"])
    assert ids.tolist() == ref["ids"]


@needs_ref
def test_full_model_has_the_manifest_keys_shapes_and_size() -> None:
    manifest = json.loads((REF / "manifest_full.json").read_text(encoding="utf-8"))
    with torch.device("meta"):
        model = PublishedCoCa(load_config("sleeplm-base-published"))
    keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert keys == [(k, shape) for k, shape, _ in manifest["keys"]]
    assert manifest["n_params"] == 385_408_033


def test_full_model_parameter_count() -> None:
    with torch.device("meta"):
        model = PublishedCoCa(load_config("sleeplm-base-published"))
    assert sum(p.numel() for p in model.parameters()) == 385_408_033
    assert len(model.state_dict()) == 557
    assert not any(k.startswith("signal_decoder") for k in model.state_dict())


def test_decode_rejoins_numbers_and_stage_names() -> None:
    from sleeplm_core.published.tokenizer import ClipTokenizer

    tok = ClipTokenizer()
    text = "The Hypopnea event is documented from 0.0 to 5.6 seconds. Stable Light Sleep (N2)."
    # CLIP's tokenizer is lower-case; numbers, stage names and sentence starts come back
    want = "The hypopnea event is documented from 0.0 to 5.6 seconds. Stable light sleep (N2)."
    assert tok.decode(tok.ids([text])[0].tolist()) == want


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c["biosignals_cfg"].update(architecture="conv_transformer"), "pure_transformer"),
        (lambda c: c["text_cfg"].update(layers="two"), "wrong type"),
        (lambda c: c["text_cfg"].update(width=2**30), "out of range"),
        (lambda c: c["biosignals_cfg"].update(colour=3), "unknown key"),
        (lambda c: c.update(decoder_type="concat"), "cross_attention"),
        (lambda c: c.pop("text_cfg"), "must be an object"),
    ],
)
def test_bad_configs_are_refused(change, words) -> None:
    cfg = json.loads(json.dumps(TINY))
    change(cfg)
    with pytest.raises(ConfigError, match=words):
        config_from_dict(cfg)


def test_named_config_roundtrips() -> None:
    cfg = load_config("sleeplm-base-published")
    assert config_from_dict(cfg.to_dict()) == cfg
    assert (cfg.prefix_len, cfg.num_caption_channels, cfg.embed_dim) == (2, 5, 512)
    with pytest.raises(ConfigError, match="no published config"):
        load_config("sleeplm-huge")


# --- preprocessing ---------------------------------------------------------------------------


def test_model_input_zscores_and_codes_position() -> None:
    from sleeplm_core.published.preprocess import to_model_input

    rng = np.random.default_rng(0)
    windows = rng.normal(5.0, 30.0, (2, 12, 1920)).astype(np.float32)
    windows[:, 9] = np.repeat([0.0, 1.0, 2.0, 3.0], 480)  # NSRR: right, supine, left, prone
    windows[1, 9, :10] = 7.0  # a code the coding does not know
    mask = np.ones(12, bool)
    mask[3] = False  # no airflow
    x = to_model_input(windows, mask)
    assert x.shape == (2, 10, 1920)
    np.testing.assert_allclose(x[:, 6].mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(x[:, 6].std(-1), 1.0, atol=1e-4)
    assert not x[:, 3].any()
    # released codes: 0 right, 1 left, 2 supine, 3 prone, -1 unknown
    assert x[0, 9, [0, 480, 960, 1440]].tolist() == [0.0, 2.0, 1.0, 3.0]
    assert x[1, 9, 0] == -1.0
    windows[0, 9] = np.linspace(-0.3, 0.0, 1920)  # a position sensor's voltage, not a code
    assert (to_model_input(windows, mask)[0, 9] == -1.0).all()


# --- import ----------------------------------------------------------------------------------


def test_import_strips_module_prefix_and_loads(tmp_path, capsys) -> None:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.published.predictor import PublishedPredictor

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    pt = tiny_pt(tmp_path / "model_checkpoint.pt", wrap=False)
    code, out, err = _run(capsys, "models", "import", str(pt), "--config", str(cfg),
                          "--out", str(tmp_path / "imported"))  # fmt: skip
    assert code == 0, err
    meta = json.loads((tmp_path / "imported" / "meta_000000.json").read_text())
    assert meta["family"] == "published" and len(meta["weights_sha256"]) == 64
    assert meta["imported_from"] == "model_checkpoint.pt"
    pred = Predictor.load(tmp_path / "imported", "cpu")
    assert isinstance(pred, PublishedPredictor)
    original = torch.load(pt, weights_only=True)
    for key, value in pred.model.state_dict().items():
        assert torch.equal(value, original["module." + key])


class Evil:
    """Unpickling this would create a file: it must never run."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (self.flag,))


@pytest.mark.parametrize("how", ["missing", "shape", "extra", "object", "garbage", "nan"])
def test_import_refuses_bad_files_with_one_line(tmp_path, capsys, how) -> None:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    pt = tiny_pt(tmp_path / "x.pt", wrap=False)
    state = torch.load(pt, weights_only=True)
    flag = tmp_path / "pwned"
    if how == "missing":
        state.pop("module.text.cls_emb")
    elif how == "shape":
        state["module.channel_embeddings"] = torch.zeros(12, 32)
    elif how == "extra":
        state["module.signal_decoder.weight"] = torch.zeros(3)
    elif how == "nan":
        state["module.logit_scale"] = torch.tensor(float("nan"))
    if how == "object":
        with open(pt, "wb") as fh:
            pickle.dump({"state_dict": state, "hook": Evil(flag)}, fh)
        torch.save({"state_dict": state, "hook": Evil(flag)}, pt)
    elif how == "garbage":
        pt.write_bytes(b"not a torch file at all")
    else:
        torch.save(state, pt)
    code, out, err = _run(capsys, "models", "import", str(pt), "--config", str(cfg),
                          "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and str(pt) in err and "Traceback" not in err
    words = {"missing": "text.cls_emb is missing", "shape": "channel_embeddings has shape",
             "extra": "unexpected weight signal_decoder", "nan": "NaN",
             "object": "other than tensors", "garbage": "not a plain PyTorch"}  # fmt: skip
    assert words[how] in err
    assert not flag.exists()  # nothing was executed
    assert not (tmp_path / "out" / "meta_000000.json").exists()


def test_pull_offline_fails_at_once_with_the_import_hint(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = _run(capsys, "models", "pull", "sleeplm-base", "--out", str(tmp_path / "m"))
    assert code == 2 and err.count("\n") == 1
    assert "sleeplm models import model_checkpoint.pt" in err
    code, _, err = _run(capsys, "models", "pull", "gpt-5", "--out", str(tmp_path / "m"))
    assert code == 2 and "no downloadable model" in err


def test_models_list_shows_bundled_and_imported(imported, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SLEEPLM_MODELS_DIR", str(imported.parent))
    code, out, err = _run(capsys, "models", "list", "--json")
    assert code == 0, err
    rows = {m["name"]: m for m in json.loads(out)["models"]}
    assert rows["tiny-imported"]["family"] == "published"
    assert rows["tiny-imported"]["kind"] == "imported"
    assert any(m["kind"] == "bundled" for m in rows.values())


def test_changed_weights_are_refused_by_their_hash(imported, tmp_path) -> None:
    import shutil

    from sleeplm_core.published.checkpoint import load_published

    copy = tmp_path / "copy"
    shutil.copytree(imported, copy)
    weights = copy / "model_000000.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_published(copy)


# --- inference through the Predictor contract ------------------------------------------------


def test_cli_stage_search_caption_with_an_imported_model(imported, night, capsys) -> None:
    code, out, err = _run(capsys, "stage", str(night), "--checkpoint", str(imported), "--json")
    assert code == 0, err
    epochs = json.loads(out)["epochs"]
    assert len(epochs) == 12 and {e["stage"] for e in epochs} <= {"W", "N1", "N2", "N3", "REM"}
    assert all(abs(sum(e["proba"].values()) - 1.0) < 1e-4 for e in epochs)
    code, out, err = _run(capsys, "search", str(night), "obstructive apnea", "--checkpoint",
                          str(imported), "--json", "--min-score", "-1", "--top", "2")  # fmt: skip
    assert code == 0, err
    segments = json.loads(out)["segments"]
    assert len(segments) == 1 and segments[0]["duration_s"] > 0  # all windows merge into one
    assert segments[0]["caption"].strip()  # the stage_event caption that refined it
    code, out, err = _run(capsys, "caption", str(night), "--epoch", "2", "--checkpoint",
                          str(imported), "--json", "--modality", "stage_event")  # fmt: skip
    assert code == 0, err
    caps = json.loads(out)["captions"]
    assert len(caps) == 1 and caps[0]["modality"] == "stage_event" and caps[0]["text"].strip()


def test_generation_maps_modalities_and_refuses_prompts(imported) -> None:
    from sleeplm_core.errors import SleepLMError
    from sleeplm_core.inference import Predictor

    pred = Predictor.load(imported, "cpu")
    windows = np.random.default_rng(1).normal(0, 20, (2, 12, 1920)).astype(np.float32)
    mask = np.ones(12, bool)
    assert len(pred.generate(windows, mask, "somatic", beam=1)) == 2
    with pytest.raises(SleepLMError, match="no caption modality"):
        pred.generate(windows, mask, "dreams")
    with pytest.raises(SleepLMError, match="no prompt"):
        pred.generate(windows, mask, "brain", prompt="the EEG shows")


def test_event_spans_are_parsed_from_captions() -> None:
    from sleeplm_core.published.prompts import event_spans

    text = ("Sleep stage evaluation reveals Stable Light Sleep (N2) for this epoch. A Arousal "
            "event occurs from 0.0 to 9.8 seconds. The Oxygen Desaturation event lasts from "
            "14.2 to 30.0 seconds.")  # fmt: skip
    assert event_spans(text) == [("Arousal", 0.0, 9.8), ("Oxygen Desaturation", 14.2, 30.0)]
    assert event_spans("No sleep-disordered breathing events were detected.") == []


def test_api_encodes_and_captions() -> None:
    from sleeplm_core.published import PublishedSleepLM

    m = PublishedSleepLM.from_config(config_from_dict(TINY))
    x = np.random.default_rng(0).normal(size=(3, 10, 1920)).astype(np.float32)
    e = m.encode_signals(x)
    t = m.encode_texts(["Sleep stage analysis shows Wake for this epoch.", "REM"])
    assert e.shape == (3, 16) and t.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    caps = m.caption(x[:1], "brain", method="greedy", max_len=12, min_len=4)
    assert len(caps) == 1 and isinstance(caps[0], str)
    with pytest.raises(ValueError, match="signals must be"):
        m.encode_signals(x[:, :8])


# --- fine-tuning -----------------------------------------------------------------------------


def test_finetune_cli_trains_the_unfrozen_towers(imported, tmp_path, capsys) -> None:
    from sleeplm_core.published.checkpoint import load_published

    out_dir = tmp_path / "ft"
    code, out, err = _run(capsys, "finetune", "--checkpoint", str(imported), "--synthetic", "1",
                          "--out", str(out_dir), "--steps", "2", "--batch-size", "4",
                          "--freeze", "text", "--no-progress", "--lr", "0.001")  # fmt: skip
    assert code == 0, err
    before, _ = load_published(imported)
    after, meta = load_published(out_dir)
    assert meta["family"] == "published" and meta["freeze"] == ["text"]
    b, a = before.state_dict(), after.state_dict()
    assert all(torch.equal(b[k], a[k]) for k in b if k.startswith("text."))
    key = "biosignals.proj_to_embed.weight"
    assert not torch.equal(b[key], a[key])
    assert not torch.equal(b["text_decoder.text_projection"], a["text_decoder.text_projection"])
    lines = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"contrastive_loss", "caption_loss", "loss"} <= set(lines[-1])


@pytest.mark.slow
def test_finetune_under_torchrun_two_processes_gloo(imported, tmp_path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sleeplm_core.cli.finetune", "--checkpoint", str(imported), "--synthetic", "1",
           "--out", str(out), "--steps", "2", "--batch-size", "2", "--device", "cpu",
           "--no-progress", "--log-every", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "meta_000002.json").read_text())
    assert meta["family"] == "published" and meta["world_size"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["contrastive_batch"] == 4  # 2 ranks x 2 gathered
