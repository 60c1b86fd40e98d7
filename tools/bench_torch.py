#!/usr/bin/python3
"""Times the same network in q7 and in PyTorch (CPU, FP32) side by side, in one run.

The network is q7's own graph (`q7 export`), rebuilt op by op with torch.nn.functional, so
both engines run exactly the same convolutions on the same weights; the script also checks
that the two outputs agree. PyTorch (Debian's python3-torch) is needed only here: q7 and its
tests never use it.

usage: tools/bench_torch.py --weights W|--cfg Y [--batch 1,8] [--img 640] [--threads N]
                            [--iters 5] [--q7 build/tools/q7] [--channels-last]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def act(x, kind, slope):
    if kind == "silu":
        return F.silu(x)
    if kind == "leaky_relu":
        return F.leaky_relu(x, slope)
    if kind == "relu":
        return F.relu(x)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    return x


class Net(torch.nn.Module):
    def __init__(self, graph, blob):
        super().__init__()
        self.nodes = graph["nodes"]
        self.out_id = graph["output"]
        self.w = {}
        for nd in self.nodes:
            for role, t in nd.get("weights", {}).items():
                a = np.frombuffer(blob, dtype=np.float32, count=t["count"],
                                  offset=t["offset"]).reshape(t["shape"])
                self.w[(nd["id"], role)] = torch.from_numpy(a.copy())
        live = {self.out_id}
        for nd in reversed(self.nodes):
            if nd["id"] in live:
                live.update(nd["inputs"])
        self.live = live

    def forward(self, x):
        vals = {}
        for nd in self.nodes:
            i, op = nd["id"], nd["op"]
            if i not in self.live:
                continue
            ins = [vals[k] for k in nd["inputs"]]
            w = lambda r: self.w.get((i, r))
            if op == "input":
                y = x
            elif op == "conv2d":
                y = F.conv2d(ins[0], w("weight"), w("bias"), tuple(nd["stride"]),
                             tuple(nd["padding"]), tuple(nd["dilation"]), nd["groups"])
                y = act(y, nd["act"], nd.get("slope", 0.0))
            elif op == "batchnorm":
                y = F.batch_norm(ins[0], w("running_mean"), w("running_var"), w("weight"),
                                 w("bias"), False, 0.0, nd["eps"])
            elif op == "act":
                y = act(ins[0], nd["act"], nd.get("slope", 0.0))
            elif op == "maxpool":
                y = F.max_pool2d(ins[0], tuple(nd["kernel"]), tuple(nd["stride"]),
                                 tuple(nd["padding"]), 1, nd["ceil_mode"])
            elif op == "upsample":
                y = F.interpolate(ins[0], scale_factor=nd["scale"], mode="nearest")
            elif op == "concat":
                y = torch.cat(ins, 1)
            elif op == "add":
                y = ins[0]
                for t in ins[1:]:
                    y = y + t
            elif op == "implicit_add":
                y = ins[0] + w("weight")
            elif op == "implicit_mul":
                y = ins[0] * w("weight")
            elif op == "reorg":
                t = ins[0]
                y = torch.cat([t[..., ::2, ::2], t[..., 1::2, ::2], t[..., ::2, 1::2],
                               t[..., 1::2, 1::2]], 1)
            elif op == "detect":
                z = []
                na, no = nd["na"], nd["nc"] + 5
                for l, t in enumerate(ins):
                    bs, _, ny, nx = t.shape
                    t = t.view(bs, na, no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
                    yv, xv = torch.meshgrid([torch.arange(ny), torch.arange(nx)], indexing="ij")
                    grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
                    ag = torch.tensor(nd["anchor_grid"][l]).view(1, na, 1, 1, 2)
                    s = t.sigmoid()
                    xy = (s[..., 0:2] * 2.0 - 0.5 + grid) * nd["stride"][l]
                    wh = (s[..., 2:4] * 2) ** 2 * ag
                    z.append(torch.cat((xy, wh, s[..., 4:]), -1).view(bs, -1, no))
                y = torch.cat(z, 1)
            else:
                raise ValueError("op %s not handled" % op)
            vals[i] = y
        return vals[self.out_id]


def time_torch(net, x, iters, warmup=1):
    with torch.no_grad():
        for _ in range(warmup):
            net(x)
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter()
            out = net(x)
            ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2], out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights")
    ap.add_argument("--cfg")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--q7", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                 "tools", "q7"))
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    src = a.weights or a.cfg
    if not src:
        ap.error("--weights or --cfg is required")
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        gj = os.path.join(tmp, "graph.json")
        subprocess.run([a.q7, "export", "--weights", src, "--fused", "-o", gj], check=True,
                       stdout=subprocess.DEVNULL)
        graph = json.load(open(gj))
        blob = open(gj + ".bin", "rb").read()
        net = Net(graph, blob).eval()
        print("PyTorch %s, %d threads; q7 %s; %s fused, %dx%d" %
              (torch.__version__, torch.get_num_threads(), a.q7, src, a.img, a.img))
        print("%6s %14s %14s %10s" % ("batch", "q7 img/s", "torch img/s", "q7/torch"))
        for b in [int(s) for s in a.batch.split(",")]:
            qj = os.path.join(tmp, "q7.json")
            subprocess.run([a.q7, "bench", "--weights" if a.weights else "--cfg", src,
                            "--batch", str(b), "--img", str(a.img), "--threads",
                            str(a.threads), "--iters", str(a.iters), "--json", qj],
                           check=True, stdout=subprocess.DEVNULL)
            q7 = json.load(open(qj))
            x = torch.rand(b, 3, a.img, a.img)
            m = net
            if a.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t, out = time_torch(m, x, a.iters)
            print("%6d %14.2f %14.2f %10.2f" % (b, q7["images_per_s"], b / t,
                                                 q7["images_per_s"] / (b / t)))
        # agreement of the two engines on one input
        inp = os.path.join(tmp, "x.npy")
        x = (np.random.default_rng(0).random((3, a.img, a.img)) * 255).astype(np.uint8)
        np.save(inp, x)
        raw = os.path.join(tmp, "raw.npy")
        subprocess.run([a.q7, "run", "--weights", src, "--fused", "--input", inp, "--output",
                        raw], check=True, stderr=subprocess.DEVNULL)
        with torch.no_grad():
            ref = net(torch.from_numpy(x).float().unsqueeze(0) / 255.0)[0].numpy()
        mine = np.load(raw)
        err = np.linalg.norm(mine - ref) / np.linalg.norm(ref)
        print("outputs agree: relative L2 %.2e" % err)
        return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
