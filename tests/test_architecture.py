"""The layout's rules hold (docs/DESIGN.md): data flows one way, tasks stay apart.

Every import of every module of the package (module level and inside
functions) is read with ``ast``:

* the library never imports a recipe, ``data_prep``, a test or a benchmark;
* the task packages (speaker, spoofing, diarization) never import each other;
* the shared pieces (nn, audio, detection, pretrained, augment, wavlm) import no
  task package, no synthetic corpus and no training code;
* there is no import cycle between modules;
* the old module paths are served by the compatibility aliases only.
"""

import ast
import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "speechbrain_pruning"
TASKS = ("speaker", "spoofing", "diarization")
SHARED = ("nn", "audio", "detection", "pretrained", "augment", "wavlm")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path):
    """Absolute names of the modules ``path`` imports (``from x import y`` -> x and x.y)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in imports_of(path) if i in modules or i.split(".")[0] in
                   ("recipes", "data_prep", "tests", "benchmarks")}
            for name, path in modules.items()}


def part(module):
    """The top-level part of the package a module belongs to (``speaker``, ``nn``, ...)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def test_library_never_imports_recipes_data_prep_tests(graph):
    bad = {m: sorted(i for i in deps if i.split(".")[0] != "speechbrain_pruning")
           for m, deps in graph.items()}
    assert not {m: d for m, d in bad.items() if d}


def test_task_packages_do_not_import_each_other(graph):
    bad = {m: sorted(i for i in deps if part(i) in TASKS and part(i) != part(m))
           for m, deps in graph.items() if part(m) in TASKS}
    assert not {m: d for m, d in bad.items() if d}


def test_shared_pieces_import_no_task_or_training_code(graph):
    allowed = set(SHARED) | {"", "_lazy", "pruning.hardconcrete"}
    bad = {}
    for m, deps in graph.items():
        if part(m) not in SHARED:
            continue
        wrong = sorted(i for i in deps if part(i) not in allowed
                       and not i.startswith("speechbrain_pruning.pruning.hardconcrete"))
        if wrong:
            bad[m] = wrong
    assert not bad, bad


def test_no_import_cycle(graph):
    def resolve(name):  # "pkg.mod.Name" -> "pkg.mod"
        while name not in graph and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    edges = {m: {resolve(i) for i in deps if resolve(i) in graph and resolve(i) != m}
             for m, deps in graph.items()}
    # package __init__ files re-export lazily: an edge from a package to its own
    # submodules is not an import at load time
    for m in edges:
        edges[m] = {d for d in edges[m] if not d.startswith(m + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in edges[node]:
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node)


@pytest.mark.parametrize("old, name, new", [
    ("speechbrain_pruning.backends", "MHFA", "speechbrain_pruning.speaker.mhfa"),
    ("speechbrain_pruning.backends", "EENDHead", "speechbrain_pruning.diarization.eend"),
    ("speechbrain_pruning.backends", "build_backend", "speechbrain_pruning.pruning.export"),
    ("speechbrain_pruning.brain", "PruningBrain", "speechbrain_pruning.pruning.brain"),
    ("speechbrain_pruning.sparsity", "SparsityController", "speechbrain_pruning.pruning.sparsity"),
    ("speechbrain_pruning.export", "load_state_dict_strict", "speechbrain_pruning.pruning.export"),
    ("speechbrain_pruning.metrics", "eer", "speechbrain_pruning.detection"),
    ("speechbrain_pruning.speaker_eval", "embed_utterances", "speechbrain_pruning.audio"),
    ("speechbrain_pruning.synthetic_meeting", "make_meeting_corpus",
     "speechbrain_pruning.synthetic.meeting"),
    ("speechbrain_pruning.diarization.training", "load_teacher",
     "speechbrain_pruning.pruning.distill"),
])
def test_old_module_paths_still_work_with_a_deprecation_warning(old, name, new):
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and str(w.message).startswith(
        f"{old} is deprecated") for w in caught), [str(w.message) for w in caught]
    value = getattr(module, name)
    assert value.__module__ == new


def test_exported_folders_of_the_old_layout_still_load(tmp_path):
    """A hyperparams.yaml naming old class paths (speechbrain_pruning.backends.MHFA,
    speechbrain_pruning.export hooks) loads through the aliases."""
    import torch

    from conftest import make_hf_wavlm
    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.inference import PrunedSpeakerRecognition
    from speechbrain_pruning.pruning import export_model
    from speechbrain_pruning.speaker import MHFA

    make_hf_wavlm(tmp_path / "hf")
    kwargs = {"num_layers": 4, "feat_dim": 32, "num_heads": 2, "compression_dim": 8,
              "embed_dim": 16}
    export_model(tmp_path / "sv", PrunableWavLM.from_pretrained(tmp_path / "hf"),
                 {"backend": MHFA(**kwargs)},
                 {"backend": ("speechbrain_pruning.backends.MHFA", kwargs)},
                 "PrunedSpeakerRecognition", hparams={"threshold": 0.5})
    yaml_file = tmp_path / "sv" / "hyperparams.yaml"
    text = yaml_file.read_text().replace("speechbrain_pruning.pruning.export.",
                                         "speechbrain_pruning.export.")
    yaml_file.write_text(text.replace("interface_class: speechbrain_pruning.inference."
                                      "PrunedSpeakerRecognition\n", ""))
    assert "speechbrain_pruning.backends.MHFA" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = PrunedSpeakerRecognition.from_hparams(source=tmp_path / "sv")
    assert model.encode_batch(torch.randn(1, 8000)).shape == (1, 1, 16)
