"""Linear warm-up of the margin of an additive angular margin (AAM) loss.

Speaker-embedding recipes usually start AAM-softmax training with a small
margin and raise it to its final value over the first epochs.
:class:`MarginScheduler` does this for
:class:`speechbrain.nnet.losses.AdditiveAngularMargin`, keeping the quantities
that loss precomputes from its margin (``cos_m``, ``sin_m``, ``th``, ``mm``)
consistent with the new value, so a scheduled loss behaves exactly like one
freshly constructed with that margin.

Authors
 * speechbrain_pruning contributors
"""

import math

__all__ = ["MarginScheduler"]


def _margin_holder(loss):
    """The module carrying ``margin``: ``loss`` itself or ``loss.loss_fn``."""
    if hasattr(loss, "margin"):
        return loss
    inner = getattr(loss, "loss_fn", None)  # speechbrain LogSoftmaxWrapper
    if inner is not None and hasattr(inner, "margin"):
        return inner
    raise TypeError(
        f"{type(loss).__name__} has no 'margin' attribute (nor a 'loss_fn' with one)"
    )


def set_margin(loss, margin):
    """Set the margin of an angular-margin loss and its derived constants.

    Arguments
    ---------
    loss : torch.nn.Module
        ``AngularMargin`` / ``AdditiveAngularMargin`` or a ``LogSoftmaxWrapper``
        around one.
    margin : float
        New margin (radians for the additive angular margin).

    Returns
    -------
    float
        The margin set.

    Example
    -------
    >>> from speechbrain.nnet.losses import AdditiveAngularMargin
    >>> loss = AdditiveAngularMargin(margin=0.0, scale=30.0)
    >>> set_margin(loss, 0.2)
    0.2
    >>> loss.cos_m == math.cos(0.2)
    True
    """
    holder = _margin_holder(loss)
    margin = float(margin)
    holder.margin = margin
    # same formulas as AdditiveAngularMargin.__init__ (speechbrain 1.x)
    if hasattr(holder, "cos_m"):
        holder.cos_m = math.cos(margin)
    if hasattr(holder, "sin_m"):
        holder.sin_m = math.sin(margin)
    if hasattr(holder, "th"):
        holder.th = math.cos(math.pi - margin)
    if hasattr(holder, "mm"):
        holder.mm = math.sin(math.pi - margin) * margin
    return margin


class MarginScheduler:
    """Linearly move the margin of an AAM loss from a start to an end value.

    The margin is ``start_margin`` up to ``start_epoch``, ``end_margin`` from
    ``end_epoch`` on and linearly interpolated in between. The schedule is a
    pure function of the epoch, so nothing needs checkpointing: call the
    scheduler with the current epoch (e.g. in ``on_stage_start``) after a
    restart.

    Arguments
    ---------
    loss : torch.nn.Module
        ``speechbrain.nnet.losses.AdditiveAngularMargin`` (or ``AngularMargin``,
        or a ``LogSoftmaxWrapper`` around either).
    start_margin : float
        Margin until ``start_epoch``.
    end_margin : float
        Margin from ``end_epoch`` on.
    start_epoch : float
        Epoch at which the ramp starts (SpeechBrain epochs count from 1).
    end_epoch : float
        Epoch at which the ramp ends.

    Example
    -------
    >>> from speechbrain.nnet.losses import AdditiveAngularMargin
    >>> loss = AdditiveAngularMargin(margin=0.2, scale=30.0)
    >>> scheduler = MarginScheduler(loss, 0.0, 0.2, start_epoch=1, end_epoch=5)
    >>> [round(scheduler(epoch), 3) for epoch in range(1, 7)]
    [0.0, 0.05, 0.1, 0.15, 0.2, 0.2]
    >>> loss.margin
    0.2
    """

    def __init__(self, loss, start_margin=0.0, end_margin=0.2, start_epoch=1, end_epoch=5):
        if end_epoch < start_epoch:
            raise ValueError(
                f"end_epoch ({end_epoch}) must not precede start_epoch ({start_epoch})"
            )
        _margin_holder(loss)  # fail early on a loss without a margin
        self.loss = loss
        self.start_margin = float(start_margin)
        self.end_margin = float(end_margin)
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def margin_at(self, epoch):
        """Margin of the schedule at ``epoch`` (does not touch the loss).

        Arguments
        ---------
        epoch : float
            Current epoch.

        Returns
        -------
        float
            The scheduled margin.
        """
        if epoch <= self.start_epoch:
            return self.start_margin
        if epoch >= self.end_epoch:
            return self.end_margin
        progress = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        return self.start_margin + progress * (self.end_margin - self.start_margin)

    def __call__(self, epoch):
        """Set the loss margin for ``epoch`` and return it.

        Arguments
        ---------
        epoch : float
            Current epoch.

        Returns
        -------
        float
            The margin now used by the loss.
        """
        return set_margin(self.loss, self.margin_at(epoch))
