"""The published architectures of Chronos-Bolt (tiny, mini, small, base) and Chronos-2, with random weights.

A forward pass costs the same with random weights as with the released ones, so these models time the
foundation models DynaMix is compared with where their weights cannot be downloaded. They are saved in
the released layout and loaded through chronos-forecasting's own pipelines, exactly as the benchmark
loads released weights. Their forecasts are meaningless: rows made with them are marked
"architecture timing (random weights)" and never enter an accuracy table.

Where each number comes from (read on the Hugging Face hub, December 2026):

- Chronos-Bolt small and base: the ``config.json`` of ``amazon/chronos-bolt-small`` / ``-base`` (copies
  under ``anchovy/chronos-bolt-small`` and ``amazon/chronos-bolt-base`` refs/pr/4): d_model 512 / 768,
  d_ff 2048 / 3072, d_kv 64, heads 8 / 12, 6 / 12 encoder and decoder layers; ``chronos_config``:
  context 2048, patches of 16 (stride 16), prediction length 64, quantiles 0.1 ... 0.9, a REG token.
- Chronos-Bolt tiny and mini: the model card ("based on t5-efficient-tiny / -mini") and the sizes of
  those T5 configurations (d_model 256 / 384, d_ff 1024 / 1536, d_kv 64, heads 4 / 8, 4 layers), with
  the same ``chronos_config``; confirmed by the parameter counts the hub lists for the released models
  (8.65 M and 21.2 M), which these configurations reproduce exactly (see ``PUBLISHED_PARAMETERS``).
- Chronos-2: the ``config.json`` of ``amazon/chronos-2`` (Chronos2Model): d_model 768, d_ff 3072, d_kv 64,
  12 heads, 12 layers; context 8192, input and output patches of 16, at most 64 output patches, 21
  quantiles 0.01, 0.05, 0.1 ... 0.9, 0.95, 0.99, arcsinh scaling, time-encoding scale 8192, a REG token;
  120 M parameters (the Chronos-2 report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BOLT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
CHRONOS2_QUANTILES = [0.01, 0.05] + [round(0.1 + 0.05 * i, 2) for i in range(17)] + [0.95, 0.99]

#: T5 sizes of each architecture.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "chronos_bolt_tiny": dict(kind="bolt", d_model=256, d_ff=1024, d_kv=64, num_heads=4, num_layers=4),
    "chronos_bolt_mini": dict(kind="bolt", d_model=384, d_ff=1536, d_kv=64, num_heads=8, num_layers=4),
    "chronos_bolt_small": dict(kind="bolt", d_model=512, d_ff=2048, d_kv=64, num_heads=8, num_layers=6),
    "chronos_bolt_base": dict(kind="bolt", d_model=768, d_ff=3072, d_kv=64, num_heads=12, num_layers=12),
    "chronos_2": dict(kind="chronos2", d_model=768, d_ff=3072, d_kv=64, num_heads=12, num_layers=12),
}
#: Parameter counts published for the released models (Hugging Face hub listing; Chronos-2 report).
PUBLISHED_PARAMETERS = {
    "chronos_bolt_tiny": 8.65e6,
    "chronos_bolt_mini": 21.2e6,
    "chronos_bolt_small": 47.7e6,
    "chronos_bolt_base": 205e6,
    "chronos_2": 120e6,
}
RANDOM_WEIGHTS_NOTE = "architecture timing (random weights)"


def build(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Save a randomly initialised model of architecture ``name`` in the released layout; returns its folder.

    The folder is reused when it already holds the model (building ``chronos_bolt_base`` takes a few seconds).
    """
    import torch

    spec = dict(ARCHITECTURES[name])
    kind = spec.pop("kind")
    out = Path(folder) / f"{name}-random"
    if (out / "config.json").exists():
        return out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "bolt":
            from chronos.chronos_bolt import ChronosBoltModelForForecasting
            from transformers import T5Config

            config = T5Config(
                **spec,
                num_decoder_layers=spec["num_layers"],
                vocab_size=2,
                decoder_start_token_id=0,
                pad_token_id=0,
                eos_token_id=1,
                chronos_config=dict(
                    context_length=2048,
                    prediction_length=64,
                    input_patch_size=16,
                    input_patch_stride=16,
                    quantiles=BOLT_QUANTILES,
                    use_reg_token=True,
                ),
                architectures=["ChronosBoltModelForForecasting"],
                chronos_pipeline_class="ChronosBoltPipeline",
            )
            ChronosBoltModelForForecasting(config).save_pretrained(out)
        else:
            from chronos.chronos2.config import Chronos2CoreConfig
            from chronos.chronos2.model import Chronos2Model

            config = Chronos2CoreConfig(
                **spec,
                chronos_config=dict(
                    context_length=8192,
                    input_patch_size=16,
                    input_patch_stride=16,
                    output_patch_size=16,
                    max_output_patches=64,
                    quantiles=CHRONOS2_QUANTILES,
                    use_arcsinh=True,
                    use_reg_token=True,
                    time_encoding_scale=8192,
                ),
                architectures=["Chronos2Model"],
                chronos_pipeline_class="Chronos2Pipeline",
            )
            Chronos2Model(config).save_pretrained(out)
    return out


def parameter_count(folder: str | Path) -> int:
    """Number of parameters of a saved model (read from its safetensors header, nothing loaded)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(folder) / "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            size = 1
            for d in f.get_slice(key).get_shape():
                size *= d
            total += size
    return total
