"""Procedural UAV-like crop-field images with correlated segmentation tasks.

Two tasks, both binary, at the image's resolution:
  * plants: 1 on crop plants (the blobs that sit on the rows); weeds (green blobs
    between the rows) are 0, so telling a plant from a weed needs the rows;
  * rows:   1 on a band along each plantation line, continuing across gaps
    (missing plants), so finding a row where plants are missing needs the plants
    around it.

Two sources:
  * `render_field(rng, H, W)`: the general generator. World units are pixels of the
    256x256 model input (vertically); randomises row spacing, angle, curvature,
    horizontal squeeze (the daemon resizes 640x480 to 256x256: x 0.75 of y), plant
    size/shape/colour, gap rate and runs of gaps, weeds, soil colour/texture,
    furrows, plant shadows, cloud shadows, illumination, blur and noise.
  * `SwiftTile` / `swift_frame`: an exact numpy port of the daemon's synthetic
    camera (Sources/MTLSegCapture/CropFieldTile.swift + SyntheticFieldSource.swift,
    same SplitMix64 stream, so seed 1 frame n is the daemon's frame n), with labels,
    resized to the model input with PIL BILINEAR as the daemon does.

`sample(rng, H, W, swift_pool, p_swift)` mixes them. Everything is seeded by the
numpy Generator passed in.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

TASKS = [
    {"name": "plants", "classes": ["background", "plant"], "colors": [[0, 0, 0], [0, 200, 0]]},
    {"name": "rows", "classes": ["background", "row"], "colors": [[0, 0, 0], [255, 200, 0]]},
]
TASK_NAMES = [t["name"] for t in TASKS]
ROW_BAND = 0.24  # row label: band of this fraction of the row spacing, centred on the row line


# ----------------------------------------------------------------------------- helpers

def value_noise(rng, h, w, cell):
    """Smooth noise in about [-1, 1]: a random grid upsampled bilinearly (random phase)."""
    cell = max(2, int(cell))
    gh, gw = h // cell + 3, w // cell + 3
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    big = np.asarray(Image.fromarray(grid, mode="F").resize((gw * cell, gh * cell), Image.BILINEAR))
    oy, ox = rng.integers(0, cell, 2)
    return big[oy:oy + h, ox:ox + w]


def _lobed(du, dv, radius, amp, n, phase):
    """Normalised distance to a lobed disk's edge (<= 1 inside)."""
    if np.isscalar(amp) and amp == 0:
        rr = radius
    else:
        rr = radius * (1 + amp * np.sin(n * np.arctan2(dv, du) + phase))
    return np.sqrt(du * du + dv * dv) / rr


# ----------------------------------------------------------------------------- general generator

