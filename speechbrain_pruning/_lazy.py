"""Lazy package exports (PEP 562): ``from package import Name`` imports the
submodule that defines ``Name`` only when it is asked for, so importing one
light module (e.g. ``speechbrain_pruning.diarization.rttm``) does not pull in
SpeechBrain and the rest of its package."""

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package, exports):
    """``(__getattr__, __dir__)`` for a package; ``exports``: name -> submodule (relative).

    Example
    -------
    >>> getattr_, _ = lazy_exports("speechbrain_pruning", {"unwrap_module": ".nn"})
    >>> getattr_("unwrap_module").__name__
    'unwrap_module'
    """

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
