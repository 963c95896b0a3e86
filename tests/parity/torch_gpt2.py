#!/usr/bin/python3
"""PyTorch parity oracle for tunelab's GPT-2.

Rebuilds GPT-2 independently in PyTorch, in float64, from a tunelab model folder (config.json with Hugging
Face GPT-2 fields, model.safetensors with HF names and Conv1D (in, out) layouts, lm_head tied to wte), runs
the text's bytes through it, backpropagates loss = mean over t < T-1 of CE(logits[t], token[t+1]), and
compares logits, loss and every parameter's gradient with the file written by

    tunelab inspect --model DIR --text TEXT --out FILE.safetensors

Usage:  torch_gpt2.py --model DIR --text TEXT --inspect FILE.safetensors
Exit:   0 all within tolerance, 1 some tensor is not (or is missing), 2 bad input, 77 torch/numpy missing.
Deliberately uses neither transformers nor the safetensors package: the reader below is 30 lines of json and
numpy, and the model is written out op by op so it shares no code (and no bugs) with tunelab.
"""
import argparse
import json
import math
import struct
import sys

# Tolerances: tunelab computes in float32 (eps 6e-8), the oracle in float64. On the nano model the chains of
# reductions (C = 32, 4C = 128, V = 257, T <= 32) leave float32 errors of ~1e-6 relative to a tensor's scale,
# and a real bug (a sign, a missing residual or bias, a wrong 1/sqrt(hs) or LayerNorm eps, an untied head)
# is an O(1) relative error. So:
#   logits: |a - b| <= 1e-4 + 1e-4 |b|        (logits are O(1..10); float32 error ~1e-6 of that)
#   loss:   |a - b| <= 1e-5 + 1e-5 |b|
#   grads:  |a - b| <= 1e-4 max|b| + 1e-3 |b|  per tensor: the absolute part scales with the tensor's largest
#           gradient, because float32 error in a gradient is relative to the magnitudes summed into it, not to
#           the (possibly tiny, cancelled) result. Observed on nano after 20 steps: <= 1e-5 of max|b| (the
#           LayerNorm scales of the first layers, whose gradients are sums over T with cancellation), so 1e-4
#           leaves 10x headroom and a bug still shows as an error of order max|b|.
LOGITS_ATOL, LOGITS_RTOL = 1e-4, 1e-4
LOSS_ATOL, LOSS_RTOL = 1e-5, 1e-5
GRAD_ATOL_OF_MAX, GRAD_RTOL = 1e-4, 1e-3

SKIP = 77


