"""Find tensors that library code creates on the default (CPU) device.

``CPUCreationScan`` is a ``TorchFunctionMode``: while it is active, every call
of a tensor factory (``torch.zeros``, ``arange``, ``tensor``, ...) made from a
file of ``speechbrain_pruning/`` without a ``device`` argument is recorded with
its file and line. In a forward or loss path such a tensor lands on the CPU
when the model runs on a GPU (a device error, or a silent host-device copy),
so the scan lets CPU-only CI check the device placement of the GPU paths.
"""

import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

LIBRARY = str(Path(__file__).resolve().parents[1] / "speechbrain_pruning")
DISPATCH = ("torch/overrides.py", "torch/utils/_device.py", "torch/utils/_python_dispatch.py")
FACTORIES = {
    torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.linspace,
    torch.eye, torch.rand, torch.randn, torch.randint, torch.tensor, torch.as_tensor,
}


class CPUCreationScan(TorchFunctionMode):
    """Records ``(file:line, factory)`` of device-less factory calls from library code."""

    def __init__(self):
        super().__init__()
        self.found = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            data = args[0] if args else kwargs.get("data")
            derived = func in (torch.tensor, torch.as_tensor) and torch.is_tensor(data)
            if not derived:
                # the direct caller of the factory (past torch's dispatch code); calls
                # made inside torch itself (optimizer state, ...) are torch's business
                frame = sys._getframe(1)
                while frame is not None and frame.f_code.co_filename.endswith(DISPATCH):
                    frame = frame.f_back
                if frame is not None and frame.f_code.co_filename.startswith(LIBRARY):
                    where = f"{Path(frame.f_code.co_filename).relative_to(LIBRARY)}:{frame.f_lineno}"
                    self.found.add((where, func.__name__))
        return func(*args, **kwargs)


def scan_brain_steps(monkeypatch, brain_class):
    """Scan every training and evaluation step of ``brain_class`` (forward, loss,
    backward, optimizer step); returns the set the scan fills while the Brain runs."""
    found = set()
    for name in ("fit_batch", "evaluate_batch"):
        original = getattr(brain_class, name)

        def scanned(self, *args, _original=original, **kwargs):
            with CPUCreationScan() as mode:
                result = _original(self, *args, **kwargs)
            found.update(mode.found)
            return result

        monkeypatch.setattr(brain_class, name, scanned)
    return found
