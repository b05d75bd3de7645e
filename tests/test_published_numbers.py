"""The numbers docs/performance.md shows for data larger than memory are those of the committed results files
(rendered from them, stamped with the version and commit they were measured at)."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import render_table  # noqa: E402

DOC = (REPO / "docs" / "performance.md").read_text()


def test_the_scale_table_is_rendered_from_its_results_file():
    results = json.loads((REPO / "benchmarks" / "results" / "scale.json").read_text())
    assert results["stamp"]["commit"] and results["stamp"]["package_version"]
    assert render_table(results) in DOC


def test_the_store_format_numbers_are_those_of_their_results_file():
    results = json.loads((REPO / "benchmarks" / "results" / "store_format.json").read_text())
    assert results["stamp"]["commit"]
    expected = (f"{results['npy_memmap_ms_per_row']} ms a row from a `.npy` memory map, "
                f"{results['arrow_ms_per_row']} ms from Arrow")
    assert expected in DOC.replace("\n", " ")
    assert f"{results['arrow_over_npy']}x slower" in DOC


def test_the_readme_demo_numbers_are_rendered_from_their_results_files():
    """README.md's demo blocks are exactly what benchmarks/published.py renders from the committed demo results
    (the demo runs' own stamped results.json): edit the results, not the README."""
    from published import FILES, rendered_readme

    assert FILES["quick"].is_file(), "benchmarks/results/demo.json: run benchmarks/demo_time.py --keep demo.json"
    for path in FILES.values():
        if path.is_file():
            stamp = json.loads(path.read_text())["stamp"]
            assert stamp["commit"] and stamp["config_hash"] and stamp["machine"], path
    assert rendered_readme() == (REPO / "README.md").read_text(), "README.md differs: python benchmarks/published.py"


def test_the_methods_tables_are_rendered_from_their_results_file():
    from published import METHODS_DOC, METHODS_JSON, rendered_methods_doc

    stamp = json.loads(METHODS_JSON.read_text())["stamp"]
    assert stamp["commit"] and stamp["package_version"]
    assert rendered_methods_doc() == METHODS_DOC.read_text(), "docs/methods.md differs: python benchmarks/published.py"


def test_the_peer_numbers_are_rendered_from_their_results_file():
    from published import PEER_JSON, PERFORMANCE_DOC, rendered_performance_doc

    assert json.loads(PEER_JSON.read_text())["stamp"]["commit"]
    assert rendered_performance_doc() == PERFORMANCE_DOC.read_text()


def test_the_diagnose_tables_are_rendered_from_their_results_files():
    from published import DIAGNOSE_DOC, DIAGNOSE_JSON, MFH_JSON, rendered_diagnose_doc

    assert json.loads(DIAGNOSE_JSON.read_text())["stamp"]["commit"]
    assert json.loads(MFH_JSON.read_text())["stamp"]["commit"]
    assert rendered_diagnose_doc() == DIAGNOSE_DOC.read_text()


def test_the_real_cases_and_retrieval_tables_are_rendered_from_their_results_files():
    from published import CASES, rendered_case_docs

    for doc, text in rendered_case_docs().items():
        assert "<!-- case:" in text and text == doc.read_text(), f"{doc.name} differs: python benchmarks/published.py"
    for path in CASES.glob("*.json"):
        assert json.loads(path.read_text())["stamp"]["commit"], path


def test_no_page_still_says_its_numbers_predate_the_pooling_fix():
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        assert "Measured before the pooling fix" not in page.read_text(), page


def test_the_tuning_numbers_are_rendered_from_their_results_file():
    from published import TUNE_DOC, TUNE_JSON, rendered_tune_doc

    assert json.loads(TUNE_JSON.read_text())["stamp"]["commit"]
    assert json.loads(TUNE_JSON.with_name("tune_moonshot.json").read_text())["stamp"]["commit"]
    assert rendered_tune_doc() == TUNE_DOC.read_text(), "docs/tune.md differs: python benchmarks/published.py"


def test_the_int8_numbers_are_rendered_from_their_results_file():
    from published import DEPLOY_DOC, INT8_JSON, rendered_deploy_doc

    stamp = json.loads(INT8_JSON.read_text())["stamp"]
    assert stamp["commit"] and stamp["config_hash"]
    assert rendered_deploy_doc() == DEPLOY_DOC.read_text(), "docs/deploy.md differs: python benchmarks/published.py"


def test_the_demo_side_by_side_ratio_is_rendered_from_its_results_file():
    from published import SIDE_JSON, side_by_side_sentence

    result = json.loads(SIDE_JSON.read_text())
    assert result["stamp"]["commit"] and len(result["seconds"]["head"]) == result["rounds"]
    assert side_by_side_sentence(result) in DOC


def test_the_store_io_numbers_are_those_of_their_results_file():
    results = json.loads((REPO / "benchmarks" / "results" / "store_io.json").read_text())
    assert results["stamp"]["commit"]
    writes, reads, doc = results["writes"], results["cold_reads"], " ".join(DOC.split())
    assert (f"take {writes['page_cache']['seconds']} s through the page cache "
            f"({writes['page_cache']['kernel_cpu_seconds']} s of kernel CPU each) and {writes['direct']['seconds']} s "
            f"directly ({writes['direct']['kernel_cpu_seconds']} s)") in doc
    assert (f"the memory map read {reads['memmap']['disk_mb']:.0f} MB from disk in {reads['memmap']['seconds']} s, "
            f"`pread` {reads['pread']['disk_mb']:.0f} MB in {reads['pread']['seconds']} s "
            f"(the rows: {reads['rows_mb']} MB)") in doc
    assert f"medians of {results['rounds']} rounds" in doc
