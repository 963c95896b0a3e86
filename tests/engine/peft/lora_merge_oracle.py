#!/usr/bin/env python3
"""Independent check of tunelab's LoRA merge against Hugging Face PEFT's rule for GPT-2's Conv1D.

PEFT's LoraLayer.get_delta_weight with fan_in_fan_out=True is  transpose(B @ A) * scaling, scaling = lora_alpha / r
(lora_alpha / sqrt(r) with use_rslora), and merging adds it to the (in, out) Conv1D weight. This script applies
that rule in float64 numpy to the base model folder and the PEFT folder tunelab wrote, and compares every tensor
with the merged model folder tunelab wrote. It reuses only the safetensors reader of tests/parity/torch_gpt2.py.

Usage: lora_merge_oracle.py TORCH_GPT2_PY BASE_DIR ADAPTER_DIR MERGED_DIR     (exit 77: numpy missing)
"""
import importlib.util
import json
import math
import sys


def main(argv):
    try:
        import numpy as np
    except ImportError:
        print("SKIP: numpy not available")
        return 77
    oracle_py, base_dir, adapter_dir, merged_dir = argv[1:5]
    spec = importlib.util.spec_from_file_location("torch_gpt2", oracle_py)
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    base, _ = reader.read_safetensors(f"{base_dir}/model.safetensors", np)
    merged, _ = reader.read_safetensors(f"{merged_dir}/model.safetensors", np)
    lora, _ = reader.read_safetensors(f"{adapter_dir}/adapter_model.safetensors", np)
    with open(f"{adapter_dir}/adapter_config.json") as f:
        cfg = json.load(f)
    assert cfg["peft_type"] == "LORA" and cfg["fan_in_fan_out"] is True, cfg
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    expected = {k: v.astype(np.float64) for k, v in base.items()}
    prefix = "base_model.model."
    modules = sorted({k[len(prefix):-len(".lora_A.weight")] for k in lora if k.endswith(".lora_A.weight")})
    assert modules, "no lora_A tensors"
    for m in modules:
        A = lora[f"{prefix}{m}.lora_A.weight"].astype(np.float64)  # (r, in)
        B = lora[f"{prefix}{m}.lora_B.weight"].astype(np.float64)  # (out, r)
        assert A.shape[0] == r and B.shape[1] == r, (m, A.shape, B.shape)
        expected[f"{m}.weight"] = expected[f"{m}.weight"] + (B @ A).T * scaling
    bad = 0
    for name, want in expected.items():
        got = merged[name].astype(np.float64)
        err = np.abs(got - want).max()
        if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
            print(f"MISMATCH {name}: max abs error {err:.3g}")
            bad += 1
    changed = sum(not np.array_equal(base[f"{m}.weight"], merged[f"{m}.weight"]) for m in modules)
    print(f"{len(modules)} LoRA modules (r {r}, scaling {scaling:g}), {len(expected)} tensors compared, "
          f"{changed} weights changed by the merge, {bad} mismatches")
    return 1 if bad or changed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
