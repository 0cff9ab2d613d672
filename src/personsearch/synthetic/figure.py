"""Draw one walking person as an anti-aliased RGBA sprite, from the front, the back or either side.

The figure is laid out in body units (standing height ~1, y down, x centred), as a list of polygons
and ellipses, then rasterised at 3-4x supersampling with PIL and box-downsampled. The sprite is
tight: its height is exactly ``height_px`` and its width the figure's horizontal extent.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from personsearch.synthetic.identity import Identity

VIEWS = ("front", "back", "left", "right")
Color = tuple[int, int, int]
_EYE: Color = (38, 28, 26)
_TWO_PI = 2.0 * math.pi


def _shade(color: Color, f: float) -> Color:
    return (min(255, int(color[0] * f)), min(255, int(color[1] * f)), min(255, int(color[2] * f)))


def _lerp(p: tuple[float, float], q: tuple[float, float], t: float) -> tuple[float, float]:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _flex(phase: float) -> float:
    """Knee flexion of a leg over the gait cycle: bent while swinging forward, straight in stance."""
    return 0.8 * max(0.0, math.cos(_TWO_PI * (phase - 0.05))) ** 1.5


class _Sketch:
    """Primitives in body units: ('p', flat xy list, colour) polygons and ('e', bbox, colour) ellipses."""

    def __init__(self) -> None:
        self.prims: list[tuple[str, list[float], Color]] = []

    def poly(self, pts: list[tuple[float, float]], color: Color) -> None:
        self.prims.append(("p", [c for p in pts for c in p], color))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color) -> None:
        self.prims.append(("e", [cx - rx, cy - ry, cx + rx, cy + ry], color))

    def arc(self, cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, color: Color,
            n: int = 8) -> None:
        """Filled elliptic segment between angles a0..a1 (radians, y down)."""
        self.poly([(cx + rx * math.cos(a0 + (a1 - a0) * i / n), cy + ry * math.sin(a0 + (a1 - a0) * i / n))
                   for i in range(n + 1)], color)

    def capsule(self, p: tuple[float, float], q: tuple[float, float], rp: float, rq: float,
                color: Color, n: int = 4) -> None:
        """A limb segment: a tapered stroke from p (radius rp) to q (radius rq) with round ends."""
        a = math.atan2(q[1] - p[1], q[0] - p[0])
        pts = []
        for (cx, cy), r, start in ((q, rq, a - math.pi / 2), (p, rp, a + math.pi / 2)):
            pts += [(cx + r * math.cos(start + math.pi * i / n), cy + r * math.sin(start + math.pi * i / n))
                    for i in range(n + 1)]
        self.poly(pts, color)

    def chain(self, pts: list[tuple[float, float]], radii: list[float], color: Color) -> None:
        for i in range(len(pts) - 1):
            self.capsule(pts[i], pts[i + 1], radii[i], radii[i + 1], color)

    def patch(self, quad: list[tuple[float, float]], u0: float, u1: float, v0: float, v1: float,
              color: Color) -> None:
        """Sub-quad [u0,u1]x[v0,v1] of a bilinear patch (quad = TL, TR, BR, BL)."""
        tl, tr, br, bl = quad

        def at(u: float, v: float) -> tuple[float, float]:
            top, bottom = _lerp(tl, tr, u), _lerp(bl, br, u)
            return _lerp(top, bottom, v)
        self.poly([at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)], color)


class _Body:
    """Landmarks and limb sizes of one identity, in body units."""

    def __init__(self, idt: Identity) -> None:
        w = idt.build / idt.height
        self.rx, self.ry = 0.052 * idt.head, 0.066 * idt.head  # head radii
        self.cy = self.ry  # head centre
        self.sh = 2 * self.ry + 0.028  # shoulder line
        self.hip = 1.0 - 0.48 * idt.legs  # hip joints
        self.waist = self.hip - 0.03
        self.sw, self.hw, self.sd = 0.108 * w, 0.085 * w, 0.062 * w  # shoulder/hip half width, half depth
        self.arm_r = [0.026 * w, 0.02 * w, 0.016 * w]
        self.leg_r = [0.044 * w, 0.031 * w, 0.023 * w]
        self.thigh = self.shin = 0.5 * (1.0 - self.hip - 0.034)
        self.upper_arm, self.forearm = 0.165, 0.145


def _garment_leg(sk: _Sketch, idt: Identity, pts: list[tuple[float, float]], radii: list[float], f: float) -> None:
    """A leg (hip, knee, ankle) clothed by the lower garment type."""
    lower, skin = _shade(idt.lower, f), _shade(idt.skin, f)
    if idt.lower_type == "trousers":
        sk.chain(pts, radii, lower)
        return
    sk.chain(pts, radii, skin)
    if idt.lower_type == "shorts":
        sk.capsule(pts[0], _lerp(pts[0], pts[1], 0.72), radii[0] * 1.08, radii[1] * 1.25, lower)


def _garment_arm(sk: _Sketch, idt: Identity, pts: list[tuple[float, float]], radii: list[float], f: float) -> None:
    """An arm (shoulder, elbow, wrist) with sleeve and hand."""
    upper, skin = _shade(idt.upper, f), _shade(idt.skin, f)
    if idt.sleeves == "long":
        sk.chain(pts, radii, upper)
    else:
        sk.chain(pts, radii, skin)
        sk.capsule(pts[0], _lerp(pts[0], pts[1], 0.6), radii[0] * 1.08, radii[1] * 1.2, upper)
    hand = _lerp(pts[1], pts[2], 1.18)
    sk.ellipse(hand[0], hand[1], radii[2] * 1.15, radii[2] * 1.4, skin)


def _torso_pattern(sk: _Sketch, idt: Identity, quad: list[tuple[float, float]], logo: bool) -> None:
    c = idt.pattern_color
    if idt.pattern == "stripes":
        for k in range(6):
            sk.patch(quad, 0.0, 1.0, (k + 0.3) / 6.2, (k + 0.75) / 6.2, c)
    elif idt.pattern == "checks":
        for k in range(5):
            sk.patch(quad, 0.0, 1.0, (k + 0.35) / 5.2, (k + 0.7) / 5.2, c)
        for k in range(4):
            sk.patch(quad, (k + 0.3) / 4.0, (k + 0.65) / 4.0, 0.0, 1.0, c)
    elif idt.pattern == "logo" and logo:
        (x0, y0), (x1, _), _, (_, y3) = quad
        cx, cy, r = 0.5 * (x0 + x1), y0 + 0.3 * (y3 - y0), 0.17 * (x1 - x0)
        sk.ellipse(cx, cy, r, r * 0.9, c)
        sk.ellipse(cx, cy, r * 0.45, r * 0.4, idt.upper)


def _head(sk: _Sketch, idt: Identity, b: _Body, view: str) -> None:
    """Head seen from 'front', 'back' or 'side' (facing +x): face, hair style, hat."""
    rx, ry, cy, hair, skin = b.rx, b.ry, b.cy, idt.hair, idt.skin
    side = view == "side"
    cx = 0.008 if side else 0.0
    rxs = rx * 1.12 if side else rx
    style = idt.hair_style
    if style == "bald":
        sk.ellipse(cx, cy, rxs, ry, skin)
    elif view == "front":
        sk.ellipse(cx, cy - 0.1 * ry, rx * 1.08, ry * 0.98, hair)
        sk.ellipse(cx, cy + 0.14 * ry, rx * 0.9, ry * 0.86, skin)
    elif view == "back":
        sk.ellipse(cx, cy, rx, ry, skin)
        cover = 0.92 if style == "short" else 1.0
        sk.ellipse(cx, cy - (1 - cover) * 1.5 * ry, rx * 1.06, ry * cover, hair)
    else:
        sk.ellipse(cx + 0.3 * rx, cy + 0.1 * ry, rxs * 0.8, ry * 0.88, skin)
        sk.ellipse(cx - 0.15 * rx, cy - 0.06 * ry, rxs * 0.93, ry * 0.94, hair)
        sk.ellipse(cx + 0.42 * rx, cy + 0.2 * ry, rxs * 0.68, ry * 0.78, skin)
    if style == "ponytail" and view != "front":
        top, end = ((cx, cy + 0.3 * ry), (cx, cy + 1.9 * ry)) if not side else \
            ((cx - 0.9 * rx, cy - 0.1 * ry), (cx - 1.6 * rx, cy + 1.2 * ry))
        sk.capsule(top, end, 0.34 * rx, 0.2 * rx, hair)
    if view == "front":
        for s in (-1, 1):
            sk.ellipse(s * 0.36 * rx, cy + 0.08 * ry, 0.11 * rx, 0.08 * ry, _EYE)
    elif side:
        sk.poly([(cx + 0.95 * rxs, cy - 0.05 * ry), (cx + 1.12 * rxs, cy + 0.28 * ry),
                 (cx + 0.9 * rxs, cy + 0.32 * ry)], skin)
        sk.ellipse(cx + 0.62 * rxs, cy + 0.02 * ry, 0.09 * rx, 0.08 * ry, _EYE)
    if idt.hat is not None:
        hy = cy - 0.08 * ry
        sk.arc(cx - (0.08 * rx if side else 0), hy, rxs * 1.08, ry * 0.95, math.pi, _TWO_PI, idt.hat)
        if view == "front":
            sk.ellipse(cx, hy, rx * 1.22, ry * 0.16, _shade(idt.hat, 0.85))
        elif side:
            sk.capsule((cx, hy), (cx + 1.75 * rx, hy + 0.12 * ry), 0.1 * ry, 0.08 * ry, _shade(idt.hat, 0.85))


def _long_hair(sk: _Sketch, idt: Identity, b: _Body, view: str) -> None:
    if idt.hair_style != "long":
        return
    if view == "side":
        sk.capsule((-0.4 * b.rx, b.cy), (-0.85 * b.rx, b.sh + 0.06), b.rx * 0.75, b.rx * 0.45, idt.hair)
    else:
        sk.capsule((0.0, b.cy), (0.0, b.sh + 0.07), b.rx * 1.12, b.rx * 1.0, idt.hair)


def _front_back(sk: _Sketch, idt: Identity, b: _Body, phase: float, back: bool, stride: float,
                swing: float) -> None:
    """Frontal or rear view. Image side s = +1 is the person's left when seen from the front."""
    sides = ((1, 0.0), (-1, 0.5)) if not back else ((-1, 0.0), (1, 0.5))  # (image side of person's L/R, phase)
    if not back:
        _long_hair(sk, idt, b, "front")
    for s, off in sides:
        lift = 0.06 * stride * _flex(phase + off)
        ankle = (s * 0.052, 1.0 - 0.034 - lift)
        hip = (s * 0.48 * b.hw, b.hip)
        knee = (s * 0.058, b.hip + b.thigh * (1.0 - 0.5 * lift))
        _garment_leg(sk, idt, [hip, knee, ankle], b.leg_r, 1.0)
        sk.ellipse(ankle[0] + s * 0.006, ankle[1] + 0.018, 0.031, 0.017, idt.shoes)
    if idt.lower_type == "skirt":
        knee_y = b.hip + b.thigh - 0.01
        sk.poly([(-b.hw * 1.02, b.waist), (b.hw * 1.02, b.waist), (b.hw * 1.5, knee_y), (-b.hw * 1.5, knee_y)],
                idt.lower)
    else:
        sk.poly([(-b.hw, b.waist), (b.hw, b.waist), (b.hw * 1.02, b.hip + 0.04), (0.0, b.hip + 0.07),
                 (-b.hw * 1.02, b.hip + 0.04)], idt.lower)
    sk.capsule((0.0, b.cy + 0.5 * b.ry), (0.0, b.sh + 0.01), 0.024, 0.026, idt.skin)
    quad = [(-b.sw, b.sh + 0.022), (b.sw, b.sh + 0.022), (b.hw * 1.04, b.hip + 0.012), (-b.hw * 1.04, b.hip + 0.012)]
    sk.poly([(-0.55 * b.sw, b.sh - 0.006), (0.55 * b.sw, b.sh - 0.006), quad[1], quad[2], quad[3], quad[0]], idt.upper)
    _torso_pattern(sk, idt, quad, logo=not back)
    bag_s = next(s for (s, _), side in zip(sides, ("left", "right")) if side == idt.bag_side)
    if idt.bag == "backpack" and back:
        _box(sk, 0.0, b.sh + 0.115, 0.72 * b.sw, 0.1, idt.bag_color)
        _box(sk, 0.0, b.sh + 0.17, 0.5 * b.sw, 0.04, _shade(idt.bag_color, 0.78))
    elif idt.bag == "backpack":
        for s in (-1, 1):
            sk.capsule((s * 0.55 * b.sw, b.sh - 0.004), (s * 0.62 * b.sw, b.sh + 0.15), 0.013, 0.012, idt.bag_color)
    elif idt.bag == "shoulder":
        sk.capsule((-bag_s * 0.6 * b.sw, b.sh), (bag_s * (b.hw + 0.02), b.hip - 0.05), 0.008, 0.008,
                   _shade(idt.bag_color, 0.85))
        _box(sk, bag_s * (b.hw + 0.03), b.hip - 0.01, 0.048, 0.042, idt.bag_color)
    if back:
        _long_hair(sk, idt, b, "back")
    for s, off in sides:
        a = 0.4 * swing * math.sin(_TWO_PI * (phase + off + 0.5))
        shoulder = (s * (b.sw - 0.018), b.sh + 0.026)
        elbow = (s * (b.sw + 0.01), shoulder[1] + b.upper_arm * math.cos(a))
        wrist = (s * (b.sw + 0.004), elbow[1] + b.forearm * math.cos(a + 0.2 + 0.3 * max(0.0, a)))
        _garment_arm(sk, idt, [shoulder, elbow, wrist], b.arm_r, 1.0)
    _head(sk, idt, b, "back" if back else "front")


