#!/usr/bin/env python3
"""The ops of `tessera bench` timed in PyTorch on the same GPU, as a peer.

Same shapes, same row names, fp32 with TF32 off (as tessera's cuBLAS calls),
each row the median of --reps runs timed with CUDA events, beside torch's own
square-SGEMM ceiling. Adds one row tessera has no single op for:
window_attention_sdpa (PyTorch's fused scaled_dot_product_attention over the
same windows), the peer for scores + softmax + values.

usage: bench_torch_peer.py --dim 1024 --heads 8 --hidden 4096 --window 16 \
           --grid-h 128 --grid-w 256 [--batch 1] [--reps 5] [--ceiling-n 8192]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(dim=256, heads=8, hidden=1024, window=8, grid_h=32, grid_w=64, batch=1, reps=5,
                     ceiling_n=1024).items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    ap.add_argument("--json", help="append JSON lines here")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    B, d, H, F_, w = a.batch, a.dim, a.heads, a.hidden, a.window
    hd, Lw = d // H, w * w
    T = B * a.grid_h * a.grid_w
    nW = T // Lw
    g = torch.Generator(device=dev).manual_seed(0)
    rn = lambda *s, scale=1.0: torch.randn(*s, device=dev, generator=g) * scale

    rows = []

    def row(what, detail, fn, flops, nbytes):
        ms = median_ms(fn, a.reps)
        rows.append((what, detail, ms, flops / ms * 1e-6, nbytes / ms * 1e-6))

    n = a.ceiling_n
    A, Bm = rn(n, n), rn(n, n)
    row("ceiling_sgemm", "square", lambda: A @ Bm, 2.0 * n ** 3, 12.0 * n * n)
    ceiling = rows[0][3]
    del A, Bm

    x, Wqkv, Wo = rn(T, d), rn(3 * d, d, scale=0.02), rn(d, d, scale=0.02)
    W13, W2 = rn(2 * F_, d, scale=0.02), rn(d, F_, scale=0.02)
    q, k, v = (rn(B * H * nW, Lw, hd) for _ in range(3))
    att = rn(B * H * nW, Lw, Lw)
    up, hid = rn(T, 2 * F_), rn(T, F_)
    mod = rn(B, 6 * d, scale=0.1)
    natt = B * H * nW * Lw * Lw

    row("qkv_gemm", f"{T}x{3*d}x{d}", lambda: x @ Wqkv.T, 2.0 * T * 3 * d * d, 4.0 * (T * d + 3 * d * d + 3 * T * d))
    row("attn_scores_gemm", f"{B*H*nW} x {Lw}x{Lw}x{hd}", lambda: torch.bmm(q, k.transpose(1, 2)),
        2.0 * natt * hd, 4.0 * B * H * nW * (2 * Lw * hd + Lw * Lw))
    row("softmax_fwd", f"{B*H*nW*Lw} x {Lw}", lambda: torch.softmax(att * 0.125, -1), 5.0 * natt, 8.0 * natt)
    p = torch.softmax(att, -1)
    dp = rn(*att.shape)
    row("softmax_bwd", f"{B*H*nW*Lw} x {Lw}",
        lambda: torch._softmax_backward_data(dp, p, -1, torch.float32), 5.0 * natt, 16.0 * natt)
    row("attn_values_gemm", f"{B*H*nW} x {Lw}x{hd}x{Lw}", lambda: torch.bmm(p, v), 2.0 * natt * hd,
        4.0 * B * H * nW * (2 * Lw * hd + Lw * Lw))
    qs, ks, vs = (t.view(B * nW, H, Lw, hd) for t in (q, k, v))
    row("window_attention_sdpa", f"{B*nW} x {H} x {Lw}x{hd}", lambda: F.scaled_dot_product_attention(qs, ks, vs),
        4.0 * natt * hd, 4.0 * 4 * T * d)
    y = torch.empty(T, d, device=dev)
    row("proj_gemm", f"{T}x{d}x{d}", lambda: torch.mm(y, Wo.T), 2.0 * T * d * d, 4.0 * (2 * T * d + d * d))
    row("mlp_up_gemm", f"{T}x{2*F_}x{d}", lambda: x @ W13.T, 4.0 * T * F_ * d, 4.0 * (T * d + 2 * F_ * d + 2 * T * F_))
    a1, b1 = up[:, :F_], up[:, F_:]
    row("swiglu_fwd", f"{T} x {F_}", lambda: F.silu(a1) * b1, 6.0 * T * F_, 12.0 * T * F_)
    row("mlp_down_gemm", f"{T}x{d}x{F_}", lambda: hid @ W2.T, 2.0 * T * d * F_, 4.0 * (T * F_ + d * F_ + T * d))
    wn = rn(d)
    if hasattr(F, "rms_norm"):
        row("rmsnorm_fwd", f"{T} x {d}", lambda: F.rms_norm(x, (d,), wn, 1e-6), 4.0 * T * d, 8.0 * T * d)
    xb = x.view(B, T // B, d)
    shift, scale, gate = mod[:, None, :d], mod[:, None, d:2 * d], mod[:, None, 2 * d:3 * d]
    row("modulate_fwd", f"{T} x {d}", lambda: torch.addcmul(shift, xb, 1 + scale), 2.0 * T * d, 8.0 * T * d)
    acc = xb.clone()
    row("gated_add_fwd", f"{T} x {d}", lambda: acc.addcmul_(gate, xb), 2.0 * T * d, 12.0 * T * d)
    perm = torch.tensor([(i + T // 2 + w // 2) % T for i in range(T)], device=dev)
    row("gather_rows", f"{T} x {d}", lambda: x.index_select(0, perm), 0.0, 8.0 * T * d)
    npar = 3 * d * d + d * d + 3 * F_ * d + 6 * d * d
    prm = torch.nn.Parameter(rn(npar, scale=0.02))
    prm.grad = rn(npar, scale=1e-3)
    opt = torch.optim.AdamW([prm], lr=1e-4, betas=(0.85, 0.9), weight_decay=0.2, fused=True)
    row("adamw", f"{npar} params", opt.step, 12.0 * npar, 28.0 * npar)

    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}: B{B} {a.grid_h}x{a.grid_w} dim{d} "
          f"heads{H} hidden{F_} win{w}, median of {a.reps}")
    print(f"ceiling: sgemm {n}x{n}x{n} = {ceiling:.2f} GFLOP/s\n")
    print(f"{'op':<22} {'shape':<28} {'ms':>10} {'GFLOP/s':>10} {'of ceil':>9} {'GB/s':>10}")
    out = open(a.json, "a") if a.json else None
    for what, detail, ms, gf, gb in rows:
        print(f"{what:<22} {detail:<28} {ms:10.3f} {gf:10.2f} {100*gf/ceiling:8.1f}% {gb:10.2f}")
        if out:
            out.write(json.dumps(dict(what=what, backend="torch", detail=detail, ms=ms, gflops=gf,
                                      ceiling_gflops=ceiling, ratio=gf / ceiling, gbytes_per_s=gb)) + "\n")


if __name__ == "__main__":
    main()
