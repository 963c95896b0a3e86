#!/usr/bin/python3
"""Throughput and memory side by side: tunelab's bench_train against the identical workload in PyTorch.

Both sides train the same GPT-2 (pre-LN, learned positions, tied embeddings, biases, GELU tanh, GPT-2 init) on
the same batch shape, in float32, with AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on the Linear weights
only, as tunelab's decays_by_default, lr 1e-4) and global-norm clipping at 1.0; run forward-only (inference:
logits, no loss); and generate greedily at batch 1 from a 1-token prompt (tunelab with its KV cache, PyTorch as
nanoGPT's GPT.generate does: the whole window, cropped to T, again for every new token). Each measurement is
its own process, tunelab then PyTorch for each thread count, round after round, so drift on a shared machine
hits both sides alike. Prints tokens/s of each, the ratio tunelab/PyTorch per thread count, the peak resident
memory (ru_maxrss) of each side's training process, and the machine. Not a correctness check (that is
tests/parity).

Usage:  /usr/bin/python3 bench/compare_pytorch.py [build/bench/bench_train] [--preset tiny|small]
            [--threads 1,2] [--rounds 3] [--repeats 5] [--no-forward] [--no-generate] [--torch-variants]
            [--blas-dir DIR] [--json OUT]
How to read the output, and the numbers measured: docs/benchmarks.md.

On a GPU (section [GPU] below; docs/cuda.md):  bench/compare_pytorch.py build-cuda/bench/bench_train --device cuda
            [--precision fp32,tf32,bf16,fp16] [--presets tiny,small,medium] [--rounds 1] [--repeats 5] [--no-compile]
trains and runs forward on the GPU: tunelab's bench_train --device cuda against PyTorch eager and torch.compile,
in the same precision (tf32: torch.backends.cuda.matmul.allow_tf32; bf16/fp16: torch.autocast, fp16 with a
GradScaler), and prints tokens/s of each, the ratios tunelab/PyTorch, peak GPU memory and the GPU's name.

PyTorch's GEMMs go to whatever libblas.so.3 the system picked. Debian's python3-torch runs on the reference
(netlib) BLAS unless OpenBLAS is installed, and is then ~20x slower at GEMMs than it should be: this script
points the PyTorch process at OpenBLAS when it finds it (libopenblas0-pthread) and says which BLAS it loaded.
OpenBLAS keeps its own thread pool, which torch.set_num_threads does not govern, so OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS are set in the PyTorch process's environment before torch is imported.
"""
import argparse
import contextlib
import glob
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

#            vocab    T    C    L  H  batch   (engine/model/config.cpp)
PRESETS = {
    "tiny": dict(V=257, T=128, C=128, L=4, H=4, B=16),
    "small": dict(V=257, T=256, C=256, L=6, H=8, B=8),
    "medium": dict(V=257, T=256, C=512, L=8, H=8, B=8),
}
WARMUP_STEPS = 3
CPU_PRESETS = ("small", "tiny")  # bench_train's CPU rows; medium is timed on the GPU only
RATE_MODES = ("train", "forward", "generate")  # the tokens/s rows of the table, in this order
MIN_REPEAT_S = 0.5  # a PyTorch generation repetition: whole generations for at least this, as Google Benchmark


# --------------------------------------------------------------------------------------------------------------
# The PyTorch side: runs in a child process (--worker), so the thread settings are in its environment before
# torch is imported, and each measurement starts from a fresh process, as tunelab's does.