def _box(sk: _Sketch, cx: float, cy: float, hx: float, hy: float, color: Color) -> None:
    """A bag-like box with chamfered corners, half sizes hx, hy."""
    c = 0.25 * min(hx, hy)
    sk.poly([(cx - hx + c, cy - hy), (cx + hx - c, cy - hy), (cx + hx, cy - hy + c), (cx + hx, cy + hy - c),
             (cx + hx - c, cy + hy), (cx - hx + c, cy + hy), (cx - hx, cy + hy - c), (cx - hx, cy - hy + c)], color)


def _side(sk: _Sketch, idt: Identity, b: _Body, phase: float, near: str, stride: float, swing: float) -> None:
    """Profile facing +x; ``near`` is the person's side ("left"/"right") facing the camera."""
    far_f = 0.8
    limbs = ((far_f, 0.5), (1.0, 0.0))  # (shade, phase offset): far limbs first
    if idt.bag == "shoulder" and idt.bag_side != near:
        _box(sk, -0.45 * b.sd, b.hip - 0.01, 0.045, 0.042, _shade(idt.bag_color, far_f))
    if idt.bag == "backpack":
        _box(sk, -b.sd - 0.02, b.sh + 0.115, 0.042, 0.1, idt.bag_color)
    arms = []
    for f, off in limbs:
        a = -0.42 * swing * math.sin(_TWO_PI * (phase + off))
        shoulder = (-0.005, b.sh + 0.024)
        elbow = (shoulder[0] + b.upper_arm * math.sin(a), shoulder[1] + b.upper_arm * math.cos(a))
        fa = a + 0.18 + 0.4 * max(0.0, a)
        arms.append([shoulder, elbow, (elbow[0] + b.forearm * math.sin(fa), elbow[1] + b.forearm * math.cos(fa))])
    _garment_arm(sk, idt, arms[0], b.arm_r, far_f)
    for f, off in limbs:
        t = 0.33 * stride * math.sin(_TWO_PI * (phase + off))
        s = t - stride * _flex(phase + off)
        hip = (-0.004, b.hip)
        knee = (hip[0] + b.thigh * math.sin(t), hip[1] + b.thigh * math.cos(t))
        ankle = (knee[0] + b.shin * math.sin(s), knee[1] + b.shin * math.cos(s))
        _garment_leg(sk, idt, [hip, knee, ankle], b.leg_r, f)
        rot = 0.6 * min(0.0, s) + 0.3 * max(0.0, t - 0.2)
        ax, ay = ankle
        foot = [(-0.024, -0.01), (0.02, -0.006), (0.062, 0.018), (0.06, 0.034), (-0.026, 0.034)]
        cr, sr = math.cos(rot), math.sin(rot)
        sk.poly([(ax + x * cr - y * sr, ay + x * sr + y * cr) for x, y in foot], _shade(idt.shoes, f))
    if idt.lower_type == "skirt":
        knee_y = b.hip + b.thigh - 0.01
        sk.poly([(-b.sd * 1.05, b.waist), (b.sd * 1.05, b.waist), (b.sd * 1.6, knee_y), (-b.sd * 1.7, knee_y)],
                idt.lower)
    else:
        sk.poly([(-b.sd * 0.98, b.waist), (b.sd * 0.9, b.waist), (b.sd * 0.95, b.hip + 0.045),
                 (-b.sd * 1.0, b.hip + 0.05)], idt.lower)
    sk.capsule((0.004, b.cy + 0.5 * b.ry), (0.0, b.sh + 0.01), 0.024, 0.026, idt.skin)
    quad = [(-b.sd, b.sh + 0.014), (b.sd * 1.05, b.sh + 0.014), (b.sd * 0.88, b.hip + 0.012),
            (-b.sd * 0.98, b.hip + 0.012)]
    sk.poly([(-0.4 * b.sd, b.sh - 0.008), (0.5 * b.sd, b.sh - 0.008), quad[1], quad[2], quad[3], quad[0]], idt.upper)
    _torso_pattern(sk, idt, quad, logo=False)
    _long_hair(sk, idt, b, "side")
    if idt.bag == "backpack":
        sk.capsule((0.0, b.sh - 0.004), (0.75 * b.sd, b.sh + 0.12), 0.012, 0.011, idt.bag_color)
    if idt.bag == "shoulder" and idt.bag_side == near:
        sk.capsule((0.0, b.sh), (0.0, b.hip - 0.05), 0.008, 0.008, _shade(idt.bag_color, 0.85))
        _box(sk, 0.0, b.hip - 0.01, 0.045, 0.042, idt.bag_color)
    _garment_arm(sk, idt, arms[1], b.arm_r, 1.0)
    _head(sk, idt, b, "side")


