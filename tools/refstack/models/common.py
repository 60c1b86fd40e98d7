"""models.common of yolov7: the forward passes of the layers the fixtures use."""
import torch
import torch.nn as nn


class MP(nn.Module):
    def forward(self, x):
        return self.m(x)


class SP(nn.Module):
    def forward(self, x):
        return self.m(x)


class Concat(nn.Module):
    def forward(self, x):
        return torch.cat(x, self.d)


class Conv(nn.Module):
    def forward(self, x):  # forward, or fuseforward once the BN is folded
        if hasattr(self, 'bn'):
            return self.act(self.bn(self.conv(x)))
        return self.act(self.conv(x))


class SPPCSPC(nn.Module):
    def forward(self, x):
        x1 = self.cv4(self.cv3(self.cv1(x)))
        y1 = self.cv6(self.cv5(torch.cat([x1] + [m(x1) for m in self.m], 1)))
        y2 = self.cv2(x)
        return self.cv7(torch.cat((y1, y2), dim=1))


class RepConv(nn.Module):
    def forward(self, inputs):
        if hasattr(self, 'rbr_reparam'):
            return self.act(self.rbr_reparam(inputs))
        id_out = 0 if self.rbr_identity is None else self.rbr_identity(inputs)
        return self.act(self.rbr_dense(inputs) + self.rbr_1x1(inputs) + id_out)


class ImplicitA(nn.Module):
    def forward(self, x):
        return self.implicit + x


class ImplicitM(nn.Module):
    def forward(self, x):
        return self.implicit * x
