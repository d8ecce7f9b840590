"""Point mazes seen as 64x64 images (the original's ``PointImage``), rendered in JAX.

The dynamics, episode lengths and success rule are the state mazes' (``point.py``); the agent
sees only pixels. The drawing is the original's: the wall map upscaled 30x (free cells 0.5,
walls 0), the point a white (1.0) square of +-10 px around ``30 * position``, scaled to uint8,
nearest-neighbour zoomed to 64x64 as ``scipy.ndimage.zoom(order=0)`` does, grey repeated to 3
channels, flattened in HWC order.

An image is a pure function of the 2-D position, so the replay stores positions (2 floats per
state) and ``spec.render`` draws the sampled batch: the agent still sees only images, and the
replay is as small as for the state mazes. The original's defect in image mode (its bounds check
read the image's 0..255 range, so the point could leave the maze at the bottom and right borders
and vanish from the image) does not exist here: the bounds are the maze's, as in ``point.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from contrastive_rl.envs.base import EnvSpec, EnvState
from contrastive_rl.envs.point import PointMaze

SCALE = 30  # pixels per maze cell before the zoom
HALF_SQUARE = 10  # the point covers rows/cols [30 * p - 10, 30 * p + 10)
IMAGE_SIZE = 64
CHANNELS = 3
FREE, WALL, POINT = 127, 0, 255  # uint8 of 0.5, 0.0 and 1.0 scaled by 255 (truncated, as uint8())


def zoom_indices(size: int, out: int = IMAGE_SIZE) -> np.ndarray:
    """Source pixel of each output pixel of ``scipy.ndimage.zoom(order=0)`` along one axis."""
    from scipy import ndimage  # a JAX dependency; only needed to build the map

    return ndimage.zoom(np.arange(size, dtype=np.float64), out / size, order=0).astype(np.int32)


def background(walls: np.ndarray, out: int = IMAGE_SIZE) -> np.ndarray:
    """The zoomed maze without the point, ``[out, out]`` uint8."""
    canvas = np.kron(walls, np.ones((SCALE, SCALE), np.int32))
    rows, cols = zoom_indices(canvas.shape[0], out), zoom_indices(canvas.shape[1], out)
    return np.where(canvas[np.ix_(rows, cols)] == 1, WALL, FREE).astype(np.uint8)


class PointImage(PointMaze):
    """A point maze whose observation and goal are 64x64x3 uint8 images."""

    def __init__(self, walls_name: str):
        super().__init__(walls_name)
        walls = np.asarray(self.walls)
        self._background = jnp.asarray(background(walls))
        self._rows = jnp.asarray(zoom_indices(walls.shape[0] * SCALE))
        self._cols = jnp.asarray(zoom_indices(walls.shape[1] * SCALE))
        size = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
        shift, scale = pixel_standardiser(walls_name)
        self.spec = EnvSpec(
            name=f"point_image_{walls_name}",
            state_dim=size,
            action_dim=2,
            episode_length=self.spec.episode_length,
            goal_start=0,
            goal_end=size,
            success_threshold=self.spec.success_threshold,
            obs_dtype="uint8",
            image_shape=(IMAGE_SIZE, IMAGE_SIZE, CHANNELS),
            render=self.render,
            stored_dim=2,
            input_shift=shift,
            input_scale=scale,
        )

    def render(self, position: jax.Array) -> jax.Array:
        """Images of positions ``[..., 2]`` -> ``[..., 64 * 64 * 3]`` uint8 (HWC, flattened).

        Only the 64 source rows and columns the zoom keeps are tested against the square, so no
        330 x 330 canvas is drawn.
        """
        corner = jnp.floor(position * SCALE).astype(jnp.int32)  # [..., 2]
        r, c = corner[..., 0:1], corner[..., 1:2]
        in_rows = (self._rows >= r - HALF_SQUARE) & (self._rows < r + HALF_SQUARE)  # [..., 64]
        in_cols = (self._cols >= c - HALF_SQUARE) & (self._cols < c + HALF_SQUARE)
        square = in_rows[..., :, None] & in_cols[..., None, :]  # [..., 64, 64]
        grey = jnp.where(square, jnp.uint8(POINT), self._background)
        image = jnp.broadcast_to(grey[..., None], (*grey.shape, CHANNELS))
        return image.reshape(*position.shape[:-1], -1)

    def goal_distance(self, env_state: EnvState) -> jax.Array:
        """Distance between the positions (the state and goal are stored positions)."""
        return jnp.linalg.norm(env_state.state - env_state.goal, axis=-1)


@functools.cache
def pixel_standardiser(walls_name: str, per_cell: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``--input_norm`` for point images: the mean image and one scale for every pixel.

    Over positions spread evenly on the free cells (``per_cell`` x ``per_cell`` on each), the shift
    is each pixel's mean and the scale the root of the pixels' mean variance, so the fixed maze
    drawing becomes zeros and the point stands out at unit variance on average. Without it the
    point is 16 of 4,096 pixels on a constant background, and the critic was seen to settle on
    constant logits within 2k updates (docs/images.md). Cached: one computation per maze.
    """
    maze = PointImage.__new__(PointImage)
    PointMaze.__init__(maze, walls_name)
    walls = np.asarray(maze.walls)
    maze._background = jnp.asarray(background(walls))
    maze._rows = jnp.asarray(zoom_indices(walls.shape[0] * SCALE))
    maze._cols = jnp.asarray(zoom_indices(walls.shape[1] * SCALE))
    offsets = (np.arange(per_cell) + 0.5) / per_cell
    grid = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
    positions = (np.asarray(maze.free_cells)[:, None, :] + grid[None]).reshape(-1, 2)
    render = jax.jit(maze.render)
    total = np.zeros(IMAGE_SIZE * IMAGE_SIZE * CHANNELS)
    squares = np.zeros_like(total)
    for chunk in np.array_split(positions, max(1, len(positions) // 1024)):
        images = np.asarray(render(jnp.asarray(chunk, jnp.float32)), np.float64)
        total += images.sum(0)
        squares += (images**2).sum(0)
    mean = total / len(positions)
    variance = np.maximum(squares / len(positions) - mean**2, 0.0)
    shift = mean.astype(np.float32)
    scale = np.full_like(shift, np.sqrt(variance.mean()))
    shift.setflags(write=False)
    scale.setflags(write=False)
    return shift, scale
