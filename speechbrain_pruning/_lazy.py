"""Lazy package exports (PEP 562): ``from package import Name`` imports the
submodule that defines ``Name`` only when it is asked for, so importing one
light module (e.g. ``speechbrain_pruning.diarization.rttm``) does not pull in
SpeechBrain and the rest of its package."""

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package, exports):
    """``(__all__, __getattr__, __dir__)`` of a package whose names live in submodules.

    ``exports``: relative submodule -> the names it defines, e.g.
    ``{".nn": "unwrap_module pcm_to_float"}`` (a space-separated string).

    Example
    -------
    >>> names, getattr_, _ = lazy_exports("speechbrain_pruning", {".nn": "unwrap_module"})
    >>> names, getattr_("unwrap_module").__name__
    (['unwrap_module'], 'unwrap_module')
    """
    exports = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__():
        return sorted(exports)

    return list(exports), __getattr__, __dir__
