#!/usr/bin/python3
"""The fixtures' reference stack, rebuilt for measurement: yolov7's model code (forward passes
in models/), Model.fuse(), pytorch-quantization's fake quantization and torch_hist histogram
calibration, yolov7's NMS and test.py metric, on PyTorch. Not used by q7 or its tests.

With Debian's python3-torch 1.13 (the fixtures' "torch": "1.13.0a0"), 2 threads and oneDNN
limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) it reproduces ref/histograms.json and
ref/layers_*.json bit for bit; changing only the thread count or the instruction set then
shows how far FP32 summation order alone moves each fixture check (tools/refstack/noise.py).

  refstack.py calib  --model DIR -o hist.json          histograms (ref/histograms.json layout,
                                                       plus each quantizer's max |x|)
  refstack.py layers --model DIR [--fused] [--amax A --method M] -o layers.json
  refstack.py table  --model DIR --amax A [--methods ...] -o table.json
Inputs are the fixtures' letterboxed ref/input_<img>.npy, batched as in ref/table.json's meta
(batch 2, images sorted by aspect ratio like yolov7's rect loader).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models.common import Conv, RepConv  # noqa: E402
from models.yolo import IDetect  # noqa: E402


# ---- model, fuse (yolov7's Model.fuse) ----

def load(model_dir):
    ck = torch.load(os.path.join(model_dir, 'model.pt'), map_location='cpu')
    return ck['model'].float().eval()


def fuse_conv_and_bn(conv, bn):  # utils/torch_utils.py
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=conv.kernel_size,
                      stride=conv.stride, padding=conv.padding, groups=conv.groups,
                      bias=True).requires_grad_(False)
    w_conv = conv.weight.clone().view(conv.out_channels, -1)
    w_bn = torch.diag(bn.weight.div(torch.sqrt(bn.eps + bn.running_var)))
    fused.weight.copy_(torch.mm(w_bn, w_conv).view(fused.weight.shape))
    b_conv = torch.zeros(conv.weight.size(0)) if conv.bias is None else conv.bias
    b_bn = bn.bias - bn.weight.mul(bn.running_mean).div(torch.sqrt(bn.running_var + bn.eps))
    fused.bias.copy_(torch.mm(w_bn, b_conv.reshape(-1, 1)).reshape(-1) + b_bn)
    return fused


def repconv_fuse_conv_bn(conv, bn):  # RepConv.fuse_conv_bn
    std = (bn.running_var + bn.eps).sqrt()
    bias = bn.bias - bn.running_mean * bn.weight / std
    weights = conv.weight * (bn.weight / std).reshape(-1, 1, 1, 1)
    c = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, bias=True)
    c.weight = nn.Parameter(weights)
    c.bias = nn.Parameter(bias)
    return c


def fuse_repvgg_block(m):  # RepConv.fuse_repvgg_block
    m.rbr_dense = repconv_fuse_conv_bn(m.rbr_dense[0], m.rbr_dense[1])
    m.rbr_1x1 = repconv_fuse_conv_bn(m.rbr_1x1[0], m.rbr_1x1[1])
    b1 = m.rbr_1x1.bias
    w1 = nn.functional.pad(m.rbr_1x1.weight, [1, 1, 1, 1])
    if m.rbr_identity is not None:
        eye = torch.zeros(m.out_channels, m.in_channels, 1, 1)
        eye[:, :, 0, 0] = torch.eye(m.out_channels, m.in_channels)
        idc = nn.Conv2d(m.in_channels, m.out_channels, 1, 1, 0, groups=m.groups, bias=False)
        idc.weight.data = eye
        idc = repconv_fuse_conv_bn(idc, m.rbr_identity)
        bi, wi = idc.bias, nn.functional.pad(idc.weight, [1, 1, 1, 1])
    else:
        bi, wi = torch.zeros_like(b1), torch.zeros_like(w1)
    m.rbr_dense.weight = nn.Parameter(m.rbr_dense.weight + w1 + wi)
    m.rbr_dense.bias = nn.Parameter(m.rbr_dense.bias + b1 + bi)
    m.rbr_reparam = m.rbr_dense
    del m.rbr_dense, m.rbr_1x1, m.rbr_identity


def fuse_idetect(d):  # IDetect.fuse
    for i in range(len(d.m)):
        c1, c2, _, _ = d.m[i].weight.shape
        c1_, c2_, _, _ = d.ia[i].implicit.shape
        d.m[i].bias += torch.matmul(d.m[i].weight.reshape(c1, c2),
                                    d.ia[i].implicit.reshape(c2_, c1_)).squeeze(1)
        c1, c2, _, _ = d.im[i].implicit.shape
        d.m[i].bias *= d.im[i].implicit.reshape(c2)
        d.m[i].weight *= d.im[i].implicit.transpose(0, 1)
    d.fused = True


def fuse(model):
    with torch.no_grad():
        for m in model.model.modules():
            if isinstance(m, RepConv):
                fuse_repvgg_block(m)
            elif type(m) is Conv and hasattr(m, 'bn'):
                m.conv = fuse_conv_and_bn(m.conv, m.bn)
                delattr(m, 'bn')
            elif isinstance(m, IDetect):
                fuse_idetect(m)
    return model


def convs(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


# ---- pytorch-quantization: fake quant (tensor_quant) and HistogramCalibrator(torch_hist) ----

def fake_quant(x, amax):
    max_bound = torch.tensor(127.0)
    scale = max_bound / amax
    zero = amax <= 1.0 / (1 << 24)
    if zero.any():
        scale = torch.where(zero, torch.zeros_like(scale), scale)
    out = torch.clamp((x * scale).round_(), -max_bound, max_bound)
    if zero.any():
        scale = torch.where(zero, torch.ones_like(scale), scale)
    return out / scale


def insert_qdq(model, amax):
    """The seed's placement: every conv's input (per tensor) and weight (per channel)."""
    for name, conv in convs(model):
        a_in = torch.tensor(amax[name + '._input_quantizer'], dtype=torch.float32)
        a_w = torch.tensor(amax[name + '._weight_quantizer'], dtype=torch.float32)
        with torch.no_grad():
            conv.weight.copy_(fake_quant(conv.weight, a_w.reshape(-1, 1, 1, 1)))
        conv.register_forward_pre_hook(lambda mod, inp, a=a_in: (fake_quant(inp[0], a),))


class Hist:
    """HistogramCalibrator(num_bins=2048, torch_hist=True), plus the MaxCalibrator's running
    max |x| of the same tensors (written as "max", as q7's --save-hist does)."""

    def __init__(self, bins=2048):
        self.bins, self.hist, self.edges, self.max = bins, None, None, None

    def collect(self, x):
        if torch.min(x) < 0.:
            x = x.abs()
        x = x.float()
        x_max = x.max()
        self.max = x_max if self.max is None else torch.max(self.max, x_max)
        if self.hist is None:
            self.hist = torch.histc(x, bins=self.bins, min=0, max=x_max)
            self.edges = torch.linspace(0, x_max, self.bins + 1)
            return
        if x_max > self.edges[-1]:
            width = self.edges[1] - self.edges[0]
            self.bins = int((x_max / width).ceil().item())
            self.edges = torch.arange(0, x_max + width, width)
        hist = torch.histc(x, bins=self.bins, min=0, max=self.edges[-1])
        hist[:self.hist.numel()] += self.hist
        self.hist = hist

    def json(self):
        d = dict(hist=[int(c) for c in self.hist.tolist()], edge_max=float(self.edges[-1]),
                 num_bins=self.bins, max=float(self.max))
        if self.bins != 2048:  # grown: q7's keys for the exact arange edges
            d['width'] = float(self.edges[1] - self.edges[0])
            d['num_edges'] = int(self.edges.numel())
        return d


# ---- data: the fixtures' letterboxed inputs, batched like the reference ----

def batches(model_dir, batch=2):
    meta = json.load(open(os.path.join(model_dir, 'ref', 'table.json')))['meta']
    ar = {k: v['orig_hw'][0] / v['orig_hw'][1] for k, v in meta['shapes'].items()}
    order = sorted(ar, key=lambda k: ar[k])
    for b in range(0, len(order), batch):
        names = order[b:b + batch]
        x = torch.cat([torch.from_numpy(np.load(os.path.join(
            model_dir, 'ref', 'input_%s.npy' % n)))[None] for n in names])
        yield names, x.float() / 255.0, meta


# ---- commands ----

def cmd_calib(a):
    model = fuse(load(a.model))
    hists = {}
    for name, conv in convs(model):
        h = hists[name + '._input_quantizer'] = Hist()
        conv.register_forward_pre_hook(lambda mod, inp, h=h: h.collect(inp[0]))
    with torch.no_grad():
        for _, x, _ in batches(a.model):
            model(x)
    json.dump({k: h.json() for k, h in hists.items()}, open(a.o, 'w'))


def variant(model_dir, fused, amax=None):
    """The unfused model, the fused one, or (amax: one method's table) fused fake-INT8."""
    model = load(model_dir)
    if fused or amax:
        model = fuse(model)
    if amax:
        insert_qdq(model, amax)
    return model


def cmd_layers(a):
    model = variant(a.model, a.fused, json.load(open(a.amax))[a.method] if a.amax else None)
    ref = json.load(open(os.path.join(a.model, 'ref', 'layers_origin.json')))
    img = ref['image']
    x = torch.from_numpy(np.load(os.path.join(a.model, 'ref', 'input_%s.npy' % img)))[None]
    out = []

    def hook(m, t):
        t = t.detach()[0].double()
        out.append(dict(layer=m.i, type=type(m).__name__, shape=[1] + list(t.shape),
                        sum=t.sum().item(), abs_sum=t.abs().sum().item(), l2=t.norm().item(),
                        first8=t.flatten()[:8].tolist()))
    with torch.no_grad():
        model(x.float() / 255.0, hook)
    json.dump(dict(image=img, layers=out), open(a.o, 'w'))


def xywh2xyxy(x):
    y = x.clone()
    y[:, 0] = x[:, 0] - x[:, 2] / 2
    y[:, 1] = x[:, 1] - x[:, 3] / 2
    y[:, 2] = x[:, 0] + x[:, 2] / 2
    y[:, 3] = x[:, 1] + x[:, 3] / 2
    return y


def nms_boxes(boxes, scores, thr):  # torchvision.ops.nms, CPU kernel, float32
    b = boxes.numpy()
    order = np.argsort(-scores.numpy(), kind='stable')
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    sup = np.zeros(len(b), bool)
    keep = []
    for _i, i in enumerate(order):
        if sup[i]:
            continue
        keep.append(i)
        j = order[_i + 1:]
        j = j[~sup[j]]
        w = np.maximum(np.float32(0), np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]))
        h = np.maximum(np.float32(0), np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]))
        inter = w * h
        with np.errstate(invalid='ignore', divide='ignore'):  # 0/0 of empty boxes: kept
            sup[j[inter / (areas[i] + areas[j] - inter) > np.float32(thr)]] = True
    return torch.tensor(keep, dtype=torch.long)


