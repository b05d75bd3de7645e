"""Cross-modal retrieval: the ranking metrics on a hand-built similarity matrix, each dual-encoder loss against a
value computed by hand, and a run on real emoji pictures and names end to end (report, tower export, search)."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from crossdistill.cli import app
from crossdistill.data.batch import Batch
from crossdistill.evaluate.retrieval import groups_for, ranks, recall_report
from crossdistill.losses import LOSSES

runner = CliRunner()
SIMILARITY = torch.tensor([[0.9, 0.1, 0.5],
                           [0.2, 0.3, 0.8],
                           [0.7, 0.6, 0.4]])


def test_ranks_and_recall_on_a_hand_built_similarity_matrix():
    instance = torch.eye(3, dtype=torch.bool)
    assert ranks(SIMILARITY, instance).tolist() == [1, 2, 3]  # row 1: 0.8 beats 0.3; row 2: 0.7 and 0.6 beat 0.4
    assert ranks(SIMILARITY.T, instance).tolist() == [1, 2, 3]  # column 1: 0.6 beats 0.3; column 2: 0.5, 0.8
    # queries = the similarity rows themselves, gallery = the identity: query @ gallery^T == SIMILARITY
    report = recall_report(SIMILARITY, torch.eye(3), groups_for(torch.tensor([0, 0, 1]), "instance"))
    assert report["query_to_gallery"] == {"r1": pytest.approx(1 / 3), "r5": 1.0, "r10": 1.0, "median_rank": 2.0}
    # rows 0 and 2 share a class: row 2's positives are columns 0 (0.7) and 2 (0.4); nothing beats 0.7 -> rank 1
    by_class = recall_report(SIMILARITY, torch.eye(3), groups_for(torch.tensor([0, 1, 0]), "class"))
    assert by_class["query_to_gallery"] == {"r1": pytest.approx(2 / 3), "r5": 1.0, "r10": 1.0, "median_rank": 1.0}
    # columns: 0 -> rows 0, 2 (0.9 best): 1; column 1 -> row 1 (0.3, beaten by 0.6): 2; column 2 -> rows 0, 2
    # (0.5 best, beaten by 0.8): 2
    assert by_class["gallery_to_query"]["r1"] == pytest.approx(1 / 3)
    assert by_class["gallery_to_query"]["median_rank"] == 2.0
    assert groups_for(torch.tensor([2, -1, 2]), "class").tolist() == [2, -2, 2]  # unlabelled: its own group


def test_ranking_a_block_of_queries_at_a_time_gives_the_whole_matrix_ranks(monkeypatch):
    from crossdistill.evaluate import retrieval

    generator = torch.Generator().manual_seed(0)
    query, gallery = (torch.nn.functional.normalize(torch.randn(50, 8, generator=generator), dim=1) for _ in "qg")
    groups = groups_for(torch.randint(0, 4, (50,), generator=generator), "class")
    whole = ranks(query.double() @ gallery.double().T, groups[:, None] == groups[None, :])
    monkeypatch.setattr(retrieval, "BLOCK_ROWS", 7)  # 8 blocks, the last one short
    assert torch.equal(retrieval.blocked_ranks(query, gallery, groups), whole)


def pair(query, gallery, scale):
    """A dual encoder's towers as its losses read them: (z_query, z_gallery, log s per row)."""
    return torch.tensor(query), torch.tensor(gallery), torch.full((len(query), 1), math.log(scale))


def batch_of(target):
    return Batch({}, torch.tensor(target), torch.arange(len(target)))


# Two samples, 2-d unit embeddings: the student's similarities [[1, 0], [0.6, 0.8]] at scale 2, the teacher's
# [[1, 0], [0, 1]] at scale 1.
STUDENT = pair([[1.0, 0.0], [0.6, 0.8]], [[1.0, 0.0], [0.0, 1.0]], 2.0)
TEACHER = pair([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], 1.0)


def log_softmax(row):
    total = sum(math.exp(x) for x in row)
    return [x - math.log(total) for x in row]


@pytest.mark.golden('clip')
def test_clip_loss_by_hand_with_instance_and_class_positives():
    logits = [[2.0, 0.0], [1.2, 1.6]]  # scale 2 x similarities
    columns = [[2.0, 1.2], [0.0, 1.6]]
    expected = (-(log_softmax(logits[0])[0] + log_softmax(logits[1])[1]) / 2
                - (log_softmax(columns[0])[0] + log_softmax(columns[1])[1]) / 2) / 2
    assert LOSSES.get("clip").fn(STUDENT, None, batch_of([0, 1])).item() == pytest.approx(expected, rel=1e-5)
    # both rows of one class: each target is uniform over the two gallery items
    same = (-sum(sum(log_softmax(r)) / 2 for r in logits) / 2 - sum(sum(log_softmax(c)) / 2 for c in columns) / 2) / 2
    value = LOSSES.get("clip").fn(STUDENT, None, batch_of([3, 3]), positives="class")
    assert value.item() == pytest.approx(same, rel=1e-5)


