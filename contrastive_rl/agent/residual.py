"""Deep residual networks for actor and critic (Wang et al. 2025, "1000 Layer Networks for
Self-Supervised RL"), chosen by ``--network residual`` (docs/algorithms.md).

``x -> stem -> blocks -> [output Dense]``: the stem is ``Dense(width), LayerNorm, Swish``; each
of the ``depth / 4`` blocks is ``4 x [Dense(width), LayerNorm, Swish]`` with the block's input
added to its output. ``depth`` counts the Dense layers inside the blocks, as the paper's depth
does (its "depth 64" is 16 blocks; the stem and the output layer are not counted). Every Dense
starts from the paper's ``variance_scaling(1/3, fan_in, uniform)`` with zero biases.

Parameters of one network with input size ``d_in``, width ``w``, depth ``D`` and an output layer
of size ``o`` (``residual_param_count``): ``(d_in w + w) + 2w`` for the stem, ``D (w^2 + 3w)``
for the blocks (Dense kernel, bias, LayerNorm scale and bias), ``w o + o`` for the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

LAYERS_PER_BLOCK = 4
residual_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


@dataclass(frozen=True)
class ResidualSpec:
    """Depth (Dense layers in the blocks, a multiple of 4) and width of a residual network.

    ``layer_norm`` and ``skip`` are True in every run; turning both off gives the plain deep
    Swish MLP that the tests show does not train at depth.
    """

    depth: int
    width: int
    layer_norm: bool = True
    skip: bool = True

    def __post_init__(self) -> None:
        if self.depth <= 0 or self.depth % LAYERS_PER_BLOCK:
            raise ValueError(f"depth must be a positive multiple of 4, got {self.depth}")
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


def _layer(x: jax.Array, spec: ResidualSpec, dtype: jnp.dtype) -> jax.Array:
    """``Dense(width), [LayerNorm], Swish``: called inside a compact method."""
    zeros = nn.initializers.zeros
    x = nn.Dense(spec.width, kernel_init=residual_init, bias_init=zeros, dtype=dtype)(x)
    if spec.layer_norm:
        x = nn.LayerNorm(dtype=dtype)(x)
    return nn.swish(x)


class ResidualBlock(nn.Module):
    """``4 x [Dense, LayerNorm, Swish]`` plus the block's input; a scan step (carry, None)."""

    spec: ResidualSpec
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, _: None) -> tuple[jax.Array, None]:
        block_input = x
        for _ in range(LAYERS_PER_BLOCK):
            x = _layer(x, self.spec, self.dtype)
        if self.spec.skip:
            x = x + block_input
        return x, None


class ResidualMLP(nn.Module):
    """Stem, ``depth / 4`` residual blocks, then a linear ``Dense(out_dim)`` unless it is None
    (the actor's heads read the block features directly).

    The blocks are one ``nn.scan`` over stacked parameters (leading axis: the block), so XLA
    compiles one block however deep the network is: unrolled, depth 64 took minutes to compile
    on a CPU.
    """

    spec: ResidualSpec
    out_dim: int | None = None
    dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _layer(x, self.spec, self.dtype)  # the stem: Dense_0, LayerNorm_0
        blocks = nn.scan(
            ResidualBlock,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            length=self.spec.depth // LAYERS_PER_BLOCK,
        )
        x, _ = blocks(self.spec, self.dtype, name="blocks")(x, None)
        if self.out_dim is not None:
            zeros = nn.initializers.zeros
            x = nn.Dense(
                self.out_dim, kernel_init=residual_init, bias_init=zeros, dtype=self.dtype
            )(x)
        return x


def residual_param_count(d_in: int, spec: ResidualSpec, out_dim: int | None) -> int:
    """The closed form of the module docstring (LayerNorm parameters only where it is on)."""
    w = spec.width
    norm = 2 * w if spec.layer_norm else 0
    stem = d_in * w + w + norm
    blocks = spec.depth * (w * w + w + norm)
    out = 0 if out_dim is None else w * out_dim + out_dim
    return stem + blocks + out
