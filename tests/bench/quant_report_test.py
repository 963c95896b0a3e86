#!/usr/bin/env python3
"""bench/quant_report.py on a hand-made bench_quant result whose answers are known: the bits per weight it derives
from the byte counts, the target verdicts on either side of their thresholds, the error-bound verdict, skipped
cases, the join with ptq_sweep's accuracy, the SVG (one point per case of the large shapes), and exit 2 with a
clear message on input that is not a bench_quant --device cuda result. usage: quant_report_test.py REPORT_PY"""
import json
import os
import subprocess
import sys
import tempfile
import xml.dom.minidom

REPORT = sys.argv[1]


def case(shape, batch, kernel, rows, cols, weight_bytes, **counters):
    b = {"name": f"cuda/{shape}/b{batch}/{kernel}", "rows": rows, "cols": cols, "batch": batch,
         "bytes": weight_bytes + 2 * batch * (rows + cols), "time_us": 10.0, "tflops": 1.0}
    b.update(counters)
    return b


def main():
    n = 8192
    benches = [
        case("8192x8192", 1, "cublas_bf16", n, n, 2 * n * n, pct_roofline=80.0, speedup_vs_bf16=1.0, err_bound_ratio=0.2),
        # int4 g128 with fp16 scales: 4 + 16/128 = 4.125 bits per weight
        case("8192x8192", 1, "qgemv_int4_g128", n, n, n * n // 2 + n * (n // 128) * 2, pct_roofline=86.0,
             speedup_vs_bf16=3.6, err_bound_ratio=0.3),
        case("8192x8192", 1, "qgemv_nf4_g64_dq", n, n, n * n // 2 + n * (n // 64), pct_roofline=84.9,
             speedup_vs_bf16=3.5, err_bound_ratio=1.5),
        case("8192x8192", 16, "cublas_bf16", n, n, 2 * n * n, speedup_vs_bf16=1.0, err_bound_ratio=0.2),
        case("8192x8192", 16, "qgemm_int4_g128", n, n, n * n // 2 + n * (n // 128) * 2, speedup_vs_bf16=2.4,
             err_bound_ratio=0.5),
        {"name": "cuda/8192x8192/b16/cublaslt_fp8", "error_occurred": True, "error_message": "no fp8 algorithm"},
        case("512x128", 1, "qgemv_int4_g128", 512, 128, 512 * 64 + 512 * 2, pct_roofline=5.0, speedup_vs_bf16=1.1,
             err_bound_ratio=0.1),
        {"name": "BM_FormatRound/fp16", "real_time": 1.0},  # a CPU case: ignored
    ]
    ctx = {"gpu": "Test GPU", "gpu_sms": "132", "gpu_l2_bytes": str(50 << 20), "copy_gbps": "3000",
           "bf16_peak_tflops": "700", "activations": "bf16"}
    ptq = {"args": {"group_size": "128", "double_quant": "none"},
           "tables": [{"columns": ["format", "granularity", "embeddings", "bits_per_weight", "model_bits_per_weight",
                                   "accuracy", "loss", "kl", "accuracy_drop"],
                       "rows": [["fp32", "-", "-", 32, 32, 100, 0.1, 0, 0],
                                ["int4", "per_group", "keep_fp32", 4.125, 5, 97.0, 0.2, 0.0123, 3],
                                ["int4", "per_group", "quantize", 4.125, 4.2, 90.0, 0.3, 0.05, 10]]}]}
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as d:
        res, acc, md, svg = (os.path.join(d, f) for f in ("r.json", "ptq.json", "r.md", "r.svg"))
        json.dump({"context": ctx, "benchmarks": benches}, open(res, "w"))
        json.dump(ptq, open(acc, "w"))
        p = subprocess.run([sys.executable, REPORT, res, "--accuracy", acc, "--md", md, "--svg", svg],
                           capture_output=True, text=True)
        expect(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        text = open(md).read() if os.path.exists(md) else ""
        expect("| Test GPU | 132 | 50 MiB | 3000 GB/s | 700 TFLOP/s | bf16 |" in text, "machine row")
        expect("`qgemv_int4_g128`: 86% of copy bandwidth (meets ≥ 85%)" in text, "86% meets")
        expect("`qgemv_nf4_g64_dq`: 85% of copy bandwidth (misses ≥ 85%)" in text, "84.9% misses (printed 85)")
        expect("`qgemm_int4_g128`: 2.40× cuBLAS bf16 (misses ≥ 2.5×)" in text, "2.4x misses")
        expect("NO: qgemv_nf4_g64_dq" in text, "the error verdict names the kernel over its bound")
        expect("`cublaslt_fp8`: no fp8 algorithm" in text, "skipped case listed")
        row = next((l for l in text.splitlines() if l.startswith("| int4_g128 |")), "")
        expect(row.startswith("| int4_g128 | 4.125 | 86 | 3.60 | 2.40 |"), f"int4_g128 row: {row}")
        expect("| 97% | 0.012 |" in row, f"accuracy joined with keep_fp32 embeddings only: {row}")
        expect("BM_FormatRound" not in text, "CPU cases ignored")
        if os.path.exists(svg):
            doc = xml.dom.minidom.parse(svg)
            points = [c for c in doc.getElementsByTagName("circle") if c.getElementsByTagName("title")]
            expect(len(points) == 5, f"one SVG point per case of 8192x8192: {len(points)}")
        else:
            failures.append("no SVG written")
        p = subprocess.run([sys.executable, REPORT, acc], capture_output=True, text=True)
        expect(p.returncode == 2 and "holds no cuda/ benchmarks" in p.stderr, "a non-bench file: exit 2 and why")
        p = subprocess.run([sys.executable, REPORT, os.path.join(d, "missing.json")], capture_output=True, text=True)
        expect(p.returncode == 2 and "cannot read" in p.stderr, "a missing file: exit 2 and why")
    for f in failures:
        print("FAIL:", f)
    print(f"quant_report: {'all checks passed' if not failures else str(len(failures)) + ' failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