def build_model(torch, cfg):
    nn, F = torch.nn, torch.nn.functional
    V, T, C, L, H = cfg["V"], cfg["T"], cfg["C"], cfg["L"], cfg["H"]
    hs = C // H

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x, mask):
            B_, T_, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B_, T_, H, hs).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(mask[:T_, :T_], float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B_, T_, C)
            x = x + self.c_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = nn.LayerNorm(C, eps=1e-5)
            self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1))  # True above the diagonal
            for name, p in self.named_parameters():  # GPT-2 init, as Gpt::init_gpt2
                if p.dim() == 2:
                    is_resid_proj = name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight")
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L) if is_resid_proj else 0.02)
                elif name.endswith("bias"):
                    nn.init.zeros_(p)
                # LayerNorm weights keep their 1

        def forward(self, tokens, last_only=False):
            x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1], device=tokens.device))
            for block in self.h:
                x = block(x, self.mask)
            x = self.ln_f(x)
            if last_only:  # as nanoGPT at inference: the head only on the last position, (B, 1, V)
                x = x[:, [-1], :]
            return F.linear(x, self.wte.weight)  # tied head: logits = ln_f(x) wte^T

    return Gpt()


def loaded_blas():
    """The BLAS shared objects this process mapped (which libblas.so.3 torch really uses)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    return sorted(libs)


def peak_rss_mib():
    """This process's peak resident set so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokens_per_s(run, tokens_per_call, calls, repeats, sync=lambda: None):
    """Median over `repeats` timings of `calls` calls each; sync() (the GPU's) before each clock reading."""
    rates = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            run()
        sync()
        rates.append(tokens_per_call * calls / (time.perf_counter() - start))
    return statistics.median(rates)