def nms(pred, conf_thres, iou_thres):  # utils/general.py non_max_suppression, multi_label
    out = []
    for x in pred:
        x = x[x[:, 4] > conf_thres]
        x[:, 5:] *= x[:, 4:5]
        box = xywh2xyxy(x[:, :4])
        i, j = (x[:, 5:] > conf_thres).nonzero(as_tuple=False).T
        x = torch.cat((box[i], x[i, j + 5, None], j[:, None].float()), 1)
        if x.shape[0] > 30000:
            x = x[x[:, 4].argsort(descending=True)[:30000]]
        keep = nms_boxes(x[:, :4] + x[:, 5:6] * 4096, x[:, 4], iou_thres)[:300]
        out.append(x[keep])
    return out


def box_iou(b1, b2):
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    inter = (torch.min(b1[:, None, 2:], b2[:, 2:]) -
             torch.max(b1[:, None, :2], b2[:, :2])).clamp(0).prod(2)
    return inter / (a1[:, None] + a2 - inter)


def scale_coords(c, ratio_pad, shape):
    gain, pad = ratio_pad[0][0], ratio_pad[1]
    c[:, [0, 2]] -= pad[0]
    c[:, [1, 3]] -= pad[1]
    c[:, :4] /= gain
    c[:, 0].clamp_(0, shape[1])
    c[:, 1].clamp_(0, shape[0])
    c[:, 2].clamp_(0, shape[1])
    c[:, 3].clamp_(0, shape[0])