@pytest.mark.golden("clip_crd", "affinity")
def test_contrastive_relational_and_affinity_by_hand():
    s_rows, s_cols = [[2.0, 0.0], [1.2, 1.6]], [[2.0, 1.2], [0.0, 1.6]]
    t_rows = [[1.0, 0.0], [0.0, 1.0]]  # symmetric: its columns are its rows

    def kl(t, s):
        p, log_q = [math.exp(x) for x in log_softmax(t)], log_softmax(s)
        return sum(pi * (math.log(pi) - qi) for pi, qi in zip(p, log_q, strict=True))

    def cross_entropy(t, s):
        return -sum(math.exp(ti) * si for ti, si in zip(log_softmax(t), log_softmax(s), strict=True))

    crd = (sum(kl(t, s) for t, s in zip(t_rows, s_rows, strict=True)) / 2
           + sum(kl(t, s) for t, s in zip(t_rows, s_cols, strict=True)) / 2) / 2
    assert LOSSES.get("clip_crd").fn(STUDENT, TEACHER, batch_of([0, 1])).item() == pytest.approx(crd, rel=1e-5)
    affinity = (sum(cross_entropy(t, s) for t, s in zip(t_rows, s_rows, strict=True)) / 2
                + sum(cross_entropy(t, s) for t, s in zip(t_rows, s_cols, strict=True)) / 2)
    assert LOSSES.get("affinity").fn(STUDENT, TEACHER, batch_of([0, 1])).item() == pytest.approx(affinity, rel=1e-5)


@pytest.mark.golden("clip_fd", "clip_icl")
def test_feature_and_interactive_contrastive_distillation_by_hand():
    fd = LOSSES.get("clip_fd").build(STUDENT, TEACHER, {})
    # equal widths: no projector; query 2 differs by (0.6, -0.2) ... (0.6 - 0, 0.8 - 1): 0.36 + 0.04
    assert fd(STUDENT, TEACHER, batch_of([0, 1])).item() == pytest.approx(0.4 / 2, rel=1e-5)
    icl = LOSSES.get("clip_icl").build(STUDENT, TEACHER, {})
    c = 1 / 0.07  # the learnable temperature starts at CLIP's 0.07
    q_to_t = [[c * 1.0, 0.0], [c * 0.6, c * 0.8]]  # student queries . teacher gallery
    g_to_t = [[c * 1.0, 0.0], [0.0, c * 1.0]]  # student gallery . teacher queries
    expected = (-(log_softmax(q_to_t[0])[0] + log_softmax(q_to_t[1])[1]) / 2
                - (log_softmax(g_to_t[0])[0] + log_softmax(g_to_t[1])[1]) / 2) / 2
    assert icl(STUDENT, TEACHER, batch_of([0, 1])).item() == pytest.approx(expected, rel=1e-4)
    wider = LOSSES.get("clip_fd").build(STUDENT, pair(torch.randn(2, 4).tolist(), torch.randn(2, 4).tolist(), 1.0),
                                        {})  # teacher 4-d: a learned projector
    assert isinstance(wider.query, torch.nn.Linear) and wider.query.weight.shape == (4, 2)


TINY_RETRIEVAL = """
data:
  dataset: manifest
  options:
    path: {path}
    label: category
    modalities:
      image: {{kind: image, column: image, folder: {png}, size: 16}}
      text: {{kind: text, column: name, tokenizer: word, max_length: 6}}
task: {{name: retrieval, positives: instance}}
seeds: [0]
teacher:
  encoders:
    image: {{name: image_cnn, channels: [16, 32]}}
    text: {{name: text_gru, dim: 32, hidden: 32}}
  embed_dim: 32
  train: {{epochs: 4}}
student:
  encoders:
    image: {{name: image_cnn, channels: [4, 8]}}
    text: {{name: text_bag, dim: 8}}
  embed_dim: 16
distill:
  terms: [{{loss: clip}}, {{loss: clip_crd}}, {{loss: clip_fd}}]
variants:
  icl: {{terms: [{{loss: clip}}, {{loss: clip_icl}}]}}
  affinity: {{terms: [{{loss: clip}}, {{loss: affinity}}]}}
train: {{epochs: 3, batch_size: 64, progress: false}}
evaluate: {{latency_repeats: 2}}
"""


