#!/usr/bin/env python3
"""Tables and a roofline plot from `bench_quant --device cuda --benchmark_out=FILE --benchmark_out_format=json`.

Writes a Markdown report (the GPU and what was measured at start, batch-1 decode per shape, speed-up over cuBLAS
bf16 by batch, one speed-and-quality table per format, and the issue's targets checked) and an SVG roofline:
arithmetic intensity (FLOP per byte moved) against achieved TFLOP/s, with the roofs the same run measured (copy
bandwidth, dense bf16 peak). The quality columns come from `tunelab run ptq_sweep ... --json` files (--accuracy,
any number): exact-match accuracy and KL to the fp32 model of the tiny preset under each format, measured on the
CPU with the reference quantizer; the GPU kernels compute the same quantized weights (tests/cuda/quant_parity).
Standard library only (no matplotlib on the GPU machine): the SVG is written by hand.

Usage:  python3 bench/quant_report.py RESULT.json [--accuracy ptq.json ...] [--md OUT.md] [--svg OUT.svg]
"""
import argparse
import json
import math
import sys

# bench_quant's format names -> (format, granularity, group size or None, double quantization) in ptq_sweep terms
FORMATS = {
    "int8_channel": ("int8", "per_channel", None, "none"),
    "int4_g32": ("int4", "per_group", 32, "none"),
    "int4_g64": ("int4", "per_group", 64, "none"),
    "int4_g128": ("int4", "per_group", 128, "none"),
    "nf4_g64_dq": ("nf4", "per_group", 64, "fp8_e4m3"),
    "fp8_e4m3_channel": ("fp8_e4m3", "per_channel", None, "none"),
}
BIG_SHAPES = ("8192x8192", "28672x8192", "8192x28672")
COLORS = {"cublas": "#777777", "cublaslt": "#000000", "int8": "#e08000", "int4": "#1f5fbf", "nf4": "#2a9d3a",
          "fp8": "#c0392b", "dequant": "#8e44ad"}


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = []
    for b in data.get("benchmarks", []):
        parts = b["name"].split("/")
        if len(parts) < 4 or parts[0] != "cuda":
            continue
        kernel = parts[3]
        row = {"shape": parts[1], "batch": int(parts[2][1:]), "kernel": kernel,
               "error": b.get("error_message") if b.get("error_occurred") else None}
        for key in ("time_us", "gbps", "tflops", "pct_roofline", "pct_peak", "speedup_vs_bf16", "err_bound_ratio",
                    "rel_rms_err", "bytes", "rows", "cols"):
            if key in b:
                row[key] = b[key]
        rows.append(row)
    return data.get("context", {}), rows


def load_accuracy(paths):
    """(format, granularity, group, dq) -> (accuracy %, kl, bits per weight), plus the fp32 row."""
    out = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        args = data.get("args", {})
        group, dq = int(args.get("group_size", "0")), args.get("double_quant", "none")
        for table in data.get("tables", []):
            cols = table["columns"]
            for r in table["rows"]:
                rec = dict(zip(cols, r))
                if rec.get("embeddings") not in ("keep_fp32", "-"):
                    continue
                g = group if rec["granularity"] == "per_group" else None
                d = dq if rec["granularity"] == "per_group" else "none"
                out[(rec["format"], rec["granularity"], g, d)] = (rec["accuracy"], rec["kl"], rec["bits_per_weight"])
    return out


def fmt(v, spec):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def family(kernel):
    for key in ("dequant", "cublaslt", "cublas", "int8", "int4", "nf4", "fp8"):
        if key in kernel:
            return key
    return "cublas"


