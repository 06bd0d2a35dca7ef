"""The skeleton the recipes' CPU demos share: options, a synthetic corpus and a
random WavLM, the recipe run on them with its ``tiny_cpu.yaml``, the summary file.

Each ``recipes/<Dataset>/<Task>/demo.py`` says what is its own (the corpus, the
figures it prints) and calls :func:`run_demo`.
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch

from .models import write_tiny_wavlm

__all__ = ["load_recipe", "run_demo", "write_summary"]


def load_recipe(train_py):
    """The module of a recipe's ``train.py``, loaded by path (every recipe's script has
    that name, so they cannot all be imported as ``train``)."""
    train_py = Path(train_py)
    name = "_".join(train_py.parts[-3:-1]).lower() + "_train"
    spec = importlib.util.spec_from_file_location(name, train_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(argv, description, recipe_dir, make_corpus, output="demo_output", epochs=20,
             add_arguments=None, recipe_args=None):
    """Parse the demo's options, build its inputs and run the recipe on them.

    Arguments
    ---------
    argv : list of str or None
        Command line; unknown ``--key=value`` options go to the recipe.
    description : str
        ``--help`` text.
    recipe_dir : Path
        The recipe folder (``train.py``, ``hparams/tiny_cpu.yaml``).
    make_corpus : callable
        ``(folder, args) -> None``: writes the synthetic corpus into ``folder``.
    output, epochs : defaults of ``--output`` and ``--epochs``.
    add_arguments : callable, optional
        ``parser -> None``: the demo's own options.
    recipe_args : callable, optional
        ``args -> list of str``: extra recipe overrides derived from them.

    Returns
    -------
    (argparse.Namespace, Path, dict)
        The options, the output folder and the recipe's results.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", default=output)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    if add_arguments:
        add_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.output).resolve()
    recipe_dir = Path(recipe_dir)
    print(f"[1/3] a synthetic corpus and a random WavLM in {out}")
    make_corpus(out / "corpus", args)
    source = write_tiny_wavlm(out / "wavlm_tiny_random")
    print(f"[2/3] the recipe {recipe_dir} with hparams/tiny_cpu.yaml")
    results = load_recipe(recipe_dir / "train.py").main([
        str(recipe_dir / "hparams" / "tiny_cpu.yaml"), f"--data_folder={out / 'corpus'}",
        f"--wavlm_source={source}", f"--output_folder={out / 'experiment'}",
        f"--number_of_epochs={args.epochs}", *(recipe_args(args) if recipe_args else []),
        *extra,
    ])
    print("[3/3] the exported model")
    return args, out, results


def write_summary(out, results):
    """``<out>/demo_summary.json``."""
    (Path(out) / "demo_summary.json").write_text(json.dumps(results, indent=2, default=float)
                                                 + "\n")