def worker(args):
    import torch
    rss_import = peak_rss_mib()  # the interpreter and torch's libraries, before any model exists
    torch.set_num_threads(args.intra_threads)
    torch.manual_seed(0)
    cfg = PRESETS[args.preset]
    B, T, V = cfg["B"], cfg["T"], cfg["V"]
    model = build_model(torch, cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith(("wte", "wpe"))]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    data = torch.randint(0, V, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def forward():
        with torch.no_grad():
            model(x)

    prompt = data[:1, :1]  # batch 1, a 1-token prompt

    def generate():  # nanoGPT's GPT.generate, greedy: re-runs the window (cropped to T) for every new token
        idx = prompt
        with torch.no_grad():
            for _ in range(args.new_tokens):
                idx_cond = idx if idx.size(1) <= T else idx[:, -T:]
                logits = model(idx_cond, last_only=True)
                idx = torch.cat((idx, logits[:, -1, :].argmax(dim=-1, keepdim=True)), dim=1)
        return idx

    with torch.no_grad():  # a sanity check that this is a freshly initialised GPT-2: about ln V
        initial_loss = torch.nn.functional.cross_entropy(model(x).view(-1, V), y.view(-1)).item()
    result = {"torch": torch.__version__, "intra_threads": torch.get_num_threads(),
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "initial_loss": initial_loss}
    for _ in range(WARMUP_STEPS):
        train_step()
    result["train"] = tokens_per_s(train_step, B * T, args.steps, args.repeats)
    # Read right after training, before forward and generate run, as tunelab's train_step counter is.
    result["peak_rss_MiB"], result["rss_import_MiB"] = peak_rss_mib(), rss_import
    if not args.no_forward:
        for _ in range(WARMUP_STEPS):
            forward()
        result["forward"] = tokens_per_s(forward, B * T, 3 * args.steps, args.repeats)
    if args.new_tokens > 0:
        start = time.perf_counter()
        if generate().shape[1] != 1 + args.new_tokens:  # also the warm-up, which sizes a repetition
            sys.exit("compare_pytorch worker: generate() returned the wrong number of tokens")
        calls = max(1, math.ceil(MIN_REPEAT_S / (time.perf_counter() - start)))
        result["generate"] = tokens_per_s(generate, args.new_tokens, calls, args.repeats)
    result["blas"] = loaded_blas()
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------------------------
# The driver: runs both sides, round after round, and prints the table.

def find_openblas(requested):
    """The folder whose libblas.so.3 is OpenBLAS, to put first on the PyTorch process's LD_LIBRARY_PATH."""
    if requested:
        if not os.path.exists(os.path.join(requested, "libblas.so.3")):
            sys.exit(f"compare_pytorch: --blas-dir {requested} holds no libblas.so.3")
        return requested
    for pattern in ("/usr/lib/*/openblas-pthread", "/usr/lib/*/openblas-openmp", "/usr/lib/*/openblas"):
        for d in sorted(glob.glob(pattern)):
            if os.path.exists(os.path.join(d, "libblas.so.3")):
                return d
    return None


def run_torch(args, intra, blas_threads, blas_dir, new_tokens):
    env = dict(os.environ, OMP_NUM_THREADS=str(intra), OPENBLAS_NUM_THREADS=str(blas_threads),
               MKL_NUM_THREADS=str(intra))
    if blas_dir:
        env["LD_LIBRARY_PATH"] = blas_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--preset", args.preset,
           "--intra-threads", str(intra), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    if args.no_forward:
        cmd.append("--no-forward")
    if not args.no_generate:
        cmd += ["--new-tokens", str(new_tokens)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_pytorch: the PyTorch worker failed (exit {out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_tunelab(args, threads):
    """Median tokens/s of bench_train's repetitions for this preset and thread count (train, forward, generate),
    and {"peak_rss_MiB", "new_tokens"} where bench_train reports them. One process: train_step is registered
    first, so it runs first, and its peak_RSS_MiB counter (the process's peak so far) is training's."""
    names = ["train_step"] + ["forward_only"] * (not args.no_forward) + ["generate"] * (not args.no_generate)
    cmd = [args.bench, f"--benchmark_filter=^({'|'.join(names)})/{args.preset}/{threads}/real_time$",
           "--benchmark_format=json", f"--benchmark_repetitions={args.repeats}"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_pytorch: {' '.join(cmd)} failed (exit {out.returncode}):\n{out.stderr}")
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b.get("run_type") == "iteration"]
    result, info = {}, {}
    for mode, prefix in (("train", "train_step/"), ("forward", "forward_only/"), ("generate", "generate/")):
        rates = [b["tokens/s"] for b in runs if b["name"].startswith(prefix) and "tokens/s" in b]
        if rates:
            result[mode] = statistics.median(rates)
    rss = [b["peak_RSS_MiB"] for b in runs if b["name"].startswith("train_step/") and "peak_RSS_MiB" in b]
    if rss:
        info["peak_rss_MiB"] = max(rss)  # the process's high-water mark: the last repetition's
    new_tokens = {int(b["new_tokens"]) for b in runs if b["name"].startswith("generate/") and "new_tokens" in b}
    if new_tokens:
        info["new_tokens"] = new_tokens.pop()
    if "train" not in result:
        sys.exit(f"compare_pytorch: {args.bench} ran no train_step/{args.preset}/{threads} benchmark")
    if not args.no_generate and ("generate" not in result or "new_tokens" not in info):
        sys.exit(f"compare_pytorch: {args.bench} ran no generate/{args.preset}/{threads} benchmark (an older "
                 "bench_train? rebuild it, or pass --no-generate)")
    return result, info


def machine():
    info = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    except OSError:
        pass
    return (f"{info.get('Model name', 'unknown CPU')}, {info.get('CPU(s)', os.cpu_count())} CPUs "
            f"({info.get('Core(s) per socket', '?')} cores per socket x {info.get('Socket(s)', '?')} sockets, "
            f"{info.get('Thread(s) per core', '?')} thread(s) per core)")


def torch_configs(threads, variants):
    """(intra-op threads, BLAS threads) to try for a thread count; the best is reported."""
    if threads == 1 or not variants:
        return [(threads, threads)]
    return [(threads, threads), (threads, 1), (1, threads)]


def measure(args, blas_dir):
    """{(mode, threads): {"tunelab": [per round], "torch": [per round]}} and the torch workers' reports. The modes
    are RATE_MODES (tokens/s) and "peak_rss" (MiB of the training process), the latter where bench_train has
    the peak_RSS_MiB counter."""
    results, reports = {}, []
    for r in range(args.rounds):
        for n in args.threads:
            print(f"round {r + 1}/{args.rounds}, {n} thread(s): tunelab ...", file=sys.stderr, flush=True)
            tl, tl_info = run_tunelab(args, n)
            tried = []
            for intra, blas in torch_configs(n, args.torch_variants):
                print(f"round {r + 1}/{args.rounds}, {n} thread(s): PyTorch (intra-op {intra}, BLAS {blas}) ...",
                      file=sys.stderr, flush=True)
                rep = run_torch(args, intra, blas, blas_dir, tl_info.get("new_tokens", 0))
                rep.update(round=r + 1, threads=n, new_tokens=tl_info.get("new_tokens"))
                tried.append(rep)
            reports += tried
            for mode in tl:  # PyTorch's best setting for each mode: training and inference may differ
                cell = results.setdefault((mode, n), {"tunelab": [], "torch": []})
                cell["tunelab"].append(tl[mode])
                cell["torch"].append(max(rep[mode] for rep in tried))
            if "peak_rss_MiB" in tl_info:  # PyTorch's smallest over the settings tried: its best, again
                cell = results.setdefault(("peak_rss", n), {"tunelab": [], "torch": []})
                cell["tunelab"].append(tl_info["peak_rss_MiB"])
                cell["torch"].append(min(rep["peak_rss_MiB"] for rep in tried))
    return results, reports


def median_cells(cell, fmt):
    """'tunelab [min-max] | PyTorch [min-max] | ratio [min-max]': medians over rounds, the rounds' range."""
    a, b = statistics.median(cell["tunelab"]), statistics.median(cell["torch"])
    ratios = [x / y for x, y in zip(cell["tunelab"], cell["torch"])]

    def spread(xs):
        return f"{fmt.format(min(xs))}-{fmt.format(max(xs))}"
    return (f"{fmt.format(a)} [{spread(cell['tunelab'])}] | {fmt.format(b)} [{spread(cell['torch'])}] "
            f"| {a / b:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")


def print_report(args, results, reports, blas_dir):
    cfg = PRESETS[args.preset]
    blas = reports[0]["blas"] if reports else []
    print(f"machine: {machine()}")
    names = ", ".join(os.path.basename(b) for b in blas) or "none mapped"
    where = os.path.dirname(blas[0]) if blas else ""
    print(f"PyTorch {reports[0]['torch']}, BLAS: {names} from {where}"
          + (" (via LD_LIBRARY_PATH)" if blas_dir else "")
          + f"; initial loss {reports[0]['initial_loss']:.3f} (ln V = {math.log(cfg['V']):.3f})")
    if not any("openblas" in b for b in blas):
        print("WARNING: PyTorch is not on OpenBLAS (reference BLAS?): its GEMMs are far slower than they can be, "
              "and the ratios below flatter tunelab. Install libopenblas0-pthread or pass --blas-dir.")
    print(f"preset {args.preset}: batch {cfg['B']} x T {cfg['T']}, C {cfg['C']}, L {cfg['L']}, H {cfg['H']}, "
          f"V {cfg['V']}; {args.rounds} rounds, each the median of {args.repeats} repetitions; "
          f"the table shows the median over rounds [min-max]\n")
    print("| mode | threads | tunelab tokens/s | PyTorch tokens/s | tunelab/PyTorch (higher: tunelab faster) |")
    print("|---|---:|---:|---:|---:|")
    rates = [(key, cell) for key, cell in results.items() if key[0] in RATE_MODES]
    for (mode, n), cell in sorted(rates, key=lambda kv: (RATE_MODES.index(kv[0][0]), kv[0][1])):
        print(f"| {mode} | {n} | " + median_cells(cell, "{:,.0f}") + " |")
    new_tokens = next((rep["new_tokens"] for rep in reports if rep.get("new_tokens")), None)
    if new_tokens:
        print(f"\ngenerate: batch 1, a 1-token prompt, {new_tokens} new tokens, greedy (argmax); tokens/s counts "
              "the new tokens. tunelab: generate() with its KV cache. PyTorch: nanoGPT's loop, the whole window "
              "(cropped to T) through the model again for each new token, head on the last position, no_grad.")

    memory = sorted((n, cell) for (mode, n), cell in results.items() if mode == "peak_rss")
    if memory:
        print("\nPeak resident memory of the training process (ru_maxrss, MiB; the same batch as train above):\n")
        print("| threads | tunelab MiB | PyTorch MiB | tunelab/PyTorch (lower: tunelab uses less) |")
        print("|---:|---:|---:|---:|")
        for n, cell in memory:
            print(f"| {n} | " + median_cells(cell, "{:,.1f}") + " |")
        rss_import = min(rep["rss_import_MiB"] for rep in reports)
        print(f"\n(PyTorch's process holds {rss_import:,.0f} MiB after `import torch`, before any model: its "
              "interpreter and libraries. Both columns are whole processes, libraries included.)")
    else:
        print("\n(no peak memory: this bench_train has no peak_RSS_MiB counter; rebuild it)")
    if args.torch_variants:
        print("\nPyTorch thread settings tried (tokens/s, peak MiB; the tables keep the best of each round "
              "and mode):")
        print("| round | threads | intra-op | BLAS | train | forward | generate | peak MiB |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rep in reports:
            print(f"| {rep['round']} | {rep['threads']} | {rep['intra_threads']} | {rep['blas_threads']} "
                  f"| {rep['train']:,.0f} | {rep.get('forward', float('nan')):,.0f} "
                  f"| {rep.get('generate', float('nan')):,.0f} | {rep['peak_rss_MiB']:,.1f} |")

# --------------------------------------------------------------------------------------------------------------
# [GPU] --device cuda: both sides on the GPU, in the same GEMM precision. tunelab: bench_train --device cuda, one
# process per round for every preset and precision. PyTorch: one worker process per variant (eager, compile) and
# round, every preset and precision in turn; a variant that fails (torch.compile without a working Triton, say) is
# reported as such and the others still print.

GPU_VARIANTS = ("eager", "compile")
GPU_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def gpu_worker(args):
    import torch
    F = torch.nn.functional
    if not torch.cuda.is_available():
        sys.exit("compare_pytorch worker: PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    dev = torch.device("cuda")
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "variant": args.variant, "runs": []}
    for preset in args.presets:
        for precision in args.precisions:
            cfg = PRESETS[preset]
            B, T, V = cfg["B"], cfg["T"], cfg["V"]
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"  # fp32: true FP32 GEMMs, as tunelab's
            torch.backends.cudnn.allow_tf32 = precision == "tf32"
            amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
            autocast = (lambda: torch.autocast("cuda", dtype=amp)) if amp else contextlib.nullcontext
            torch.manual_seed(0)
            model = build_model(torch, cfg).to(dev)
            run = model  # torch.compile's wrapper is made inside the try below: a failure there is this row's
            decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith(("wte", "wpe"))]
            rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith(("wte", "wpe")))]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                    lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
            scaler = (torch.amp.GradScaler("cuda", enabled=precision == "fp16") if hasattr(torch.amp, "GradScaler")
                      else torch.cuda.amp.GradScaler(enabled=precision == "fp16"))  # fp16: as tunelab's dynamic
            data = torch.randint(0, V, (B, T + 1), device=dev)
            x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

            def train_step():
                opt.zero_grad(set_to_none=True)
                with autocast():
                    logits = run(x)
                loss = F.cross_entropy(logits.float().view(-1, V), y.view(-1))
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()

            def forward():
                with torch.no_grad(), autocast():
                    run(x)

            row = {"preset": preset, "precision": precision}
            try:
                if args.variant == "compile":
                    torch._dynamo.reset()  # each preset and precision compiles afresh (no cache-limit fallback)
                    run = torch.compile(model)
                torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                for _ in range(WARMUP_STEPS):  # torch.compile compiles here
                    train_step()
                torch.cuda.synchronize()
                row["warmup_s"] = time.perf_counter() - start
                row["train"] = tokens_per_s(train_step, B * T, args.steps, args.repeats, torch.cuda.synchronize)
                row["peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
                if not args.no_forward:
                    for _ in range(WARMUP_STEPS):
                        forward()
                    row["forward"] = tokens_per_s(forward, B * T, 3 * args.steps, args.repeats,
                                                  torch.cuda.synchronize)
            except Exception as e:  # noqa: BLE001 - any failure of this variant is reported, not fatal
                row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:200]
            out["runs"].append(row)
            del model, run, opt, scaler
            torch.cuda.empty_cache()
    print(json.dumps(out))


def run_torch_gpu(args, variant):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--device", "cuda", "--variant", variant,
           "--presets", ",".join(args.presets), "--precision", ",".join(args.precisions),
           "--steps", str(args.steps), "--repeats", str(args.repeats)] + ["--no-forward"] * args.no_forward
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"variant": variant, "runs": [], "error": (out.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_tunelab_gpu(args):
    """{(preset, precision, mode): tokens/s} (median of bench_train's repetitions), {(preset, precision): peak MiB},
    and bench_train's label (which names the GPU)."""
    names = "train_step" + "|forward_only" * (not args.no_forward)
    cmd = [args.bench, "--device", "cuda", "--precision", ",".join(args.precisions),
           f"--benchmark_filter=^({names})/({'|'.join(args.presets)})/cuda_({'|'.join(args.precisions)})/manual_time$",
           "--benchmark_format=json", f"--benchmark_repetitions={args.repeats}",
           "--benchmark_min_time=0.1"]  # a GPU step takes milliseconds; 0.1 s is dozens of steps per repetition
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_pytorch: {' '.join(cmd)} failed (exit {out.returncode}):\n{out.stderr}")
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b.get("run_type") == "iteration"]
    rates, memory, label = {}, {}, ""
    for b in runs:
        if "error_message" in b or "tokens/s" not in b:
            continue
        name, preset, tail = b["name"].split("/")[:3]
        key = (preset, tail.removeprefix("cuda_"))
        mode = "train" if name == "train_step" else "forward"
        rates.setdefault(key + (mode,), []).append(b["tokens/s"])
        if mode == "train":
            memory[key] = b.get("peak_device_MiB")
        label = b.get("label", label)
    return {k: statistics.median(v) for k, v in rates.items()}, memory, label


def measure_gpu(args):
    """{(preset, precision, mode): {"tunelab": [per round], "eager": [...], "compile": [...]}}, the peak memory of
    each side's training, the torch workers' reports and bench_train's label."""
    results, memory, reports, label = {}, {}, [], ""
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}: tunelab (bench_train --device cuda) ...", file=sys.stderr, flush=True)
        tl, tl_memory, label = run_tunelab_gpu(args)
        for key, rate in tl.items():
            results.setdefault(key, {}).setdefault("tunelab", []).append(rate)
        for key, mib in tl_memory.items():
            memory.setdefault(key, {})["tunelab"] = mib
        for variant in args.variants:
            print(f"round {r + 1}/{args.rounds}: PyTorch {variant} ...", file=sys.stderr, flush=True)
            rep = run_torch_gpu(args, variant)
            rep["round"] = r + 1
            reports.append(rep)
            for row in rep["runs"]:
                key = (row["preset"], row["precision"])
                for mode in ("train", "forward"):
                    if mode in row:
                        results.setdefault(key + (mode,), {}).setdefault(variant, []).append(row[mode])
                if "peak_MiB" in row:
                    memory.setdefault(key, {})[variant] = row["peak_MiB"]
    return results, memory, reports, label


