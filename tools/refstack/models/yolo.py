"""models.yolo of yolov7: Model.forward_once and IDetect's inference output."""
import torch
import torch.nn as nn


class IDetect(nn.Module):
    def forward(self, x):
        z = []
        for i in range(self.nl):
            if getattr(self, 'fused', False):  # fuseforward: implicit layers folded
                x[i] = self.m[i](x[i])
            else:
                x[i] = self.im[i](self.m[i](self.ia[i](x[i])))
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            yv, xv = torch.meshgrid([torch.arange(ny), torch.arange(nx)], indexing='ij')
            grid = torch.stack((xv, yv), 2).view((1, 1, ny, nx, 2)).float()
            y = x[i].sigmoid()
            y[..., 0:2] = (y[..., 0:2] * 2. - 0.5 + grid) * self.stride[i]
            y[..., 2:4] = (y[..., 2:4] * 2) ** 2 * self.anchor_grid[i]
            z.append(y.view(bs, -1, self.no))
        return torch.cat(z, 1)


class Model(nn.Module):
    def forward(self, x, hook=None):
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            if hook:
                hook(m, x)
            y.append(x if m.i in self.save else None)
        return x
