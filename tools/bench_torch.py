#!/usr/bin/python3
"""Times the same network in q7 and in PyTorch side by side, in one run.

The network is q7's own graph (`q7 export`), rebuilt op by op with torch.nn.functional, so
both engines run exactly the same convolutions on the same weights; the script also checks
that the two outputs agree. PyTorch is needed only here: q7 and its tests never use it.

On the CPU (default) both run FP32. With --device cuda both run on the GPU (q7's CUDA backend,
PyTorch with cuDNN, cudnn.benchmark on, TF32 off); --fp16 runs q7 with --fp16 and PyTorch in
half precision. On the GPU, q7's time is the network alone (CUDA events from the input
on the device to the raw output on the device, as PyTorch's is timed); q7's wall time with the
upload of the uint8 batch and the download of the raw rows is shown beside it. Two PyTorch
times are given: the whole network, and its convolutions alone (every conv of the network
called back to back on inputs of its real shape: a lower bound for any engine that runs these
convolutions through cuDNN).

usage: tools/bench_torch.py --weights W|--cfg Y [--batch 1,8] [--img 640] [--threads N]
                            [--iters 5] [--q7 build/tools/q7] [--channels-last]
                            [--device cpu|cuda] [--fp16]
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

    def to_device(self, device, dtype, channels_last):
        for k, t in self.w.items():
            t = t.to(device=device, dtype=dtype)
            if channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            self.w[k] = t
        return self

    def forward(self, x, conv_log=None):
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
                if conv_log is not None:
                    conv_log.append((ins[0].shape, i, nd))
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
                    dev = t.device
                    yv, xv = torch.meshgrid([torch.arange(ny, device=dev),
                                             torch.arange(nx, device=dev)], indexing="ij")
                    grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).to(t.dtype)
                    ag = torch.tensor(nd["anchor_grid"][l], device=dev,
                                      dtype=t.dtype).view(1, na, 1, 1, 2)
                    s = t.sigmoid()
                    xy = (s[..., 0:2] * 2.0 - 0.5 + grid) * nd["stride"][l]
                    wh = (s[..., 2:4] * 2) ** 2 * ag
                    z.append(torch.cat((xy, wh, s[..., 4:]), -1).view(bs, -1, no))
                y = torch.cat(z, 1)
            else:
                raise ValueError("op %s not handled" % op)
            vals[i] = y
        return vals[self.out_id]


def sync(x):
    if x.is_cuda:
        torch.cuda.synchronize()


def time_torch(fn, x, iters, warmup=1):
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        sync(x)
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter()
            out = fn(x)
            sync(x)
            ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2], out


def convs_only(net, x, channels_last):
    """Every conv of the network on a tensor of its real input shape, back to back."""
    log = []
    with torch.no_grad():
        net(x, log)
    calls = []
    for shape, i, nd in log:
        t = torch.rand(shape, device=x.device, dtype=x.dtype)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        calls.append((t, net.w[(i, "weight")], net.w.get((i, "bias")), tuple(nd["stride"]),
                      tuple(nd["padding"]), tuple(nd["dilation"]), nd["groups"]))

    def run(_):
        for c in calls:
            y = F.conv2d(*c)
        return y
    return run


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
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--fp16", action="store_true", help="half precision (--device cuda)")
    a = ap.parse_args()
    if a.fp16 and a.device != "cuda":
        ap.error("--fp16 needs --device cuda")
    cuda = a.device == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    dtype = torch.float16 if a.fp16 else torch.float32
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
        if cuda:
            net.to_device("cuda", dtype, a.channels_last)
            where = "%s, cuDNN %s, %s%s" % (torch.cuda.get_device_name(0),
                                            torch.backends.cudnn.version(),
                                            "FP16" if a.fp16 else "FP32",
                                            ", channels_last" if a.channels_last else "")
        else:
            where = "CPU, %d threads" % torch.get_num_threads()
        print("PyTorch %s (%s); q7 %s; %s fused, %dx%d, median of %d runs" %
              (torch.__version__, where, a.q7, src, a.img, a.img, a.iters))
        head = ("batch", "q7 img/s", "torch img/s", "q7/torch")
        if cuda:
            head += ("convs img/s", "q7/convs", "q7 wall img/s")
        print(("%6s" + " %14s" * (len(head) - 1)) % head)
        for b in [int(s) for s in a.batch.split(",")]:
            qj = os.path.join(tmp, "q7.json")
            cmd = [a.q7, "bench", "--weights" if a.weights else "--cfg", src, "--batch", str(b),
                   "--img", str(a.img), "--iters", str(a.iters), "--json", qj]
            cmd += ["--device", "cuda", "--warmup", "3"] if cuda else ["--threads", str(a.threads)]
            if a.fp16:
                cmd.append("--fp16")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            q7 = json.load(open(qj))
            x = torch.rand(b, 3, a.img, a.img, device=a.device, dtype=dtype)
            if a.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t, out = time_torch(net, x, a.iters, 3 if cuda else 1)
            ips = q7["net_images_per_s"] if cuda else q7["images_per_s"]
            row = [b, ips, b / t, ips / (b / t)]
            if cuda:
                fn = convs_only(net, x, a.channels_last)
                tc, _ = time_torch(fn, x, a.iters, 3)
                row += [b / tc, ips / (b / tc), q7["images_per_s"]]
            print(("%6d" + " %14.2f" * (len(row) - 1)) % tuple(row))
            del x, out
        # agreement of the two engines on one input
        inp = os.path.join(tmp, "x.npy")
        x = (np.random.default_rng(0).random((3, a.img, a.img)) * 255).astype(np.uint8)
        np.save(inp, x)
        raw = os.path.join(tmp, "raw.npy")
        cmd = [a.q7, "run", "--weights", src, "--fused", "--input", inp, "--output", raw]
        if cuda:
            cmd += ["--device", "cuda"] + (["--fp16"] if a.fp16 else [])
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        with torch.no_grad():
            t = torch.from_numpy(x).float().unsqueeze(0).to(a.device, dtype) / 255.0
            if a.channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            ref = net(t)[0].float().cpu().numpy()
        mine = np.load(raw)
        err = np.linalg.norm(mine - ref) / np.linalg.norm(ref)
        # FP16 in two engines differs by rounding; FP32 (TF32 off) agrees closely
        tol = 0.5 if a.fp16 else 1e-3
        print("outputs agree: relative L2 %.2e (tolerance %g)" % (err, tol))
        return 0 if err < tol else 1


if __name__ == "__main__":
    sys.exit(main())
