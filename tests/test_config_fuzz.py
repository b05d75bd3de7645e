"""Config fuzzing (hypothesis): random text and randomly mutated configs given to ``crossdistill check`` never
produce a traceback: the command either accepts the config or stops with a one-paragraph error (exit code 2)."""

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crossdistill.cli import app

runner = CliRunner()
BASE = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "synthetic_mfh" / "gamma.yaml").read_text())
BASE["data"]["folds"] = 1

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["kd", "ce", "clip", "x1", "x2", "identity", "mlp",
                                                           "synthetic-mfh", "manifest", "auto", "last", "-1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def paths(tree, prefix=()):
    """Every key path of a nested config (dicts and lists)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


ALL_PATHS = list(paths(BASE)) + [("variants",), ("retrieval",), ("extra_teachers",), ("distill", "terms", 0, "x")]


def checked(text: str, tmp: Path) -> None:
    config = tmp / "fuzz.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["check", str(config)])
    assert result.exit_code in (0, 2), f"crashed on:\n{text}\n{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        message = result.output.strip()
        assert message.startswith("error: ") and "\n" not in message, message  # one paragraph


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_text_never_crashes(text, tmp_path):
    checked(text, tmp_path)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(ALL_PATHS), values, st.booleans()), min_size=1, max_size=3))
@example(edits=[(("data", "options"), {"\n": None}, False)])  # a key that is a line break: still one line
def test_mutated_configs_never_crash(edits, tmp_path):
    config = copy.deepcopy(BASE)
    for path, value, delete in edits:
        node = config
        for key in path[:-1]:
            if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) \
                    and key < len(node):
                node = node[key]
            else:
                break
        else:
            if isinstance(node, dict) and delete:
                node.pop(path[-1], None)
            elif isinstance(node, dict) or isinstance(node, list) and isinstance(path[-1], int) \
                    and path[-1] < len(node):
                node[path[-1]] = value
    checked(yaml.safe_dump(config), tmp_path)

