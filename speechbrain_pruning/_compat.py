"""Old module paths (before the house was organised by task) keep working for one
release, with a ``DeprecationWarning`` naming the new place.

A meta-path finder serves each old name as a light proxy module whose
attributes are looked up in the new modules, so code and exported
``hyperparams.yaml`` files that say e.g. ``speechbrain_pruning.backends.MHFA``
or ``speechbrain_pruning.brain.PruningBrain`` still load. Nothing else in the
package imports these names.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

P = "speechbrain_pruning"

#: old module -> new modules searched in order (the first is the one to use now)
MOVED = {
    f"{P}.hardconcrete": (f"{P}.pruning.hardconcrete",),
    f"{P}.sparsity": (f"{P}.pruning.sparsity",),
    f"{P}.distill": (f"{P}.pruning.distill", f"{P}.nn"),
    f"{P}.brain": (f"{P}.pruning.brain",),
    f"{P}.export": (f"{P}.pruning.export",),
    f"{P}.demo": (f"{P}.pruning.demo", f"{P}.synthetic.models"),
    f"{P}.dataio": (f"{P}.audio", f"{P}.nn"),
    f"{P}.backends": (f"{P}.speaker", f"{P}.spoofing", f"{P}.diarization.eend", f"{P}.nn"),
    f"{P}.backends.mhfa": (f"{P}.speaker.mhfa", f"{P}.nn"),
    f"{P}.backends.ecapa": (f"{P}.speaker.ecapa",),
    f"{P}.backends.margin": (f"{P}.speaker.margin",),
    f"{P}.backends.aasist": (f"{P}.spoofing.aasist",),
    f"{P}.backends.spoof_head": (f"{P}.spoofing.head",),
    f"{P}.backends.eend": (f"{P}.diarization.eend",),
    f"{P}.metrics": (f"{P}.speaker.metrics", f"{P}.spoofing.metrics", f"{P}.detection"),
    f"{P}.metrics.verification": (f"{P}.speaker.metrics", f"{P}.detection"),
    f"{P}.metrics.spoofing": (f"{P}.spoofing.metrics",),
    f"{P}.metrics.der": (f"{P}.diarization.der",),
    f"{P}.speaker_eval": (f"{P}.speaker.scoring", f"{P}.audio"),
    f"{P}.spoof_eval": (f"{P}.spoofing.scoring",),
    f"{P}.powerset": (f"{P}.diarization.powerset",),
    f"{P}.rawboost": (f"{P}.spoofing.rawboost",),
    f"{P}.synthetic_meeting": (f"{P}.synthetic.meeting",),
    f"{P}.synthetic_spoof": (f"{P}.synthetic.spoof",),
    f"{P}.diarization.training": (f"{P}.diarization.scoring", f"{P}.pruning.distill"),
}

#: renamed attributes: (old module, old name) -> (new module, new name)
RENAMED = {
    (f"{P}.speaker_eval", "embed_utterances"): (f"{P}.audio", "embed_files"),
    (f"{P}.backends", "build_backend"): (f"{P}.pruning.export", "build_module"),
    (f"{P}.diarization.training", "load_teacher"): (f"{P}.pruning.distill", "load_teacher"),
    (f"{P}.diarization.training", "evaluate_recordings"):
        (f"{P}.diarization.scoring", "evaluate_recordings"),
}

_PACKAGES = {name.rsplit(".", 1)[0] for name in MOVED} - {P}


def _proxy(old, targets):
    module = types.ModuleType(old, f"Deprecated alias of {targets[0]}.")
    if old in _PACKAGES:
        module.__path__ = []  # a package: its old submodules are aliases too

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if (old, attr) in RENAMED:
            new_module, new_name = RENAMED[(old, attr)]
            return getattr(importlib.import_module(new_module), new_name)
        for target in targets:
            mod = importlib.import_module(target)
            if hasattr(mod, attr):
                return getattr(mod, attr)
        raise AttributeError(f"module {old!r} (now {targets[0]!r}) has no attribute {attr!r}")

    module.__getattr__ = __getattr__
    return module


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the old module names of :data:`MOVED`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self,
                                                   is_package=fullname in _PACKAGES)
        return None

    def create_module(self, spec):
        targets = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated and will be removed in the next release; "
                      f"use {' or '.join(targets)}", DeprecationWarning, stacklevel=3)
        return _proxy(spec.name, targets)

    def exec_module(self, module):
        """Nothing to run: attributes are looked up on access."""


def install():
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