def render_field(rng: np.random.Generator, H: int = 256, W: int = 256):
    """Returns (image uint8 [H, W, 3], {"plants": uint8 [H, W], "rows": uint8 [H, W]})."""
    # --- geometry (world units: model-input pixels, vertical)
    sx = rng.uniform(0.7, 0.8) if rng.random() < 0.5 else rng.uniform(0.6, 1.1)  # horizontal squeeze
    if rng.random() < 0.6:
        angle = rng.normal(0, 5)
    else:
        angle = rng.uniform(-60, 60)
    angle = math.radians(angle)
    S = rng.uniform(20, 52)  # row spacing
    step = S * rng.uniform(0.25, 0.6)  # plant spacing along the row
    curve_a = S * rng.uniform(0.1, 0.6) if rng.random() < 0.4 else 0.0
    curve_l = rng.uniform(250, 900)
    curve_p = rng.uniform(0, 2 * math.pi)
    off = rng.uniform(0, S)

    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    X = (xs + 0.5 - W / 2) / sx
    Y = ys + 0.5 - H / 2 + rng.uniform(-500, 500)
    c, s = math.cos(angle), math.sin(angle)
    u = X * c + Y * s
    v = -X * s + Y * c
    if curve_a:
        u = u + curve_a * np.sin(2 * math.pi * v / curve_l + curve_p)
    kf = np.floor((u - off) / S + 0.5)
    d = u - off - kf * S  # signed distance across, to the nearest row line
    bw = max(ROW_BAND * S, 5.0)
    rows = (np.abs(d) < bw / 2)

    # --- plants on a jittered grid along each row
    k = kf.astype(np.int64)
    kmin, kmax = int(k.min()), int(k.max())
    nk = kmax - kmin + 1
    ki = k - kmin
    phase = rng.uniform(0, step, nk).astype(np.float32)
    jf = np.round((v - phase[ki]) / step).astype(np.int64)
    jmin, jmax = int(jf.min()) - 3, int(jf.max()) + 3
    nj = jmax - jmin + 1
    gap = rng.uniform(0.02, 0.3)
    present = rng.random((nk, nj)) > gap
    for r in range(nk):  # runs of missing plants
        for _ in range(rng.poisson(rng.uniform(0, 1.5))):
            j0 = rng.integers(0, nj)
            present[r, j0:j0 + rng.integers(2, 9)] = False
    if rng.random() < 0.15:  # a sparse or missing row now and then
        present[rng.integers(0, nk)] &= rng.random(nj) < rng.uniform(0, 0.4)
    r_mean = S * rng.uniform(0.12, 0.3)
    rad = np.clip(r_mean * rng.uniform(0.7, 1.3, (nk, nj)), 1.6, 0.45 * S).astype(np.float32)
    ju = (rng.uniform(-1, 1, (nk, nj)) * S * rng.uniform(0, 0.1)).astype(np.float32)
    jv = (rng.uniform(-1, 1, (nk, nj)) * step * rng.uniform(0, 0.3)).astype(np.float32)
    tone = rng.uniform(0, 1, (nk, nj)).astype(np.float32)
    lob_a = rng.uniform(0, 0.3) if rng.random() < 0.6 else 0.0
    lob_n = int(rng.integers(4, 9))
    lob_p = rng.uniform(0, 2 * math.pi, (nk, nj)).astype(np.float32)

    best = np.full((H, W), np.inf, np.float32)
    best_tone = np.zeros((H, W), np.float32)
    centre_u = kf * S + off
    for dj in range(-2, 3):
        jj = jf + dj - jmin
        du = u - (centre_u + ju[ki, jj])
        dv = v - (phase[ki] + (jj + jmin) * step + jv[ki, jj])
        dn = _lobed(du, dv, rad[ki, jj], lob_a, lob_n, lob_p[ki, jj])
        dn = np.where(present[ki, jj], dn, np.inf)
        better = dn < best
        best = np.where(better, dn, best)
        best_tone = np.where(better, tone[ki, jj], best_tone)
    plants = best <= 1

    # --- soil
    base = np.array([118, 84, 56], np.float32) * rng.uniform(0.65, 1.35)
    base = base * rng.uniform(0.88, 1.12, 3)
    if rng.random() < 0.25:  # greyer soil
        base = base * 0.6 + base.mean() * 0.4
    shade = (value_noise(rng, H, W, rng.uniform(8, 16)) * rng.uniform(6, 22)
             + value_noise(rng, H, W, rng.uniform(30, 90)) * rng.uniform(0, 25)
             + rng.normal(0, rng.uniform(2, 9), (H, W)))
    if rng.random() < 0.3:  # furrows / tracks parallel to the rows, random phase
        shade = shade + np.sin(2 * math.pi * (u / (S * rng.choice([0.5, 1.0])) + rng.uniform())) * rng.uniform(3, 10)
    if rng.random() < 0.2:  # straight tracks in another direction
        a2 = rng.uniform(0, math.pi)
        shade = shade + np.sin((xs * math.cos(a2) + ys * math.sin(a2)) / rng.uniform(3, 10)) * rng.uniform(3, 8)
    img = base[None, None, :] + shade[..., None] * np.array([1.0, 0.8, 0.6], np.float32)
    if rng.random() < 0.4:  # residue / clods: small light or dark specks
        specks = value_noise(rng, H, W, 2) > rng.uniform(0.75, 0.95)
        img[specks] *= rng.uniform(0.7, 1.35)

    # --- weeds: green blobs off the rows (plants label 0)
    weeds = np.zeros((H, W), bool)
    weed_img = np.zeros((H, W, 3), np.float32)
    n_weeds = 0 if rng.random() < 0.3 else int(rng.integers(3, 60))
    crop_g = rng.uniform(100, 175)
    crop_rgb = np.array([rng.uniform(25, 80), crop_g, rng.uniform(15, 55)], np.float32)
    for _ in range(n_weeds):
        cy, cx = rng.uniform(0, H), rng.uniform(0, W)
        iy, ix = min(int(cy), H - 1), min(int(cx), W - 1)
        rw = max(1.2, S * sx * rng.uniform(0.04, 0.16))
        if abs(d[iy, ix]) < bw / 2 + rw / sx * 0.5:
            continue
        rr = int(math.ceil(rw * 1.6)) + 1
        y0, y1, x0, x1 = max(0, iy - rr), min(H, iy + rr + 1), max(0, ix - rr), min(W, ix + rr + 1)
        py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        dy, dx = py - cy, px - cx
        if rng.random() < 0.3:  # grass-like: elongated
            t = rng.uniform(0, math.pi)
            a, b = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
            dn = np.sqrt((a / (rw * 1.6)) ** 2 + (b / (rw * 0.45)) ** 2)
        else:
            dn = _lobed(dx, dy, rw, rng.uniform(0.1, 0.5), int(rng.integers(3, 8)), rng.uniform(0, 6.3))
        m = dn <= 1
        if rng.random() < 0.5:
            col = crop_rgb * rng.uniform(0.85, 1.15)
        else:
            col = np.array([rng.uniform(40, 130), rng.uniform(90, 170), rng.uniform(10, 60)], np.float32)
        light = (1.1 - 0.3 * np.clip(dn, 0, 1))[..., None]
        weeds[y0:y1, x0:x1] |= m
        weed_img[y0:y1, x0:x1][m] = (col * light)[m]

    # --- shadows of plants and weeds, cast on the soil
    green = plants | weeds
    if rng.random() < 0.5:
        sh_dy, sh_dx = (rng.uniform(-1, 1, 2) * S * sx * 0.15).astype(int)
        shadow = np.roll(green, (sh_dy, sh_dx), axis=(0, 1)) & ~green
        img[shadow] *= rng.uniform(0.55, 0.85)

    # --- draw plants
    light = rng.uniform(1.0, 1.2) - rng.uniform(0.2, 0.6) * np.clip(best, 0, 1)
    tone_scale = 0.85 + 0.3 * best_tone
    pcol = crop_rgb[None, None, :] * (tone_scale * light)[..., None]
    pcol = pcol * (1 + value_noise(rng, H, W, 2)[..., None] * rng.uniform(0, 0.15))
    img = np.where(plants[..., None], pcol, img)
    img = np.where(weeds[..., None], weed_img, img)
    labels_plants = plants & ~weeds

    # --- illumination
    img = img * (1 + value_noise(rng, H, W, rng.uniform(60, 200)) * rng.uniform(0, 0.3))[..., None]
    img = img * rng.uniform(0.65, 1.35) * rng.uniform(0.9, 1.1, 3)
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.75, 1.25) + mean
    img = 255 * (np.clip(img, 0, 255) / 255) ** rng.uniform(0.8, 1.25)
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    img = np.asarray(out).astype(np.float32)
    img = img + rng.normal(0, rng.uniform(0, 8), img.shape)
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return img, {"plants": labels_plants.astype(np.uint8), "rows": rows.astype(np.uint8)}


