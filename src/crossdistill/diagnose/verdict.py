"""The diagnosis's verdict and its plain-language rendering."""

from __future__ import annotations

MARGIN = 0.05  # a score within ±MARGIN of 0 is "neutral": below what these probes resolve


def verdict(teacher_reach: float, label_reach: float, budget: float, general_share: float | None) -> dict:
    """Score = reach(teacher) - budget * reach(label), both the held-out share of the target's information a
    linear probe on the student's inputs reaches. With every label (budget 1) the teacher helps only if its soft
    labels are more reachable from the student's modality than the labels are: its knowledge is focused on what
    the student can see (Xue et al.'s modality focusing hypothesis). Without labels it is the only signal, and
    helps as far as it is reachable."""
    score = teacher_reach - budget * label_reach
    if score > MARGIN:
        word, advice = "likely helps", ("soft-label distillation (kd, or dist when the teacher is much stronger); "
                                        "no need to restrict the teacher")
    elif score < -MARGIN:
        word, advice = "likely hurts", ("do not distil the whole teacher: distil only its modality-general part "
                                        "(mgkd), let the teacher adapt (c2kd), or train the student alone")
    else:
        word, advice = "is likely neutral", ("expect little either way; if you try, relational losses (rkd, pkt) "
                                             "or a low-weight kd, and compare with the student alone")
    evidence = [f"the student's modalities reach {teacher_reach:.2f} of the teacher's soft labels (its predictions, "
                f"for a regression) and {label_reach:.2f} of the label's (held-out linear probes)",
                f"label budget {budget:.0%}: score = {teacher_reach:.2f} - {budget:.2f} x {label_reach:.2f} = "
                f"{score:+.3f} (neutral band ±{MARGIN})"]
    if general_share is not None:
        evidence.append(f"{general_share:.2f} of the teacher's decisive embedding channels are predictable from "
                        "the student's modalities (modality-general share)")
    return {"score": score, "verdict": f"distillation {word}", "recommendation": advice, "evidence": evidence}


def render(result: dict) -> list[str]:
    """Markdown lines of one diagnosis."""
    probes = result["modality_probes"]
    chance = probes.get("_chance")
    lines = ["## Diagnosis (before distilling)", "",
             f"**Verdict: {result['verdict']}** (score {result['score']:+.3f}). Recommended: "
             f"{result['recommendation']}.", "", *[f"- {e}" for e in result["evidence"]], "",
             "| modality alone -> label | held-out share of the label's information | probe accuracy |",
             "|---|---|---|"]
    for name, score in probes.items():
        if not name.startswith("_"):
            accuracy = f"{score['agreement']:.3f}" if "agreement" in score else "-"
            lines.append(f"| {name} | {score['explained']:.3f} | {accuracy} |")
    reach = result["student_reach"]
    lines += ["", f"Majority-class accuracy: {chance:.3f}." if chance is not None else "",
              f"From the student's inputs ({', '.join(result['student_modalities'])}): label "
              f"{reach['label']['explained']:.3f}, teacher soft labels {reach['teacher_soft_labels']['explained']:.3f}"
              f", teacher embedding R² {reach['teacher_embedding_r2']:.3f}; linear CKA teacher embedding vs "
              f"student inputs {result['cka']['teacher_embedding_vs_student_inputs']:.3f}. "
              f"{result['rows']} training + validation rows, {result['labelled_rows']} labelled; the test split is "
              "not used.", ""]
    return lines