def read_safetensors(path, np):
    """{name: numpy array} and the __metadata__ dict of a .safetensors file."""
    dtypes = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        shape = tuple(int(d) for d in info["shape"])
        chunk = data[begin:end]
        if info["dtype"] == "BF16":  # no numpy bfloat16: widen the 16 bits to the top of a float32
            arr = (np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in dtypes:
            arr = np.frombuffer(chunk, dtype=np.dtype(dtypes[info["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        if arr.size != math.prod(shape):
            raise ValueError(f"{path}: tensor {name} has {arr.size} elements for shape {shape}")
        tensors[name] = arr.reshape(shape).copy()
    return tensors, metadata


def param_names(n_layer):
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        names += [p + s for s in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                  "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                  "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")]
    return names + ["transformer.ln_f.weight", "transformer.ln_f.bias"]


def gelu_tanh(torch, x):
    # GPT-2's "gelu_new"
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(torch, x, w, b, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gpt2_logits(torch, cfg, P, tokens):
    """Logits (T, V) of GPT-2 (pre-LN, learned positions, tied head) for one row of tokens."""
    T, C, H = len(tokens), cfg["n_embd"], cfg["n_head"]
    hs, eps = C // H, cfg["layer_norm_epsilon"]
    idx = torch.tensor(tokens, dtype=torch.long)
    x = P["transformer.wte.weight"][idx] + P["transformer.wpe.weight"][:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        p = lambda s: P[f"transformer.h.{i}.{s}"]  # noqa: E731
        h = layer_norm(torch, x, p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")  # Conv1D: y = x W + b, W (C, 3C)
        q, k, v = (t.reshape(T, H, hs).transpose(0, 1) for t in qkv.split(C, dim=1))  # (H, T, hs) each
        att = (q @ k.transpose(1, 2)) / math.sqrt(hs)
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        h = layer_norm(torch, x, p("ln_2.weight"), p("ln_2.bias"), eps)
        x = x + gelu_tanh(torch, h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias")) @ p("mlp.c_proj.weight") \
            + p("mlp.c_proj.bias")
    x = layer_norm(torch, x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return x @ P["transformer.wte.weight"].T  # tied lm_head


def compare(np, name, got, ref, atol, rtol):
    """One report line; True when every element is within atol + rtol |ref| (NaN/inf never are)."""
    if got.shape != ref.shape:
        print(f"FAIL  {name:44s} shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
        return False
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    err = np.abs(got - ref)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    ok = bool(np.all(np.isfinite(got)) and np.all(err <= atol + rtol * np.abs(ref)))
    max_abs = float(err.max()) if err.size else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    worst = int(err.argmax()) if err.size else 0
    print(f"{'ok  ' if ok else 'FAIL'}  {name:44s} max|ref| {scale:9.3e}  max abs err {max_abs:9.3e}  "
          f"max err/max|ref| {rel:9.3e}" + ("" if ok else f"  (worst at flat index {worst}: "
                                               f"{got.flat[worst]:.7g} vs {ref.flat[worst]:.7g})"))
    return ok


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="tunelab model folder (config.json, model.safetensors)")
    ap.add_argument("--text", required=True, help="the text given to `tunelab inspect` (its bytes are tokens)")
    ap.add_argument("--inspect", required=True, help="the file written by `tunelab inspect`")
    args = ap.parse_args(argv)
    try:
        import numpy as np
        import torch
    except Exception as e:  # ImportError, or a broken install failing while it loads
        print(f"SKIP: torch not available (install python3-torch): {type(e).__name__}: {e}")
        return SKIP

    try:
        with open(f"{args.model}/config.json") as f:
            cfg = json.load(f)
        for key in ("n_embd", "n_layer", "n_head", "n_positions", "vocab_size", "layer_norm_epsilon"):
            if key not in cfg:
                raise ValueError(f"{args.model}/config.json: missing field '{key}'")
        weights, _ = read_safetensors(f"{args.model}/model.safetensors", np)
        inspect, meta = read_safetensors(args.inspect, np)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}")
        return 2

    tokens = list(args.text.encode("utf-8"))
    T, V = len(tokens), cfg["vocab_size"]
    if not 2 <= T <= cfg["n_positions"]:
        print(f"error: the text has {T} bytes; need 2..{cfg['n_positions']} (n_positions)")
        return 2
    if "text" in meta and meta["text"] != args.text:
        print(f"error: {args.inspect} was written for text {meta['text']!r}, not {args.text!r}")
        return 2

    names = param_names(cfg["n_layer"])
    missing = [n for n in names if n not in weights]
    if missing:
        print(f"error: {args.model}/model.safetensors lacks {', '.join(missing)}")
        return 2
    torch.set_default_dtype(torch.float64)
    P = {n: torch.tensor(weights[n].astype(np.float64), requires_grad=True) for n in names}

    logits = gpt2_logits(torch, cfg, P, tokens)
    targets = torch.tensor(tokens[1:], dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(logits[:-1], targets)  # mean over the T-1 predictions
    loss.backward()

    print(f"torch {torch.__version__}: T {T}, V {V}, loss {loss.item():.8f}; tunelab (float32) vs torch (float64)")
    ok = True
    if "logits" not in inspect:
        print(f"FAIL  logits: not in {args.inspect}")
        ok = False
    else:
        got = inspect["logits"]
        got = got.reshape(T, V) if got.size == T * V else got
        ok &= compare(np, "logits", got, logits.detach().numpy(), LOGITS_ATOL, LOGITS_RTOL)
    if "loss" not in inspect or inspect["loss"].size != 1:  # written as 0-d or (1,)
        print(f"FAIL  loss: no single-element 'loss' tensor in {args.inspect}")
        ok = False
    else:
        ok &= compare(np, "loss", inspect["loss"].reshape(()), loss.detach().numpy(), LOSS_ATOL, LOSS_RTOL)
    for n in names:
        key = "grad/" + n
        if key not in inspect:
            print(f"FAIL  {key}: not in {args.inspect}")
            ok = False
            continue
        ref = P[n].grad.numpy()
        ok &= compare(np, key, inspect[key], ref, GRAD_ATOL_OF_MAX * float(np.abs(ref).max()), GRAD_RTOL)
    print("PASS: tunelab matches PyTorch" if ok else "FAIL: tunelab differs from PyTorch")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