# ----------------------------------------------------------------------------- port of the Swift synthetic camera

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix_units(seed: int, start: int, n: int) -> np.ndarray:
    """SplitMix64(seed).unit() calls number start ..< start+n (0-based), vectorised."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(start + 1, start + n + 1, dtype=np.uint64) * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _clamp_byte(x):
    return np.floor(np.clip(x, 0, 255) + 0.5)


class SwiftTile:
    """CropFieldTile + SyntheticFieldSource geometry, with plant and row masks."""

    def __init__(self, seed: int = 1, width: int = 640, height: int = 480, pixels_per_frame: int = 3):
        self.width, self.height, self.ppf = width, height, pixels_per_frame
        self.margin = max(4, width // 16)
        tw, th = width + 2 * self.margin, max(2 * height, 256)
        row_spacing = max(12, width // 10)
        self.tw, self.th = tw, th
        counter = 0
        cell = 24
        grid_w, grid_h = tw // cell + 2, max(1, th // cell)
        patches = splitmix_units(seed, counter, grid_w * grid_h) * 2 - 1
        counter += grid_w * grid_h
        grain = splitmix_units(seed, counter, tw * th).reshape(th, tw)
        counter += tw * th
        y = np.arange(th, dtype=np.float64)
        x = np.arange(tw, dtype=np.float64)
        gy, gx = y / cell, x / cell
        y0 = (gy.astype(np.int64)) % grid_h
        y1 = (y0 + 1) % grid_h
        fy = (gy - np.floor(gy))[:, None]
        x0 = gx.astype(np.int64)
        fx = (gx - np.floor(gx))[None, :]
        p = patches.reshape(grid_h, grid_w)
        top = p[y0][:, x0] * (1 - fx) + p[y0][:, x0 + 1] * fx
        bottom = p[y1][:, x0] * (1 - fx) + p[y1][:, x0 + 1] * fx
        shade = (top * (1 - fy) + bottom * fy) * 18 + (grain - 0.5) * 14
        pix = np.stack([_clamp_byte(118 + shade), _clamp_byte(84 + shade * 0.8), _clamp_byte(56 + shade * 0.6)], -1)
        plant = np.zeros((th, tw), bool)

        # the plant loop draws few numbers; pull them in blocks
        buf = splitmix_units(seed, counter, 1 << 16)
        pos = 0

        def unit():
            nonlocal buf, pos, counter
            if pos == len(buf):
                counter += len(buf)
                buf, pos = splitmix_units(seed, counter, 1 << 16), 0
            pos += 1
            return buf[pos - 1]

        spacing = max(8, row_spacing)
        step = max(4, spacing * 2 // 5)
        row_x = spacing // 2
        centres = []
        while row_x < tw:
            centres.append(row_x)
            yy = int(unit() * step)
            while yy < th:
                if unit() > 0.14:
                    radius = spacing * (0.16 + unit() * 0.14)
                    cx = row_x + (unit() - 0.5) * spacing * 0.12
                    tone = unit()
                    self._draw(pix, plant, cx, yy, radius, tone)
                yy += step + int((unit() - 0.5) * step * 0.5)
            row_x += spacing + int((unit() - 0.5) * 2)
        self.pixels = pix.astype(np.uint8)
        self.plant = plant
        xs = np.arange(tw)[None, :]
        dist = np.min(np.abs(xs - np.array(centres)[:, None]), axis=0)
        self.row = np.broadcast_to(dist <= ROW_BAND * spacing / 2, (th, tw))

    def _draw(self, pix, plant, cx, cy, radius, tone):
        th, tw = plant.shape
        r = int(math.ceil(radius))
        d = np.arange(-r, r + 1)
        ys = ((int(cy) + d) % th + th) % th
        xs = int(cx) + d
        ok = (xs >= 0) & (xs < tw)
        dist = np.sqrt(d[:, None] ** 2 + d[None, :] ** 2) / radius
        inside = (dist <= 1) & ok[None, :]
        light = 1.15 - 0.45 * dist
        col = np.stack([_clamp_byte((38 + 30 * tone) * light), _clamp_byte((120 + 45 * tone) * light),
                        _clamp_byte((28 + 20 * tone) * light)], -1)
        yy, xx = np.nonzero(inside)
        pix[ys[yy], xs[xx]] = col[yy, xx]
        plant[ys[yy], xs[xx]] = True

    def frame(self, index: int):
        """Frame `index` (as SyntheticFieldSource.render) and its masks, at the camera's size."""
        scroll = (index * self.ppf) % self.th
        drift = self.margin + int(_swift_round(self.margin * 0.8 * math.sin(index * 0.02)))
        rows = (np.arange(self.height) - scroll) % self.th
        sl = slice(drift, drift + self.width)
        return self.pixels[rows, sl], self.plant[rows, sl], self.row[rows, sl]


