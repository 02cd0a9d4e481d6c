"""Few-shot stage heads: fitting (numpy), the safetensors file, and staging with a head.

The fitting and file tests use hand-made embeddings only. The staging tests run the bundled
model on a half-hour synthetic night (W, N1, N2, N3; no REM), about 10 s on one CPU thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sleeplm_core.errors import CheckpointError, SleepLMError
from sleeplm_core.fewshot import HEAD_FILE, INFO_FILE, FewShotHead, fit_head
from sleeplm_core.stages import EPOCH_S, SCORED_STAGES

DIM = 16


def _clusters(
    rng: np.random.Generator, per_stage: int, stages: tuple[str, ...] = SCORED_STAGES
) -> tuple[np.ndarray, list[str]]:
    """Unit vectors near one centre per stage (well separated), with their labels."""
    centres = np.eye(DIM)[: len(SCORED_STAGES)] * 3.0
    emb, labels = [], []
    for s in stages:
        c = centres[SCORED_STAGES.index(s)]
        emb.append(c + rng.normal(0.0, 0.3, (per_stage, DIM)))
        labels += [s] * per_stage
    x = np.concatenate(emb).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


# --- fitting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["prototype", "logistic", "linear"])
def test_fit_on_separable_embeddings_gives_the_right_stages(method: str) -> None:
    rng = np.random.default_rng(0)
    support, labels = _clusters(rng, 5)
    # artefact / unscored epochs in the support set are ignored, whatever they look like
    noise = rng.normal(size=(4, DIM)).astype(np.float32)
    head = fit_head(np.concatenate([support, noise]), labels + ["ART", "UNS", "?", "N5"], method)
    assert head.stages == SCORED_STAGES and head.k == 5
    assert head.method == ("prototype" if method == "prototype" else "logistic")
    assert head.weight.shape == (5, DIM) and head.weight.dtype == np.float32
    query, truth = _clusters(rng, 20)
    assert head.predict(query) == truth
    p = head.proba(query)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert (p.argmax(axis=1) == [SCORED_STAGES.index(s) for s in truth]).all()


@pytest.mark.parametrize("method", ["prototype", "logistic"])
def test_a_stage_without_support_gets_probability_zero(method: str) -> None:
    rng = np.random.default_rng(1)
    support, labels = _clusters(rng, 3, ("W", "N2", "N3"))
    head = fit_head(support, labels, method)
    query, _ = _clusters(rng, 4)  # includes epochs that look like N1 and REM
    p = head.proba(query)
    for s in ("N1", "REM"):
        assert p[:, SCORED_STAGES.index(s)].max() < 1e-12
    assert set(head.predict(query)) <= {"W", "N2", "N3"}
    assert head.k == 3


def test_no_scored_epoch_is_a_one_line_error() -> None:
    emb = np.ones((3, DIM), np.float32)
    with pytest.raises(SleepLMError, match="no scored epoch") as err:
        fit_head(emb, ["UNS", "ART", "UNS"])
    assert "\n" not in str(err.value)
    with pytest.raises(SleepLMError, match="2 stage labels"):
        fit_head(emb, ["W", "N1"])
    with pytest.raises(SleepLMError, match="unknown few-shot method"):
        fit_head(emb, ["W", "N1", "N2"], "knn")


def test_the_head_is_immutable() -> None:
    head = fit_head(*_clusters(np.random.default_rng(2), 2))
    with pytest.raises(ValueError):
        head.weight[0, 0] = 1.0
    with pytest.raises(ValueError, match="bias shape"):
        FewShotHead(np.zeros((5, DIM)), np.zeros(4))
    with pytest.raises(ValueError, match="stages"):
        FewShotHead(np.zeros((2, DIM)), np.zeros(2), ("W", "ART"))


# --- the file --------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    support, labels = _clusters(rng, 4, ("W", "N1", "REM"))
    head = fit_head(support, labels, "logistic")
    written = head.save(tmp_path)  # a directory gets fewshot_head.safetensors
    assert written == tmp_path / HEAD_FILE
    for where in (tmp_path, written, str(written)):
        back = FewShotHead.load(where, embed_dim=DIM)
        np.testing.assert_array_equal(back.weight, head.weight)
        np.testing.assert_array_equal(back.bias, head.bias)
        assert (back.stages, back.k, back.method) == (SCORED_STAGES, 4, "logistic")
    query, _ = _clusters(rng, 3)
    np.testing.assert_array_equal(back.proba(query), head.proba(query))
    # a head of three rows (a subset of the stages) keeps its stage order
    sub = FewShotHead(head.weight[[4, 0]], head.bias[[4, 0]], ("REM", "W"), 4, "prototype")
    again = FewShotHead.load(sub.save(tmp_path / "sub.safetensors"))
    assert again.stages == ("REM", "W")
    np.testing.assert_allclose(again.proba(query), sub.proba(query))
    assert again.proba(query)[:, SCORED_STAGES.index("N2")].max() == 0.0


def test_a_head_without_metadata_reads_its_json(tmp_path: Path) -> None:
    """Heads written by earlier versions (and the viewer's fine-tune job) carry no metadata."""
    from safetensors.numpy import save_file

    weight = np.arange(5 * DIM, dtype=np.float32).reshape(5, DIM) / 100.0
    save_file({"weight": weight, "bias": np.zeros(5, np.float32)}, str(tmp_path / HEAD_FILE))
    info = {"stages": list(SCORED_STAGES), "k": 7, "method": "linear"}
    (tmp_path / INFO_FILE).write_text(json.dumps(info), encoding="utf-8")
    head = FewShotHead.load(tmp_path)
    assert (head.k, head.method, head.stages) == (7, "logistic", SCORED_STAGES)
    np.testing.assert_array_equal(head.weight, weight)


def _write(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, str] | None = None) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "no few-shot head here"),
        ("garbage", "corrupt few-shot head"),
        ("truncated", "corrupt few-shot head"),
        ("no_bias", "no bias tensor"),
        ("bias_shape", "bias shape"),
        ("rows_vs_stages", "2 stages for a head of 5 rows"),
        ("unknown_stage", "stages must be distinct"),
        ("other_model", "16-dimensional embeddings, but the model gives 64"),
    ],
)
def test_a_bad_head_file_is_a_one_line_checkpoint_error(
    tmp_path: Path, damage: str, message: str
) -> None:
    path = tmp_path / HEAD_FILE
    good = fit_head(*_clusters(np.random.default_rng(4), 2))
    w, b = np.array(good.weight), np.array(good.bias)
    if damage == "garbage":
        path.write_bytes(b"\x00\x01 not a safetensors file" * 3)
    elif damage == "truncated":
        good.save(path)
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "no_bias":
        _write(path, {"weight": w})
    elif damage == "bias_shape":
        _write(path, {"weight": w, "bias": b[:3]})
    elif damage == "rows_vs_stages":
        _write(path, {"weight": w, "bias": b}, {"stages": '["W", "N1"]'})
    elif damage == "unknown_stage":
        _write(path, {"weight": w, "bias": b}, {"stages": '["W", "N1", "N2", "N3", "ART"]'})
    elif damage == "other_model":
        good.save(path)
    with pytest.raises(CheckpointError, match=message) as err:
        FewShotHead.load(path, embed_dim=64)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path))


