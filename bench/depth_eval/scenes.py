"""A small numpy ray caster: random scenes -> (photo (H, W, 3) uint8, z-depth (H, W) float32 metres, valid mask).

Scenes: a textured ground plane seen from a camera 1-2 m above it, boxes and spheres standing on it,
sometimes a back wall, otherwise sky; a sun with hard shadows plus ambient light; optional haze
(Koschmieder: I = J e^{-bz} + A (1 - e^{-bz})), optional defocus blur around a focus distance, sensor
noise. Everything is derived from one integer seed, so the set is reproducible. Sky pixels carry no depth
(valid = False) and are left out of the metrics, as in the usual monocular-depth protocol.

Variants that work against each appearance cue, drawn from a second stream of the seed (so a scene without
them is pixel-identical to the first version of this set):
  lighting   'flash' (a light at the camera, inverse-square: near is brighter) or 'shade' (the foreground lies
             in the shadow of something out of frame: near is darker), else the sun alone
  busywall   the back wall carries fine high-contrast texture and the objects are nearly plain
             (far has more local contrast than near)
  fog        haze density from light to dense ('fog-dense' when the extinction is > 0.08 / m)
  focus      defocus scenes focus near ('focus-near', the subject sharp, the background blurred) or far
             ('focus-far', the foreground blurred)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpurelief.backend import numpy_ops as ops

FAR = 1e9
GROUND_RADIUS_M = 60.0  # the ground ends at a horizon line; beyond it, sky


@dataclass
class Scene:
    pixels: np.ndarray      # (H, W, 3) uint8 sRGB
    depth_m: np.ndarray     # (H, W) float32 z-depth in metres (inf on sky)
    valid: np.ndarray       # (H, W) bool
    kind: str               # short description of what the scene contains
    labels: np.ndarray      # (H, W) int32 surface id: -1 sky, 0 ground, 1 wall, 2+ objects


def _texture(points: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """(..., 3) world points -> (...) float32 in [0, 1]: a few random plane waves plus a checker (solid texture)."""
    out = np.zeros(points.shape[:-1], np.float32)
    for _ in range(4):
        k = rng.normal(size=3) * scale * rng.uniform(0.5, 3.0)
        out += np.sin(points @ k + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    out = 0.5 + out / 8.0
    if rng.random() < 0.5:
        c = rng.uniform(0.2, 0.6) / scale
        checker = (np.floor(points[..., 0] / c) + np.floor(points[..., 2] / c)) % 2
        out = 0.6 * out + 0.4 * checker.astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def _hit_plane_y(o, d, y0):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y0 - o[1]) / d[..., 1]
    return np.where(t > 1e-4, t, FAR)


def _hit_plane_z(o, d, z0):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z0 - o[2]) / d[..., 2]
    return np.where(t > 1e-4, t, FAR)


def _hit_sphere(o, d, c, r):
    oc = o - c
    b = d @ oc
    disc = b * b - (oc @ oc - r * r)
    s = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - s, -b + s
    t = np.where(t0 > 1e-4, t0, np.where(t1 > 1e-4, t1, FAR))
    return np.where(disc > 0, t, FAR)


def _hit_box(o, d, lo, hi):
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        ta = (lo - o) * inv
        tb = (hi - o) * inv
    tmin = np.nanmax(np.minimum(ta, tb), axis=-1)
    tmax = np.nanmin(np.maximum(ta, tb), axis=-1)
    ok = (tmax >= tmin) & (tmax > 1e-4)
    return np.where(ok, np.where(tmin > 1e-4, tmin, tmax), FAR)


def _box_normal(p, lo, hi):
    c, h = (lo + hi) / 2, (hi - lo) / 2
    q = (p - c) / h
    axis = np.argmax(np.abs(q), axis=-1)
    n = np.zeros_like(p)
    np.put_along_axis(n, axis[..., None], np.sign(np.take_along_axis(q, axis[..., None], -1)), -1)
    return n


def render(seed: int, height: int = 192, width: int = 256) -> Scene:
    """Render the scene of `seed` at (height, width)."""
    rng = np.random.default_rng(seed)
    var = np.random.default_rng((seed, 2))  # the variants' own stream: the base scene does not change with them
    lighting = var.choice(["sun", "sun", "flash", "shade"])
    busy_wall = var.random() < 0.5
    fog_gain = var.choice([1.0, 1.0, 3.0])
    focus_far = var.random() < 0.5
    shade_z = var.uniform(3.0, 9.0)
    flash_gain = var.uniform(1.0, 3.0)
    fov = np.deg2rad(rng.uniform(45, 75))
    f = 0.5 * width / np.tan(fov / 2)
    cam_h = rng.uniform(0.8, 2.0)
    pitch = np.deg2rad(rng.uniform(-25, -3))  # looking down
    o = np.array([0.0, cam_h, 0.0])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cam = np.stack([(xs + 0.5 - width / 2) / f, -(ys + 0.5 - height / 2) / f, np.ones_like(xs)], -1)
    cp, sp = np.cos(pitch), np.sin(pitch)
    rot = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # rotate about x: negative pitch looks down
    d = cam @ rot.T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    forward = rot @ np.array([0.0, 0.0, 1.0])

    objects = []  # (kind, params, albedo rgb, texture scale)
    n_obj = int(rng.integers(2, 7))
    for _ in range(n_obj):
        z = rng.uniform(2.0, 14.0)
        x = rng.uniform(-0.6, 0.6) * z * np.tan(fov / 2) * 1.2
        colour = rng.uniform(0.1, 0.95, 3)
        if rng.random() < 0.5:
            r = rng.uniform(0.3, 1.0)
            objects.append(("sphere", (np.array([x, r, z]), r), colour, rng.uniform(2, 8)))
        else:
            sx, sy, sz = rng.uniform(0.3, 1.5), rng.uniform(0.3, 2.0), rng.uniform(0.3, 1.5)
            objects.append(("box", (np.array([x - sx / 2, 0.0, z - sz / 2]), np.array([x + sx / 2, sy, z + sz / 2])),
                            colour, rng.uniform(2, 8)))
    wall_z = rng.uniform(10.0, 25.0) if rng.random() < 0.5 else None

    ground_t = _hit_plane_y(o, d, 0.0)
    ground_t = np.where(ground_t * np.hypot(d[..., 0], d[..., 2]) < GROUND_RADIUS_M, ground_t, FAR)
    t = ground_t.copy()
    idx = np.zeros(t.shape, np.int32)  # 0 ground, 1 wall, 2+ objects, -1 sky
    if wall_z is not None:
        tw = _hit_plane_z(o, d, wall_z)
        idx = np.where(tw < t, 1, idx)
        t = np.minimum(t, tw)
    for k, (kind, params, _, _) in enumerate(objects):
        tk = _hit_sphere(o, d, *params) if kind == "sphere" else _hit_box(o, d, *params)
        idx = np.where(tk < t, k + 2, idx)
        t = np.minimum(t, tk)
    sky = t >= FAR
    idx[sky] = -1
    t = np.where(sky, 1.0, t)
    p = o + d * t[..., None]
    z_depth = np.where(sky, np.inf, t * (d @ forward))

    # normals and albedo per surface
    normal = np.zeros_like(p)
    albedo = np.zeros_like(p)
    normal[idx == 0] = (0, 1, 0)
    ground_col = rng.uniform(0.2, 0.8, 3)
    m = idx == 0
    albedo[m] = ground_col * (0.4 + 0.6 * _texture(p[m], rng, rng.uniform(1.0, 6.0)))[:, None]
    if wall_z is not None:
        m = idx == 1
        normal[m] = (0, 0, -1)
        wall_col = rng.uniform(0.2, 0.9, 3)
        tex = _texture(p[m], rng, rng.uniform(0.5, 3.0))
        if busy_wall:  # fine, high-contrast texture far away
            tex = np.clip((_texture(p[m] * 4.0, var, 2.0) - 0.5) * 3.0 + 0.5, 0.0, 1.0)
            albedo[m] = wall_col * (0.15 + 0.85 * tex)[:, None]
        else:
            albedo[m] = wall_col * (0.5 + 0.5 * tex)[:, None]
    for k, (kind, params, colour, tex_scale) in enumerate(objects):
        m = idx == k + 2  # textures draw from rng even when unseen, so a seed is one scene at any resolution
        if kind == "sphere":
            n = (p[m] - params[0]) / params[1]
        else:
            n = _box_normal(p[m], *params)
        normal[m] = n
        tex = _texture(p[m], rng, tex_scale)
        plain = busy_wall and wall_z is not None
        albedo[m] = colour * ((0.9 + 0.1 * tex) if plain else (0.55 + 0.45 * tex))[:, None]

    # sun + ambient, hard shadows
    elev, azim = np.deg2rad(rng.uniform(20, 80)), rng.uniform(0, 2 * np.pi)
    sun = np.array([np.cos(elev) * np.sin(azim), np.sin(elev), np.cos(elev) * np.cos(azim)])
    lit = np.clip(normal @ sun, 0.0, None)
    so = p + normal * 1e-3
    shadow = np.zeros(t.shape, bool)
    # shadow rays: one direction (the sun), origin per pixel
    for kind, params, _, _ in objects:
        if kind == "sphere":
            c, r = params
            oc = so - c
            b = oc @ sun
            disc = b * b - ((oc * oc).sum(-1) - r * r)
            s = np.sqrt(np.maximum(disc, 0.0))
            shadow |= (disc > 0) & ((-b + s) > 1e-4)
        else:
            lo, hi = params
            with np.errstate(divide="ignore", invalid="ignore"):
                ta, tb = (lo - so) / sun, (hi - so) / sun
            tmin = np.nanmax(np.minimum(ta, tb), -1)
            tmax = np.nanmin(np.maximum(ta, tb), -1)
            shadow |= (tmax >= tmin) & (tmax > 1e-4)
    sun_col = np.array([1.0, 0.95, 0.85]) * rng.uniform(0.8, 1.3)
    amb = rng.uniform(0.15, 0.45)
    direct = (lit * ~shadow)[..., None] * sun_col
    if lighting == "shade":  # out-of-frame shadow over the foreground, soft edge about 1 m wide
        direct = direct * np.clip((z_depth - shade_z) + 0.5, 0.0, 1.0)[..., None]
    radiance = albedo * (amb + direct)
    if lighting == "flash":  # a light at the camera; 1 at 2 m, inverse-square
        facing = np.clip(-(normal * d).sum(-1), 0.0, None)
        radiance = radiance + albedo * (flash_gain * facing * (2.0 / np.maximum(t, 0.5)) ** 2)[..., None]

    sky_top, sky_bottom = np.array([0.35, 0.55, 0.95]), np.array([0.8, 0.85, 0.95])
    up = np.clip(d[..., 1] * 3 + 0.2, 0, 1)[..., None]
    sky_col = (sky_bottom * (1 - up) + sky_top * up) * rng.uniform(0.8, 1.2)
    radiance = np.where(sky[..., None], sky_col, radiance)

    kinds = [] if lighting == "sun" else [str(lighting)]
    if busy_wall and wall_z is not None:
        kinds.append("busywall")
    beta = 0.0
    if rng.random() < 0.4:
        beta = rng.uniform(0.01, 0.08) * fog_gain
        airlight = sky_bottom * rng.uniform(0.8, 1.1)
        trans = np.exp(-beta * np.where(sky, 1e3, t))[..., None]
        radiance = radiance * trans + airlight * (1 - trans)
        kinds.append("haze")
        if beta > 0.08:
            kinds.append("fog-dense")
    linear = radiance.astype(np.float32)

    if rng.random() < 0.4:
        # thin-lens defocus: blur sigma ~ |1/z - 1/z_focus|, applied as a blend of a few blur levels
        zs = z_depth[~sky]
        z_focus = float(np.percentile(zs, rng.uniform(5, 40)))
        if focus_far:
            z_focus = float(np.percentile(zs, var.uniform(60, 95)))
        strength = rng.uniform(1.0, 2.5) * width / 256
        inv = np.where(sky, 0.0, 1.0 / np.where(sky, 1.0, z_depth))
        sigma = strength * np.abs(inv - 1.0 / z_focus) * z_focus * 2.0
        levels = [0.0, 1.0, 2.0, 4.0, 8.0]
        sigma = np.clip(sigma, 0, levels[-1])
        stacks = [np.stack([ops.gaussian_blur(linear[..., c], s) for c in range(3)], -1) for s in levels]
        out = np.zeros_like(linear)
        for i in range(len(levels) - 1):
            a, b = levels[i], levels[i + 1]
            w = np.clip((sigma - a) / (b - a), 0, 1).astype(np.float32)[..., None]
            sel = ((sigma >= a) & (sigma <= b))[..., None]
            out = np.where(sel, stacks[i] * (1 - w) + stacks[i + 1] * w, out)
        linear = out
        kinds.append("defocus")
        kinds.append("focus-far" if focus_far else "focus-near")

    exposure = rng.uniform(0.7, 1.2)
    linear = np.clip(linear * exposure + rng.normal(0, 0.004, linear.shape), 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    pixels = np.clip(np.rint(srgb * 255), 0, 255).astype(np.uint8)
    kinds.append("wall" if wall_z is not None else "sky")
    return Scene(pixels=pixels, depth_m=z_depth.astype(np.float32), valid=~sky, kind="+".join(kinds), labels=idx)