def md_report(ctx, rows, accuracy):
    out = []
    gbps, peak = float(ctx.get("copy_gbps", "nan")), float(ctx.get("bf16_peak_tflops", "nan"))
    out.append("| GPU | SMs | L2 | copy bandwidth (measured) | dense bf16 (cuBLAS 8192³, measured) | activations |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    out.append(f"| {ctx.get('gpu', '?')} | {ctx.get('gpu_sms', '?')} | {int(ctx.get('gpu_l2_bytes', 0)) >> 20} MiB "
               f"| {gbps:.0f} GB/s | {peak:.0f} TFLOP/s | {ctx.get('activations', '?')} |")
    out.append("")
    skipped = [r for r in rows if r["error"]]
    if skipped:
        reasons = sorted({(r["kernel"], r["error"]) for r in skipped})
        out.append("Skipped cases: " + "; ".join(f"`{k}`: {e}" for k, e in reasons[:6]))
        out.append("")
    ok = [r for r in rows if not r["error"]]
    shapes = []
    for r in ok:
        if r["shape"] not in shapes:
            shapes.append(r["shape"])

    out.append("### Batch 1 (a decode step)")
    out.append("")
    out.append("| W (out x in) | kernel | µs | GB/s | % of copy bandwidth | × cuBLAS bf16 | err / bound |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for shape in shapes:
        for r in (r for r in ok if r["shape"] == shape and r["batch"] == 1):
            out.append(f"| {shape} | {r['kernel']} | {fmt(r.get('time_us'), '.1f')} | {fmt(r.get('gbps'), '.0f')} "
                       f"| {fmt(r.get('pct_roofline'), '.0f')} | {fmt(r.get('speedup_vs_bf16'), '.2f')} "
                       f"| {fmt(r.get('err_bound_ratio'), '.2g')} |")
    out.append("")

    for shape in (s for s in shapes if s in BIG_SHAPES):
        batches = sorted({r["batch"] for r in ok if r["shape"] == shape})
        kernels = []
        for r in ok:
            if r["shape"] == shape and r["kernel"] not in kernels and r["kernel"] != "cublas_bf16":
                kernels.append(r["kernel"])
        out.append(f"### {shape}: speed-up over cuBLAS bf16 by batch")
        out.append("")
        out.append("| kernel | " + " | ".join(f"b{b}" for b in batches) + " |")
        out.append("| --- |" + " --- |" * len(batches))
        base = {r["batch"]: r.get("time_us") for r in ok if r["shape"] == shape and r["kernel"] == "cublas_bf16"}
        out.append("| cuBLAS bf16 (µs) | " + " | ".join(fmt(base.get(b), ".1f") for b in batches) + " |")
        for k in kernels:
            cell = {r["batch"]: r.get("speedup_vs_bf16") for r in ok if r["shape"] == shape and r["kernel"] == k}
            out.append(f"| {k} | " + " | ".join(fmt(cell.get(b), ".2f") for b in batches) + " |")
        out.append("")

    big = "8192x8192" if "8192x8192" in shapes else (shapes[-1] if shapes else None)
    out.append(f"### Speed and quality per format (speed: {big}; quality: tiny preset, task reverse, PTQ)")
    out.append("")
    out.append("| format | bits/weight | b1 % of copy bw | b1 × bf16 | b16 × bf16 | b256 × bf16 | kernel err/bound "
               "| exact match | KL to fp32 |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    fp32 = next((v for k, v in accuracy.items() if k[0] == "fp32"), None)
    if fp32:
        out.append(f"| fp32 (no quantization) | 32 | | | | | | {fmt(fp32[0], '.0f')}% | 0 |")
    for name, key in FORMATS.items():
        def at(batch, field):
            hit = [r for r in ok if r["shape"] == big and r["batch"] == batch and r["kernel"].endswith(name)
                   and not r["kernel"].startswith("dequant")]
            return hit[0].get(field) if hit else None
        errs = [r.get("err_bound_ratio") for r in ok if r["kernel"].endswith(name) and r.get("err_bound_ratio") is not None]
        acc = accuracy.get(key)
        rows_b1 = [r for r in ok if r["shape"] == big and r["batch"] == 1 and r["kernel"].endswith(name)]
        bits = 8.0 * rows_b1[0]["bytes"] / (rows_b1[0]["rows"] * rows_b1[0]["cols"]) if rows_b1 and "bytes" in rows_b1[0] else None
        if bits is not None:  # bytes count X and Y too: subtract them
            r0 = rows_b1[0]
            bits = 8.0 * (r0["bytes"] - 2 * (r0["rows"] + r0["cols"])) / (r0["rows"] * r0["cols"])
        out.append(f"| {name} | {fmt(bits, '.3f')} | {fmt(at(1, 'pct_roofline'), '.0f')} | {fmt(at(1, 'speedup_vs_bf16'), '.2f')} "
                   f"| {fmt(at(16, 'speedup_vs_bf16'), '.2f')} | {fmt(at(256, 'speedup_vs_bf16'), '.2f')} "
                   f"| {fmt(max(errs) if errs else None, '.2g')} | {fmt(acc[0] if acc else None, '.0f')}{'%' if acc else ''} "
                   f"| {fmt(acc[1] if acc else None, '.2g')} |")
    out.append("")

    out.append("### Targets (issue 10)")
    out.append("")
    for shape in (s for s in shapes if s in BIG_SHAPES):
        for prefix in ("qgemv_int4", "qgemv_nf4", "qgemv_int8"):
            hits = [r for r in ok if r["shape"] == shape and r["batch"] == 1 and r["kernel"].startswith(prefix)]
            for r in hits:
                v = r.get("pct_roofline")
                out.append(f"- {shape} b1 `{r['kernel']}`: {fmt(v, '.0f')}% of copy bandwidth "
                           f"({'meets' if v is not None and v >= 85 else 'misses'} ≥ 85%)")
        for r in (r for r in ok if r["shape"] == shape and r["batch"] == 16 and r["kernel"].startswith("qgemm_int4")):
            v = r.get("speedup_vs_bf16")
            out.append(f"- {shape} b16 `{r['kernel']}`: {fmt(v, '.2f')}× cuBLAS bf16 "
                       f"({'meets' if v is not None and v >= 2.5 else 'misses'} ≥ 2.5×)")
    bad = [r for r in ok if (r.get("err_bound_ratio") or 0) > 1]
    out.append(f"- kernels within their error bound on every sampled case: {'yes' if not bad else 'NO: ' + ', '.join(sorted({r['kernel'] for r in bad}))}")
    out.append("")
    return "\n".join(out)


def svg_roofline(ctx, rows):
    gbps, peak = float(ctx.get("copy_gbps", "nan")), float(ctx.get("bf16_peak_tflops", "nan"))
    pts = [r for r in rows if not r["error"] and r["shape"] in BIG_SHAPES and r.get("tflops") and r.get("bytes")]
    if not pts or math.isnan(gbps) or math.isnan(peak):
        return None
    W, H, L, R, T, B = 760, 480, 70, 170, 30, 50
    xs = [2.0 * r["batch"] * r["rows"] * r["cols"] / r["bytes"] for r in pts]
    x0, x1 = 10 ** math.floor(math.log10(min(xs) / 1.5)), 10 ** math.ceil(math.log10(max(xs) * 1.5))
    ys = [r["tflops"] for r in pts]
    y0, y1 = 10 ** math.floor(math.log10(min(ys) / 1.5)), 10 ** math.ceil(math.log10(max(max(ys), peak) * 1.2))

    def px(x):
        return L + (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * (W - L - R)

    def py(y):
        return H - B - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * (H - T - B)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="18" font-size="13">Roofline: {ctx.get("gpu", "?")}, {ctx.get("activations", "?")} '
         f'activations, {"/".join(BIG_SHAPES)}</text>']
    for e in range(int(math.log10(x0)), int(math.log10(x1)) + 1):
        x = px(10 ** e)
        s.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
        s.append(f'<text x="{x:.1f}" y="{H - B + 15}" text-anchor="middle">1e{e}</text>')
    for e in range(int(math.log10(y0)), int(math.log10(y1)) + 1):
        y = py(10 ** e)
        s.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#eee"/>')
        s.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    s.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">arithmetic intensity (FLOP per byte moved)</text>')
    s.append(f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" '
             f'text-anchor="middle">achieved TFLOP/s</text>')
    # the roofs: bandwidth x intensity up to the ridge, then the dense peak
    ridge = peak * 1e12 / (gbps * 1e9)
    line = []
    for i in range(0, 101):
        x = 10 ** (math.log10(x0) + i / 100 * (math.log10(x1) - math.log10(x0)))
        y = min(gbps * 1e9 * x / 1e12, peak)
        if y >= y0:
            line.append(f"{px(x):.1f},{py(y):.1f}")
    s.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#333" stroke-width="1.5"/>')
    s.append(f'<text x="{px(ridge) + 4:.1f}" y="{py(peak) - 5:.1f}">bf16 peak {peak:.0f} TFLOP/s</text>')
    s.append(f'<text x="{px(x0) + 6:.1f}" y="{py(max(y0, gbps * 1e9 * x0 / 1e12)) - 8:.1f}">copy {gbps:.0f} GB/s</text>')
    for r, x in zip(pts, xs):
        c = COLORS[family(r["kernel"])]
        s.append(f'<circle cx="{px(x):.1f}" cy="{py(r["tflops"]):.1f}" r="3.5" fill="{c}" fill-opacity="0.75">'
                 f'<title>{r["shape"]} b{r["batch"]} {r["kernel"]}: {r["tflops"]:.2f} TFLOP/s</title></circle>')
    for i, (name, c) in enumerate(COLORS.items()):
        y = T + 20 + 18 * i
        s.append(f'<circle cx="{W - R + 20}" cy="{y}" r="4" fill="{c}"/><text x="{W - R + 30}" y="{y + 4}">{name}</text>')
    s.append("</svg>")
    return "\n".join(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result")
    ap.add_argument("--accuracy", nargs="*", default=[])
    ap.add_argument("--md")
    ap.add_argument("--svg")
    a = ap.parse_args()
    try:
        ctx, rows = load(a.result)
        accuracy = load_accuracy(a.accuracy)
    except (OSError, ValueError, KeyError) as e:
        print(f"quant_report: cannot read the input: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"quant_report: {a.result} holds no cuda/ benchmarks (run bench_quant --device cuda "
              "--benchmark_out=FILE --benchmark_out_format=json)", file=sys.stderr)
        return 2
    report = md_report(ctx, rows, accuracy)
    if a.md:
        with open(a.md, "w") as f:
            f.write(report + "\n")
    else:
        print(report)
    svg = svg_roofline(ctx, rows)
    if a.svg and svg:
        with open(a.svg, "w") as f:
            f.write(svg + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