def compute_ap(recall, precision):
    mrec = np.concatenate(([0.], recall, [recall[-1] + 0.01]))
    mpre = np.concatenate(([1.], precision, [0.]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return np.trapz(np.interp(x, mrec, mpre), x)


def ap_per_class(tp, conf, pred_cls, target_cls):  # utils/metrics.py
    i = np.argsort(-conf)
    tp, conf, pred_cls = tp[i], conf[i], pred_cls[i]
    classes = np.unique(target_cls)
    px = np.linspace(0, 1, 1000)
    ap, p, r = np.zeros((len(classes), tp.shape[1])), np.zeros((len(classes), 1000)), \
        np.zeros((len(classes), 1000))
    for ci, c in enumerate(classes):
        i = pred_cls == c
        n_l, n_p = (target_cls == c).sum(), i.sum()
        if n_p == 0 or n_l == 0:
            continue
        fpc, tpc = (1 - tp[i]).cumsum(0), tp[i].cumsum(0)
        recall = tpc / (n_l + 1e-16)
        r[ci] = np.interp(-px, -conf[i], recall[:, 0], left=0)
        precision = tpc / (tpc + fpc)
        p[ci] = np.interp(-px, -conf[i], precision[:, 0], left=1)
        for j in range(tp.shape[1]):
            ap[ci, j] = compute_ap(recall[:, j], precision[:, j])
    f1 = 2 * p * r / (p + r + 1e-16)
    i = f1.mean(0).argmax()
    return p[:, i], r[:, i], ap


def labels_of(model_dir, name, shape):
    """YOLO labels (class cx cy w h, normalized to the original image), in original pixels."""
    path = os.path.join(model_dir, 'data', 'labels', 'val', name + '.txt')
    lab = np.loadtxt(path, ndmin=2).reshape(-1, 5) if os.path.getsize(path) else np.zeros((0, 5))
    t = torch.tensor(lab, dtype=torch.float32)
    h, w = shape
    box = xywh2xyxy(t[:, 1:5] * torch.tensor([w, h, w, h], dtype=torch.float32))
    return t[:, 0], box


def evaluate(model, model_dir, conf=0.001, iou=0.65):
    iouv = torch.linspace(0.5, 0.95, 10)
    stats, n_labels = [], 0
    with torch.no_grad():
        for names, x, meta in batches(model_dir):
            for k, pred in enumerate(nms(model(x), conf, iou)):
                sh = meta['shapes'][names[k]]
                tcls_t, tbox = labels_of(model_dir, names[k], sh['orig_hw'])
                n_labels += len(tcls_t)
                tcls = tcls_t.tolist()
                if len(pred) == 0:
                    if len(tcls):
                        stats.append((torch.zeros(0, 10, dtype=torch.bool), torch.Tensor(),
                                      torch.Tensor(), tcls))
                    continue
                predn = pred.clone()
                scale_coords(predn, sh['ratio_pad'], sh['orig_hw'])
                correct = torch.zeros(pred.shape[0], 10, dtype=torch.bool)
                detected = []
                for cls in torch.unique(tcls_t):
                    ti = (cls == tcls_t).nonzero(as_tuple=False).view(-1)
                    pi = (cls == pred[:, 5]).nonzero(as_tuple=False).view(-1)
                    if pi.shape[0]:
                        ious, i = box_iou(predn[pi, :4], tbox[ti]).max(1)
                        seen = set()
                        for j in (ious > iouv[0]).nonzero(as_tuple=False):
                            d = ti[i[j]]
                            if d.item() not in seen:
                                seen.add(d.item())
                                detected.append(d)
                                correct[pi[j]] = ious[j] > iouv
                                if len(detected) == len(tcls):
                                    break
                stats.append((correct, pred[:, 4], pred[:, 5], tcls))
    st = [np.concatenate(x, 0) for x in zip(*stats)]
    p, r, ap = ap_per_class(*st)
    return dict(labels=n_labels, P=float(p.mean()), R=float(r.mean()),
                mAP50=float(ap[:, 0].mean()), mAP50_95=float(ap.mean(1).mean()))


def cmd_table(a):
    rows = {}
    amax = json.load(open(a.amax))
    for row in ['origin', 'fused'] + ['qdq-' + m for m in a.methods.split(',')]:
        model = variant(a.model, row != 'origin', amax[row[4:]] if row.startswith('qdq-') else None)
        rows[row] = evaluate(model, a.model)
        print('%-22s P %.4f R %.4f mAP@.5 %.4f mAP@.5:.95 %.4f' % (
            row, rows[row]['P'], rows[row]['R'], rows[row]['mAP50'], rows[row]['mAP50_95']),
            flush=True)
    json.dump(dict(table=rows), open(a.o, 'w'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    for name in ('calib', 'layers', 'table'):
        s = sub.add_parser(name)
        s.add_argument('--model', required=True, help='fixture folder (model.pt, ref/, data/)')
        s.add_argument('-o', required=True)
        s.add_argument('--threads', type=int, default=2)
        if name != 'calib':
            s.add_argument('--amax', required=name == 'table',
                           help='amax table, ref/amax.json layout')
        if name == 'layers':
            s.add_argument('--fused', action='store_true')
            s.add_argument('--method', default='mse')
        if name == 'table':
            s.add_argument('--methods', default='max,entropy,mse,percentile-99.9,'
                           'percentile-99.99')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    {'calib': cmd_calib, 'layers': cmd_layers, 'table': cmd_table}[a.cmd](a)


if __name__ == '__main__':
    main()