def _swift_round(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def resize_sample(img, masks, size=(256, 256)):
    """Image: PIL BILINEAR (as the daemon); masks: bilinear as float, > 0.5."""
    out = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    lab = {}
    for name, m in masks.items():
        f = Image.fromarray(m.astype(np.float32), mode="F").resize(size, Image.BILINEAR)
        lab[name] = (np.asarray(f) > 0.5).astype(np.uint8)
    return out, lab


def swift_frame(tile: SwiftTile, index: int, size=(256, 256)):
    img, plant, row = tile.frame(index)
    return resize_sample(img, {"plants": plant, "rows": np.ascontiguousarray(row)}, size)


# ----------------------------------------------------------------------------- mixing

def make_swift_pool(seeds, sizes=((640, 480),)):
    return [SwiftTile(seed=s, width=w, height=h) for s in seeds for (w, h) in sizes]


def sample(rng: np.random.Generator, H: int, W: int, swift_pool=None, p_swift: float = 0.0):
    """One training/eval sample at H x W (crops of a 256x256 daemon frame for the Swift source)."""
    if swift_pool and rng.random() < p_swift:
        tile = swift_pool[int(rng.integers(len(swift_pool)))]
        img, lab = swift_frame(tile, int(rng.integers(0, 100000)))
        y0, x0 = int(rng.integers(0, 256 - H + 1)), int(rng.integers(0, 256 - W + 1))
        img = img[y0:y0 + H, x0:x0 + W]
        lab = {k: v[y0:y0 + H, x0:x0 + W] for k, v in lab.items()}
        if rng.random() < 0.5:  # a little sensor noise / exposure change
            f = img.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.normal(0, rng.uniform(0, 5), img.shape)
            img = np.clip(f + 0.5, 0, 255).astype(np.uint8)
        return img, lab
    return render_field(rng, H, W)


if __name__ == "__main__":
    import time
    rng = np.random.default_rng(0)
    t = time.time()
    for _ in range(50):
        render_field(rng, 256, 256)
    print(f"render_field 256x256: {50 / (time.time() - t):.1f} images/s")
    t = time.time()
    tile = SwiftTile(1)
    print(f"SwiftTile 640x480: {time.time() - t:.2f} s")
    t = time.time()
    for i in range(50):
        swift_frame(tile, i * 37)
    print(f"swift_frame: {50 / (time.time() - t):.1f} frames/s")
