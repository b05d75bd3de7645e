"""``crossdistill diagnose`` on the real cross-modal settings of ``benchmarks/methods.py`` (av-digits image ->
audio; av-mnist image+audio -> audio and -> image), checked against the KD gains that benchmark measured there
(``benchmarks/results/methods.json``, Hinton KD vs the student alone, 3 seeds) at 10% and 100% student labels.

The diagnosis trains (or reuses) each setting's teacher exactly as the methods benchmark does, then probes the
training and validation splits only. Its score depends on the label budget b only through ``b * reach(label)``,
so one diagnosis per setting gives both budgets. Writes ``benchmarks/results/diagnose_real.json`` and prints a
table: score, verdict, measured gain and the methods benchmark's own verdict (the paired rule of
docs/statistics.md, Holm-adjusted; "no clear difference" is diagnose's "neutral"), then the Spearman correlation
of score and gain and how many verdicts call the right sign.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

sys.path.insert(0, str(Path(__file__).parent))

from methods import EPOCHS, SETTINGS, base_experiment  # noqa: E402

from crossdistill.config import Experiment  # noqa: E402
from crossdistill.diagnose import diagnose  # noqa: E402
from crossdistill.diagnose.verdict import verdict  # noqa: E402
from crossdistill.rundir import stamp  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BUDGETS = (0.1, 1.0)


def summary(rows: list[dict]) -> dict:
    """Spearman correlation of the score with the measured KD gain; verdicts against the measured ones."""
    from scipy.stats import spearmanr

    rho, p_value = spearmanr([r["score"] for r in rows], [r["kd_gain"] for r in rows])
    called = [r for r in rows if "neutral" not in r["verdict"]]
    return {"spearman": float(rho), "spearman_p": float(p_value), "settings": len(rows),
            "sign_right": sum((r["score"] > 0) == (r["kd_gain"] > 0) for r in called), "called": len(called),
            "verdict_matches_measured": sum(r["verdict"].endswith(r["kd_measured"]) for r in rows)}


def main() -> None:
    if "--summarize-only" in sys.argv:  # recompute the summary of a finished run
        payload = json.loads((RESULTS / "diagnose_real.json").read_text())
        payload["summary"] = summary(payload["rows"])
        (RESULTS / "diagnose_real.json").write_text(json.dumps(payload, indent=1))
        print(payload["summary"])
        return
    measured = json.loads((RESULTS / "methods.json").read_text())["settings"]
    rows, tic = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        for name, setting in SETTINGS.items():
            exp = Experiment.model_validate(base_experiment(name.replace(" ", "_").replace(">", ""), setting, EPOCHS)
                                            | {"student_labels": 1.0})
            started = time.perf_counter()
            result = diagnose(exp, Path(out))
            reach = result["student_reach"]
            for budget in BUDGETS:
                call = verdict(reach["teacher_soft_labels"]["explained"], reach["label"]["explained"], budget,
                               result["modality_general_share"])
                kd = measured[f"{name} @ {round(budget * 100)}% labels"]["methods"]["kd"]
                rows.append({"setting": name, "budget": budget, "score": call["score"], "verdict": call["verdict"],
                             "kd_gain": kd["gain"],
                             "kd_measured": {"no clear difference": "neutral"}.get(kd["verdict"], kd["verdict"]),
                             "teacher_reach": reach["teacher_soft_labels"]["explained"],
                             "label_reach": reach["label"]["explained"],
                             "general_share": result["modality_general_share"],
                             "seconds": time.perf_counter() - started})
    payload = {"stamp": stamp(json.dumps(sorted(SETTINGS))).model_dump(), "rows": rows,
               "wall_seconds": time.perf_counter() - tic, "summary": summary(rows)}
    (RESULTS / "diagnose_real.json").write_text(json.dumps(payload, indent=1))
    print("| setting | labels | reach teacher | reach label | general share | score | verdict | KD gain (measured) "
          "| measured verdict |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['budget']:.0%} | {r['teacher_reach']:.3f} | {r['label_reach']:.3f} | "
              f"{r['general_share']:.2f} | {r['score']:+.3f} | {r['verdict'].replace('distillation ', '')} | "
              f"{100 * r['kd_gain']:+.1f} | {r['kd_measured']} |")
    print(payload["summary"], f"{payload['wall_seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
