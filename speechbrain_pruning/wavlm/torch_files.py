"""Reading ``torch.save`` files safely, with errors that name the file."""

import logging

import torch

__all__ = ["CorruptCheckpointError"]

logger = logging.getLogger(__name__)


class CorruptCheckpointError(RuntimeError):
    """A weights file that cannot be read (truncated, corrupt, not a checkpoint)."""


def _torch_load(path):
    """``torch.load`` on CPU, safe mode first (plain tensors and containers).

    A file that cannot be read at all (truncated, corrupt) raises
    :class:`CorruptCheckpointError` naming it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled configs may hold other types
        safe_error = err
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CorruptCheckpointError(
            f"Cannot read checkpoint file {path} (truncated or corrupt?): {err}"
        ) from err
    logger.warning(
        "%s: safe loading failed (%s); loaded with weights_only=False. Only do "
        "this with checkpoints you trust.", path, str(safe_error).splitlines()[0],
    )
    return ckpt