def _layout(identity: Identity, view: str, phase: float, stride: float = 1.0, swing: float = 1.0) -> _Sketch:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    sk, body = _Sketch(), _Body(identity)
    if view in ("front", "back"):
        _front_back(sk, identity, body, phase, view == "back", stride, swing)
    else:
        # Facing image-right we see the person's right side; "left" is drawn facing right, then mirrored.
        _side(sk, identity, body, phase, "right" if view == "right" else "left", stride, swing)
        if view == "left":
            for kind, c, _ in sk.prims:
                c[0::2] = [-x for x in c[0::2]]
                if kind == "e":
                    c[0], c[2] = c[2], c[0]
    return sk


def _extent(sk: _Sketch) -> tuple[float, float, float, float]:
    xs = [x for _, c, _ in sk.prims for x in c[0::2]]
    ys = [y for _, c, _ in sk.prims for y in c[1::2]]
    return min(xs), min(ys), max(xs), max(ys)


def figure_aspect(identity: Identity, view: str, phase: float = 0.0) -> float:
    """Width / height of the figure in a neutral stride (what ``render_person`` returns, within a few %)."""
    x0, y0, x1, y1 = _extent(_layout(identity, view, phase))
    return (x1 - x0) / (y1 - y0)


def render_person(identity: Identity, view: str, phase: float, height_px: int,
                  rng: np.random.Generator) -> Image.Image:
    """RGBA sprite of ``identity`` walking (``phase`` in [0, 1)), exactly ``height_px`` tall and tight
    horizontally; alpha is 0 outside the body. ``rng`` varies stride and arm swing slightly."""
    if height_px < 2:
        raise ValueError(f"height_px must be >= 2, got {height_px}")
    stride, swing = (float(v) for v in rng.uniform((0.8, 0.7), (1.15, 1.25)))
    sk = _layout(identity, view, phase % 1.0, stride, swing)
    x0, y0, x1, y1 = _extent(sk)
    ss = 4
    k = (height_px * ss - 1) / (y1 - y0)
    width = int(math.ceil((x1 - x0) * k)) + 2 * ss
    ox, oy = ss - x0 * k, -y0 * k
    canvas = Image.new("RGBA", (width, height_px * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for kind, c, color in sk.prims:
        xy = [v * k + (ox if i % 2 == 0 else oy) for i, v in enumerate(c)]
        fill = (color[0], color[1], color[2], 255)
        if kind == "p":
            draw.polygon(xy, fill=fill)
        else:
            draw.ellipse(xy, fill=fill)
    small = canvas.reduce(ss)
    bbox = small.getchannel("A").getbbox()
    if bbox is None:  # degenerate; cannot happen for valid identities
        return small
    return _volume_shading(small.crop((bbox[0], 0, bbox[2], height_px)))


def _volume_shading(img: Image.Image) -> Image.Image:
    """Soft light from above-front: edges of the silhouette and the legs slightly darker."""
    a = np.asarray(img).astype(np.float32)
    h, w = a.shape[:2]
    x = (np.arange(w, dtype=np.float32) + 0.5) * (2.0 / w) - 1.0
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    a[..., :3] *= ((1.06 - 0.18 * x * x)[None, :] * (1.04 - 0.12 * y)[:, None])[..., None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