def print_gpu_report(args, results, memory, reports, label):
    gpu = next((rep["gpu"] for rep in reports if rep.get("gpu")), None)
    torch_version = next((rep["torch"] for rep in reports if rep.get("torch")), "?")
    print(f"GPU: {gpu or 'unknown (no PyTorch worker ran)'}; tunelab: {label.split(', ', 2)[-1] if label else '?'}")
    print(f"machine: {machine()}")
    print(f"PyTorch {torch_version}; {args.rounds} round(s), each the median of {args.repeats} repetitions; "
          "cells are the median over rounds\n")
    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    fmt = lambda v: f"{v:,.0f}" if v else "-"  # noqa: E731
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"  # noqa: E731
    head = "| preset | precision | mode | tunelab tokens/s |"
    rule = "|---|---|---|---:|"
    for v in args.variants:
        head += f" PyTorch {v} tokens/s | tunelab/{v} |"
        rule += "---:|---:|"
    print(head + "\n" + rule)
    order = {p: i for i, p in enumerate(args.presets)}, {p: i for i, p in enumerate(args.precisions)}
    for key in sorted(results, key=lambda k: (order[0].get(k[0], 9), order[1].get(k[1], 9), k[2] != "train")):
        cell = results[key]
        tl = med(cell.get("tunelab", []))
        line = f"| {key[0]} | {key[1]} | {key[2]} | {fmt(tl)} |"
        for v in args.variants:
            pt = med(cell.get(v, []))
            line += f" {fmt(pt)} | {ratio(tl, pt)} |"
        print(line)
    print("\nPeak GPU memory while training (MiB; tunelab: its ledger of every cudaMalloc'd byte; PyTorch: "
          "torch.cuda.max_memory_allocated):\n")
    print("| preset | precision | tunelab | " + " | ".join(f"PyTorch {v}" for v in args.variants) + " |")
    print("|---|---|---:|" + "---:|" * len(args.variants))
    for key in sorted(memory, key=lambda k: (order[0].get(k[0], 9), order[1].get(k[1], 9))):
        m = memory[key]
        print(f"| {key[0]} | {key[1]} | {m.get('tunelab') or 0:,.0f} | "
              + " | ".join(f"{m[v]:,.0f}" if v in m else "-" for v in args.variants) + " |")
    failed = {}  # (variant, error) -> the runs it hit (a whole worker: "all")
    for rep in reports:
        if rep.get("error"):
            failed.setdefault((rep.get("variant"), rep["error"]), []).append("all")
        for row in rep.get("runs", []):
            if row.get("error"):
                failed.setdefault((rep.get("variant"), row["error"]), []).append(f"{row['preset']} {row['precision']}")
    for (variant, error), where in failed.items():
        print(f"\nPyTorch {variant} failed ({', '.join(dict.fromkeys(where))}): {error}")
    warm = [(rep["variant"], row["preset"], row["precision"], row["warmup_s"]) for rep in reports
            for row in rep.get("runs", []) if "warmup_s" in row and rep.get("variant") == "compile"]
    if warm:
        print("\ntorch.compile's warm-up (3 steps, compilation included): "
              + ", ".join(f"{p} {q} {s:.0f} s" for _, p, q, s in warm[: len(args.presets) * len(args.precisions)]))
    print("\nBoth sides: the same GPT-2, batch and T as the CPU comparison, AdamW and clipping; tunelab's bf16/fp16 "
          "convert only the GEMM operands (every other op FP32), PyTorch's autocast also runs GELU and the residual "
          "adds of autocast outputs in 16-bit.")