# --- staging with a head: the bundled model on a synthetic night ------------------------------


@pytest.fixture(scope="module")
def staged_night(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bundled Predictor, a 30-min synthetic night (embedded once) and its true stages."""
    import torch

    from sleeplm_core.inference import Predictor, bundled_checkpoint
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.synth import generate_night
    from tests.core.test_inference import NIGHT_SEED, small_night

    if not any(bundled_checkpoint().glob("meta_*.json")):
        pytest.skip("no bundled checkpoint in resources/models")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = Predictor.load(device="cpu")
        edf = small_night(tmp_path_factory.mktemp("fewshot-night"), hours=0.5)
        with Recording.open(edf) as rec:
            emb = predictor.embed_recording(rec)
        truth = [
            str(s) for s in generate_night(hours=0.5, seed=NIGHT_SEED, ahi=30.0).hypnogram.stages
        ]
    finally:
        torch.set_num_threads(before)
    on_grid = np.isclose(np.mod(emb.onsets_s, EPOCH_S), 0.0)
    return {"predictor": predictor, "edf": edf, "emb": emb, "epochs": emb.embeddings[on_grid],
            "truth": truth}  # fmt: skip


def _support_labels(truth: list[str], k: int) -> list[str]:
    """The first ``k`` epochs of each stage keep their label; the others become UNS."""
    seen: dict[str, int] = {}
    out = []
    for s in truth:
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] <= k else "UNS")
    return out


@pytest.mark.parametrize("method", ["prototype", "logistic"])
def test_predictor_stages_with_a_fewshot_head(staged_night: dict[str, Any], method: str) -> None:
    pred, emb, x, truth = (staged_night[k] for k in ("predictor", "emb", "epochs", "truth"))
    assert len(truth) == len(x) == 60 and set(truth) == {"W", "N1", "N2", "N3"}
    labels = _support_labels(truth, 3)
    head = pred.fit_fewshot(x, labels, method)
    assert head.k == 3 and head.embed_dim == pred.model.cfg.embed_dim

    zero_shot = pred.stage(emb, ["C3-M2"])
    result = pred.stage(emb, ["C3-M2"], head=head)
    assert zero_shot.staged_by == "prompts" and result.staged_by == f"fewshot-{method}"
    assert result.model == zero_shot.model == pred.model_id
    assert [e.epoch for e in result.epochs] == list(range(60))
    # each row's stage and probabilities are the head's, not the prompts'
    expected = head.proba(x)
    for e, p in zip(result.epochs, expected, strict=True):
        assert e.stage == SCORED_STAGES[int(np.argmax(p))]
        assert e.confidence == pytest.approx(float(p.max()))
        assert e.proba["REM"] == 0.0  # no REM in the support set
        assert sum(e.proba.values()) == pytest.approx(1.0)
    assert max(e.proba["REM"] for e in zero_shot.epochs) > 0.0
    # and on the epochs it was not fitted on, the head stages far better than the prompts
    held = [i for i, lab in enumerate(labels) if lab == "UNS"]

    def accuracy(stages: list[str]) -> float:
        return float(np.mean([stages[i] == truth[i] for i in held]))

    assert accuracy(result.stages()) >= 0.7
    assert accuracy(result.stages()) > accuracy(zero_shot.stages()) + 0.2


def test_fit_fewshot_refuses_other_embeddings(staged_night: dict[str, Any]) -> None:
    pred = staged_night["predictor"]
    with pytest.raises(SleepLMError, match="must be"):
        pred.fit_fewshot(np.ones((3, 7), np.float32), ["W", "N1", "N2"])
    with pytest.raises(SleepLMError, match="no scored epoch"):
        pred.fit_fewshot(staged_night["epochs"][:2], ["ART", "UNS"])
    wrong = FewShotHead(np.ones((5, 7)), np.zeros(5))
    with pytest.raises(SleepLMError, match="7-dimensional"):
        pred.stage(staged_night["emb"], head=wrong)


# --- the commands ----------------------------------------------------------------------------


def test_fewshot_then_stage_with_head_commands(
    staged_night: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sleeplm_core.cli.main import main
    from sleeplm_core.inference import bundled_checkpoint

    out = tmp_path / "fs"
    code = main(["fewshot", "--checkpoint", str(bundled_checkpoint()), "--k", "2",
                 "--synthetic", "1", "--eval-epochs", "10", "--out", str(out),
                 "--method", "prototype", "--device", "cpu"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.startswith("fewshot prototype k=2: accuracy ")
    info = json.loads((out / INFO_FILE).read_text())
    head = FewShotHead.load(out, embed_dim=64)
    assert (head.k, head.method, head.stages) == (info["k"], "prototype", SCORED_STAGES)

    edf = str(staged_night["edf"])
    assert main(["stage", edf, "--json", "--device", "cpu", "--head", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["staged_by"] == "fewshot-prototype"
    assert [e["stage"] for e in data["epochs"]] == head.predict(staged_night["epochs"])
    assert main(["stage", edf, "--device", "cpu", "--head", str(out / HEAD_FILE)]) == 0
    assert "staged by: fewshot-prototype head" in capsys.readouterr().out
    # without --head the JSON keeps exactly its three keys
    assert main(["stage", edf, "--json", "--device", "cpu"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"epochs", "channels_used", "model"}

    assert main(["stage", edf, "--head", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no few-shot head here" in err and "\n" not in err
