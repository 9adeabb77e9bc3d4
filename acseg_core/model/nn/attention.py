"""Causal single-head self-attention over a feature map (after g_ar's 2nd block).

Projections have half the input channels (as in the paper and the reproduction);
the attention output is projected back, concatenated with the input and merged
by a 1×1 convolution. Causality masks the *logits* (−inf before the softmax);
masking the probabilities after the softmax, as the reproduction does, leaks
the future through the normalisation. Logits are scaled by 1/√d (the
reproduction does not scale), which keeps the softmax from saturating.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.inner = max(1, channels // 2)
        self.qkv = nn.Conv2d(channels, 3 * self.inner, kernel_size=1)  # q, k, v fused
        self.att_conv = nn.Conv2d(self.inner, channels, kernel_size=1)
        self.out_conv = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def forward(
        self, x: torch.Tensor, causal: bool = True, allowed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``causal``: row-major causal mask; ``allowed`` (N×N bool, True = may attend)
        overrides it with an explicit mask (the reference formulation)."""
        batch, _, height, width = x.shape
        q, k, v = self.qkv(x).flatten(2).transpose(1, 2).unsqueeze(1).chunk(3, dim=-1)
        if allowed is not None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out = out.squeeze(1).transpose(1, 2).reshape(batch, self.inner, height, width)
        return self.out_conv(torch.cat([self.att_conv(out), x], dim=1))