def main_gpu(args):
    args.presets = [p for p in args.presets.split(",") if p]
    args.precisions = [p for p in args.precision.split(",") if p]
    bad = [p for p in args.presets if p not in PRESETS] + [p for p in args.precisions if p not in GPU_PRECISIONS]
    if bad or not args.presets or not args.precisions:
        sys.exit(f"compare_pytorch: unknown preset or precision {bad} (presets: {', '.join(PRESETS)}; precisions: "
                 f"{', '.join(GPU_PRECISIONS)})")
    args.variants = [v for v in GPU_VARIANTS if not (v == "compile" and args.no_compile)]
    if args.worker:
        return gpu_worker(args)
    if args.rounds < 1 or args.repeats < 1 or args.steps < 1:
        sys.exit("compare_pytorch: --rounds, --repeats and --steps must be >= 1")
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"compare_pytorch: no bench_train at {args.bench} (build it with the cuda preset: cmake --build "
                 "build-cuda --target bench_train, or pass its path)")
    if importlib.util.find_spec("torch") is None:
        sys.exit("compare_pytorch: PyTorch is missing (python3 -c 'import torch' fails)")
    start = time.time()
    results, memory, reports, label = measure_gpu(args)
    print_gpu_report(args, results, memory, reports, label)
    print(f"\n(measured in {time.time() - start:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": "cuda", "machine": machine(), "label": label, "torch_runs": reports,
                       "results": [{"preset": k[0], "precision": k[1], "mode": k[2], **c} for k, c in results.items()],
                       "memory": [{"preset": k[0], "precision": k[1], **m} for k, m in memory.items()]}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", nargs="?", default="build/bench/bench_train", help="tunelab's bench_train")
    ap.add_argument("--preset", choices=CPU_PRESETS, default="tiny")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="tunelab/PyTorch alternations per thread count")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement (median kept)")
    ap.add_argument("--steps", type=int, default=5, help="PyTorch: training steps per repetition (3x forwards)")
    ap.add_argument("--no-forward", action="store_true", help="skip the forward-only (inference) comparison")
    ap.add_argument("--no-generate", action="store_true",
                    help="skip the generation comparison (batch 1, greedy, 128 new tokens)")
    ap.add_argument("--torch-variants", action="store_true",
                    help="for n > 1 threads also try PyTorch with (n intra-op, 1 BLAS) and (1, n); keep the best")
    ap.add_argument("--blas-dir", help="folder with the libblas.so.3 PyTorch should load (default: OpenBLAS's)")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--intra-threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--new-tokens", type=int, default=0, help=argparse.SUPPRESS)  # worker: 0 skips generate
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: both sides on the GPU (the [GPU] section of this file; --threads, --preset, "
                         "--no-generate, --torch-variants and --blas-dir do not apply)")
    ap.add_argument("--precision", default="fp32",
                    help="cuda: the GEMMs' precision, comma-separated: fp32, tf32, bf16, fp16 (default fp32)")
    ap.add_argument("--presets", default="tiny,small,medium", help="cuda: comma-separated (default tiny,small,medium)")
    ap.add_argument("--no-compile", action="store_true", help="cuda: PyTorch eager only, no torch.compile variant")
    ap.add_argument("--variant", choices=GPU_VARIANTS, default="eager", help=argparse.SUPPRESS)  # the GPU worker's
    args = ap.parse_args()
    if args.device == "cuda":
        return main_gpu(args)
    if args.precision != "fp32" or args.no_compile:
        sys.exit("compare_pytorch: --precision and --no-compile are for --device cuda (the CPU comparison is FP32)")
    if args.worker:
        return worker(args)

    args.threads = [int(t) for t in args.threads.split(",") if t]
    if not args.threads or min(args.threads) < 1 or args.rounds < 1 or args.repeats < 1 or args.steps < 1:
        sys.exit("compare_pytorch: --threads needs counts >= 1, and --rounds, --repeats, --steps must be >= 1")
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"compare_pytorch: no bench_train at {args.bench} (build it: cmake --build build --target "
                 "bench_train, or pass its path)")
    if importlib.util.find_spec("torch") is None:  # the measurements import it in child processes
        sys.exit("compare_pytorch: PyTorch is missing (Debian: apt-get install python3-torch python3-numpy; "
                 "run with /usr/bin/python3)")
    blas_dir = find_openblas(args.blas_dir)
    start = time.time()
    results, reports = measure(args, blas_dir)
    print_report(args, results, reports, blas_dir)
    print(f"\n(measured in {time.time() - start:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"preset": args.preset, "machine": machine(), "torch_runs": reports,
                       "results": [{"mode": m, "threads": n, **cell} for (m, n), cell in results.items()]}, f,
                      indent=1)


if __name__ == "__main__":
    main()
