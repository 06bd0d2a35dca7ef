"""No tensor of a forward or loss path is created on the default (CPU) device.

Runs the training forward passes and losses of every model of the collection
(gated WavLM with padding and the sparsity term, distillation, MHFA, ECAPA,
SSL-AASIST + head, EEND + powerset loss, RawBoost) under
:class:`device_scan.CPUCreationScan`: a factory call without ``device`` in
library code would put a tensor on the CPU when the model runs on a GPU.
"""

import pytest
import torch

from device_scan import CPUCreationScan

from conftest import make_hf_wavlm

UNITS = ("conv", "head", "attlayer", "interm", "ffnlayer")


def scan(fn):
    with CPUCreationScan() as mode:
        fn()
    return sorted(mode.found)


@pytest.fixture(scope="module")
def wavlm_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan") / "hf"
    make_hf_wavlm(folder)
    return folder


def test_scan_finds_a_device_less_factory_call(monkeypatch):
    """The scan itself: a library function creating a CPU tensor is reported."""
    import speechbrain_pruning.nn as nn_module

    def bad(counts, max_len):
        return torch.arange(max_len)[None, :] < counts[:, None]

    monkeypatch.setattr(nn_module, "length_mask", bad)
    found = scan(lambda: nn_module.length_mask(torch.tensor([2]), 3))
    assert found == []  # defined in this test file: not library code
    code = compile("def bad(c, n):\n    return torch.arange(n)[None] < c[:, None]\n",
                   nn_module.__file__, "exec")
    namespace = {"torch": torch}
    exec(code, namespace)
    assert scan(lambda: namespace["bad"](torch.tensor([2]), 3))[0][1] == "arange"


@pytest.mark.parametrize("units", [UNITS, ("conv", "head", "interm"), ("attlayer",)])
@pytest.mark.parametrize("stable", [False, True])
def test_wavlm_training_forward_and_sparsity_term(wavlm_folder, tmp_path, stable, units):
    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.pruning import DistillLoss, SparsityController

    folder = wavlm_folder
    if stable:
        folder = tmp_path / "large"
        make_hf_wavlm(folder, stable=True)
    model = PrunableWavLM.from_pretrained(folder, prune_units=units).train()
    teacher = PrunableWavLM.from_pretrained(folder).eval()
    controller = SparsityController(0.5, 10, objective="macs")
    distill = DistillLoss([0, 2], student_dim=32, teacher_dim=32, projection=True)
    wavs, lens = torch.randn(2, 6000), torch.tensor([1.0, 0.7])

    def step():
        hidden = model(wavs, lens)
        frame_lens = model.frame_relative_lengths(lens, wavs.shape[1])
        loss, _ = distill(hidden, teacher(wavs, lens), frame_lens)
        loss = loss + controller(model.expected_sparsity("macs").float())
        loss = loss + controller(model.expected_sparsity("params").float())
        loss.backward()
        model.eval()
        model(wavs, lens)

    assert scan(step) == []


def test_back_ends_and_losses():
    from speechbrain_pruning.diarization import EENDHead
    from speechbrain_pruning.speaker import MHFA, WeightedLayerECAPA
    from speechbrain_pruning.spoofing import SSLAASIST, RawBoost, SpoofHead

    from conftest import random_hidden

    hidden, lens = random_hidden(batch=2, frames=40), torch.tensor([1.0, 0.6])
    layers, dim = hidden.shape[0], hidden.shape[-1]
    mhfa = MHFA(num_layers=layers, feat_dim=dim, num_heads=2, compression_dim=8, embed_dim=8)
    ecapa = WeightedLayerECAPA(num_layers=layers, feat_dim=dim, channels=[16, 16, 16, 16, 48],
                               lin_neurons=8)
    aasist = SSLAASIST(num_layers=layers, feat_dim=dim, proj_dim=12,
                       channels=((1, 4), (4, 4), (4, 6)), attention_dim=8, gat_dims=(8, 6))
    head = SpoofHead(in_dim=8)
    eend = EENDHead(num_layers=layers, feat_dim=dim, hidden=16, conformer_layers=1, heads=2,
                    ffn_dim=32, kernel_size=3, max_speakers=3, max_per_frame=2)
    rawboost = RawBoost(algo=5)

    def step():
        for module in (mhfa, ecapa, aasist, head, eend, rawboost):
            module.train()
        loss = mhfa(hidden, lens).sum() + ecapa(hidden, lens).sum()
        loss = loss + aasist(hidden, lens).sum() + head(mhfa(hidden, lens)).sum()
        log_probs = eend(hidden, lens)
        labels = (torch.rand(2, log_probs.shape[1], 3) > 0.5).float()
        loss = loss + eend.powerset.permutation_invariant_loss(log_probs, labels, lens)
        loss.backward()
        rawboost(torch.randn(2, 4000), lens)
        for module in (mhfa, ecapa, aasist, eend):
            module.eval()
            module(hidden, lens)

    assert scan(step) == []