@pytest.fixture(scope="module")
def emoji_retrieval_run(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("retrieval")
    rows = [r for r in json.loads((data_root / "emoji_noto64" / "emoji.json").read_text())
            if r["category"] in ("Smileys & Emotion", "Animals & Nature", "Food & Drink")][:360]
    manifest = folder / "emoji.json"
    manifest.write_text(json.dumps([{k: r[k] for k in ("image", "name", "category")} for r in rows]))
    config = folder / "run.yaml"
    config.write_text(TINY_RETRIEVAL.format(path=manifest, png=data_root / "emoji_noto64" / "png"))
    done = runner.invoke(app, ["run", str(config), "--out", str(folder / "runs")])
    assert done.exit_code == 0, done.output
    return folder / "runs" / "run", manifest


def test_a_retrieval_run_reports_recall_for_every_model(emoji_retrieval_run):
    run_dir, _ = emoji_retrieval_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["task"] == "retrieval"
    assert set(results["models"]) == {"teacher", "baseline", "distilled", "icl", "affinity"}
    for model in results["models"].values():
        metrics = {k: v["mean"] for k, v in model["metrics"].items()}
        assert 0 <= metrics["r1"] <= metrics["r5"] <= metrics["r10"] <= 1 and metrics["median_rank"] >= 1
        assert metrics["class_r1"] >= metrics["instance_r1"] == metrics["r1"]  # a class holds the pair
        assert set(model["towers"]) == {"image", "text"} and all(t["params"] > 0 for t in model["towers"].values())
    eval_json = json.loads((run_dir / "models" / "distilled" / "fold0-seed0" / "eval.json").read_text())
    assert set(eval_json["retrieval"]) == {"instance", "class"}
    assert set(eval_json["retrieval"]["class"]) == {"query_to_gallery", "gallery_to_query"}
    report = (run_dir / "report" / "report.md").read_text()
    assert "## Towers" in report and "| r1 | r5 | r10 | median_rank |" in report


def test_each_tower_exports_to_onnx_and_search_answers_a_query(emoji_retrieval_run):
    run_dir, manifest = emoji_retrieval_run
    exported = runner.invoke(app, ["export", str(run_dir), "--format", "onnx"])
    assert exported.exit_code == 0, exported.output
    written = json.loads((run_dir / "export" / "distilled.json").read_text())
    assert set(written["towers"]) == {"image", "text"} and written["onnx_max_abs_diff"] < 1e-4
    assert (run_dir / "export" / "distilled.image.onnx").is_file()
    from crossdistill.search import search

    found = search(run_dir, "grinning face", manifest, k=3)
    assert found["query_modality"] == "text" and found["gallery_modality"] == "image"
    assert found["gallery_size"] == 360 and len(found["results"]) == 3
    scores = [hit["score"] for hit in found["results"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)
    picture = json.loads(manifest.read_text())[0]["image"]
    image_query = runner.invoke(app, ["search", str(run_dir), str(emoji_png(manifest, picture)), "--gallery",
                                      str(manifest), "-k", "2"])
    assert image_query.exit_code == 0, image_query.output
    assert "(image)" in image_query.output and "360 text items" in image_query.output
    assert "│ 2 " in image_query.output and "│ 3 " not in image_query.output  # -k 2: two names


def emoji_png(manifest, name):
    import yaml

    config = yaml.safe_load((manifest.parent / "run.yaml").read_text())
    return f"{config['data']['options']['modalities']['image']['folder']}/{name}"


def test_retrieval_configs_are_checked_before_training(emoji_retrieval_run, tmp_path):
    _, manifest = emoji_retrieval_run
    config = manifest.parent / "run.yaml"
    for override, message in (
            ("distill.terms=[{loss: clip}, {loss: kd}]", "loss 'kd' needs a model giving classes, but task "
                 "retrieval provides towers; losses made for retrieval: affinity, clip_crd, clip_fd, clip_icl, clip"),
            ("train.select_on=teacher", "retrieval selects on the validation pairs themselves"),
            ("student.encoders.image=null", "a retrieval model is a dual encoder over two modalities")):
        refused = runner.invoke(app, ["run", str(config), "--out", str(tmp_path), "--set", override])
        assert refused.exit_code == 2 and message in refused.output, (override, refused.output)
