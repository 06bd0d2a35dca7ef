"""Architecture description of a (possibly pruned) WavLM encoder.

:class:`WavLMConfig` is a plain dataclass that is written as a human-readable
``config.json`` by :meth:`PrunableWavLM.save_pretrained`. A pruned model is the
same architecture with per-layer sizes: conv channels per layer, the original
indices of the attention heads each layer keeps (the relative position bias is
shared by all layers and indexed with them), and the FFN width of each layer
(0 = no FFN sublayer; no heads = no attention sublayer).

Readers for the two published formats live here too: Hugging Face
``WavLMConfig`` dictionaries and the ``cfg`` dictionary of original UniLM
checkpoints (``WavLM-Base+.pt``, ``WavLM-Large.pt``).
"""

import ast
import dataclasses
import json
from dataclasses import dataclass, field

__all__ = [
    "WavLMConfig",
    "wavlm_base",
    "wavlm_base_plus",
    "wavlm_large",
    "parse_conv_layers",
]

CONFIG_FORMAT = "speechbrain_pruning.PrunableWavLM"
#: The sample rate every WavLM checkpoint is trained at (the one audio rate of this package).
SAMPLE_RATE = 16000
WAVLM_CONV = [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2


@dataclass
class WavLMConfig:
    """Sizes and options of a WavLM encoder.

    Arguments
    ---------
    conv_layers : list of [channels, kernel, stride]
        The convolutional feature extractor, first layer first.
    conv_bias : bool
        Whether the conv layers have a bias.
    extractor_mode : str
        ``"group_norm"`` (GroupNorm on the first conv only; Base, Base+) or
        ``"layer_norm"`` (LayerNorm after every conv; Large).
    hidden_size, num_layers, num_heads, intermediate_size : int
        Transformer sizes *before* pruning (``num_heads`` is the original head
        count: it fixes the head dimension and the relative position bias).
    layer_heads : list of list of int
        Original indices of the heads each layer keeps (empty = no attention).
    layer_ffn_dims : list of int
        FFN width per layer (0 = no FFN sublayer).
    pos_conv_kernel, pos_conv_groups : int
        Convolutional positional embedding.
    num_buckets, max_distance : int
        Gated relative position bias.
    layer_norm_first : bool
        Pre-LN Transformer (Large) instead of post-LN (Base, Base+).
    final_layer_norm : bool
        Pre-LN only: apply the encoder's final LayerNorm to the last hidden
        state (transformers<5 and s3prl do; transformers>=5 does not).
    normalize_waveform : bool
        Normalise each waveform to zero mean, unit variance before the CNN
        (WavLM Large was trained this way).
    reference_num_params, reference_macs : int
        Encoder size of the unpruned model this one descends from; sparsity is
        measured against these. Filled in when the model is first built.

    Example
    -------
    >>> cfg = wavlm_base_plus()
    >>> cfg.num_layers, cfg.head_dim, cfg.receptive_field
    (12, 64, 400)
    >>> WavLMConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    conv_layers: list = field(default_factory=lambda: [list(c) for c in WAVLM_CONV])
    conv_bias: bool = False
    extractor_mode: str = "group_norm"
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    layer_heads: list = None
    layer_ffn_dims: list = None
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800
    layer_norm_first: bool = False
    final_layer_norm: bool = False
    layer_norm_eps: float = 1e-5
    normalize_waveform: bool = False
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    feat_proj_dropout: float = 0.0
    reference_num_params: int = None
    reference_macs: int = None

    def __post_init__(self):
        self.conv_layers = [[int(v) for v in layer] for layer in self.conv_layers]
        if self.layer_heads is None:
            self.layer_heads = [list(range(self.num_heads))] * self.num_layers
        if self.layer_ffn_dims is None:
            self.layer_ffn_dims = [self.intermediate_size] * self.num_layers
        self.layer_heads = [[int(h) for h in heads] for heads in self.layer_heads]
        self.layer_ffn_dims = [int(d) for d in self.layer_ffn_dims]
        self.validate()

    def validate(self):
        """Raise ``ValueError`` naming the first inconsistent field."""
        if self.extractor_mode not in ("group_norm", "layer_norm"):
            raise ValueError(
                f"extractor_mode must be 'group_norm' or 'layer_norm', got "
                f"{self.extractor_mode!r}"
            )
        for i, layer in enumerate(self.conv_layers):
            if len(layer) != 3 or min(layer) < 1:
                raise ValueError(
                    f"conv_layers[{i}] must be [channels>=1, kernel, stride], got {layer}"
                )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads "
                f"{self.num_heads}"
            )
        if self.hidden_size % self.pos_conv_groups:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by pos_conv_groups "
                f"{self.pos_conv_groups}"
            )
        for name in ("layer_heads", "layer_ffn_dims"):
            if len(getattr(self, name)) != self.num_layers:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries but num_layers is "
                    f"{self.num_layers}"
                )
        for i, heads in enumerate(self.layer_heads):
            if sorted(set(heads)) != heads or (heads and not 0 <= heads[0] <= heads[-1] < self.num_heads):
                raise ValueError(
                    f"layer_heads[{i}] must be sorted unique head indices in "
                    f"[0, {self.num_heads}), got {heads}"
                )

    @property
    def head_dim(self):
        """Dimension of one attention head."""
        return self.hidden_size // self.num_heads

    @property
    def receptive_field(self):
        """Minimum number of samples that yields one output frame."""
        field_, jump = 1, 1
        for _, kernel, stride in self.conv_layers:
            field_ += (kernel - 1) * jump
            jump *= stride
        return field_

    @property
    def frame_shift(self):
        """Samples between two output frames (320 = 20 ms at 16 kHz)."""
        shift = 1
        for _, _, stride in self.conv_layers:
            shift *= stride
        return shift

    def num_frames(self, num_samples):
        """Number of output frames for ``num_samples`` input samples."""
        for _, kernel, stride in self.conv_layers:
            num_samples = (num_samples - kernel) // stride + 1
        return num_samples

    def to_dict(self):
        """JSON-ready dictionary (with a format tag)."""
        out = {"format": CONFIG_FORMAT}
        out.update(dataclasses.asdict(self))
        return out

    def to_json_file(self, path):
        """Write the configuration as indented JSON."""
        with open(path, "w", encoding="utf-8") as fout:
            json.dump(self.to_dict(), fout, indent=2)
            fout.write("\n")

    @classmethod
    def from_dict(cls, data):
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        data = dict(data)
        data.pop("format", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown WavLMConfig fields: {unknown}")
        return cls(**data)

    @classmethod
    def from_hf_dict(cls, hf, do_normalize=False):
        """Read a Hugging Face ``WavLMConfig`` dictionary (``config.json``).

        ``do_normalize`` comes from ``preprocessor_config.json`` when present.
        """
        for key in ("hidden_act", "feat_extract_activation"):
            if hf.get(key, "gelu") != "gelu":
                raise ValueError(f"Only gelu activations are supported, {key}={hf[key]!r}")
        if hf.get("add_adapter", False):
            raise ValueError("WavLM checkpoints with an adapter are not supported")
        norm = hf.get("feat_extract_norm", "group")
        if norm not in ("group", "layer"):
            raise ValueError(f"feat_extract_norm must be 'group' or 'layer', got {norm!r}")
        conv = [
            [c, k, s]
            for c, k, s in zip(hf["conv_dim"], hf["conv_kernel"], hf["conv_stride"])
        ]
        return cls(
            conv_layers=conv,
            conv_bias=bool(hf.get("conv_bias", False)),
            extractor_mode="group_norm" if norm == "group" else "layer_norm",
            hidden_size=hf["hidden_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            pos_conv_kernel=hf.get("num_conv_pos_embeddings", 128),
            pos_conv_groups=hf.get("num_conv_pos_embedding_groups", 16),
            num_buckets=hf.get("num_buckets", 320),
            max_distance=hf.get("max_bucket_distance", 800),
            layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-5),
            normalize_waveform=bool(do_normalize),
            hidden_dropout=hf.get("hidden_dropout", 0.1),
            attention_dropout=hf.get("attention_dropout", 0.1),
            activation_dropout=hf.get("activation_dropout", 0.0),
            feat_proj_dropout=hf.get("feat_proj_dropout", 0.0),
        )

    @classmethod
    def from_unilm_cfg(cls, cfg):
        """Read the ``cfg`` dictionary of an original UniLM WavLM checkpoint."""
        if not cfg.get("relative_position_embedding", True) or not cfg.get("gru_rel_pos", True):
            raise ValueError(
                "The UniLM checkpoint is not a WavLM (relative_position_embedding and "
                "gru_rel_pos must be true)"
            )
        mode = cfg.get("extractor_mode", "default")
        if mode not in ("default", "layer_norm"):
            raise ValueError(f"extractor_mode must be 'default' or 'layer_norm', got {mode!r}")
        return cls(
            conv_layers=parse_conv_layers(
                cfg.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
            ),
            conv_bias=bool(cfg.get("conv_bias", False)),
            extractor_mode="group_norm" if mode == "default" else "layer_norm",
            hidden_size=cfg.get("encoder_embed_dim", 768),
            num_layers=cfg.get("encoder_layers", 12),
            num_heads=cfg.get("encoder_attention_heads", 12),
            intermediate_size=cfg.get("encoder_ffn_embed_dim", 3072),
            pos_conv_kernel=cfg.get("conv_pos", 128),
            pos_conv_groups=cfg.get("conv_pos_groups", 16),
            num_buckets=cfg.get("num_buckets", 320),
            max_distance=cfg.get("max_distance", 800),
            layer_norm_first=bool(cfg.get("layer_norm_first", False)),
            normalize_waveform=bool(cfg.get("normalize", False)),
            hidden_dropout=cfg.get("dropout", 0.1),
            attention_dropout=cfg.get("attention_dropout", 0.1),
            activation_dropout=cfg.get("activation_dropout", 0.0),
            feat_proj_dropout=cfg.get("dropout_input", 0.0),
        )


def parse_conv_layers(spec):
    """Evaluate a fairseq ``conv_feature_layers`` string without ``eval``.

    Only list/tuple literals of integers combined with ``+`` and ``*`` are
    accepted.

    Example
    -------
    >>> parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 2")
    [[512, 10, 5], [512, 3, 2], [512, 3, 2]]
    """

    def value(node):
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(elt) for elt in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"Unsupported conv_feature_layers expression: {spec!r}")

    layers = value(ast.parse(spec, mode="eval"))
    return [list(layer) for layer in layers]


def wavlm_base(**overrides):
    """WavLM Base (94.4 M encoder parameters, post-LN, group-norm CNN)."""
    return WavLMConfig(**overrides)


def wavlm_base_plus(**overrides):
    """WavLM Base+ (same sizes as Base, trained on 94 k hours)."""
    return WavLMConfig(**overrides)


def wavlm_large(**overrides):
    """WavLM Large (315 M, pre-LN, layer-norm CNN with bias-free convs)."""
    kwargs = dict(
        extractor_mode="layer_norm",
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        intermediate_size=4096,
        layer_norm_first=True,
        normalize_waveform=True,
    )
    kwargs.update(overrides)
    return WavLMConfig(**kwargs)
