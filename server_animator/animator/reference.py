"""The neutral reference infant: a drawn, synthetic figure — never a real child.

The animator's appearance comes from this picture alone, so no recorded
child's looks can reach a generated video. It is drawn procedurally (a
cartoon infant lying on its back on a plain blanket, seen from above) and
shipped as ``assets/reference_infant.png``; run this module to redraw it::

    python -m server_animator.animator.reference
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASSET = Path(__file__).parent / "assets" / "reference_infant.png"
SIZE = (576, 1024)  # (width, height): the animator's default portrait canvas

SKIN = (236, 196, 170)
SKIN_SHADE = (214, 170, 146)
ONESIE = (168, 200, 226)
ONESIE_SHADE = (146, 180, 208)
BLANKET_TOP, BLANKET_BOTTOM = (242, 238, 228), (226, 220, 206)
FEATURE = (120, 84, 72)

# Joint positions as fractions of (width, height): a relaxed supine infant.
POSE = {
    "head": (0.50, 0.22), "neck": (0.50, 0.295),
    "l_shoulder": (0.62, 0.34), "r_shoulder": (0.38, 0.34),
    "l_elbow": (0.76, 0.42), "r_elbow": (0.24, 0.42),
    "l_wrist": (0.78, 0.30), "r_wrist": (0.22, 0.30),
    "l_hip": (0.57, 0.57), "r_hip": (0.43, 0.57),
    "l_knee": (0.70, 0.67), "r_knee": (0.30, 0.67),
    "l_ankle": (0.64, 0.80), "r_ankle": (0.36, 0.80),
}


def _px(name: str, size: tuple[int, int]) -> tuple[int, int]:
    x, y = POSE[name]
    return int(round(x * size[0])), int(round(y * size[1]))


def _limb(img: np.ndarray, a: tuple[int, int], b: tuple[int, int], width: int, color) -> None:
    cv2.line(img, a, b, color, width, cv2.LINE_AA)
    for p in (a, b):
        cv2.circle(img, p, width // 2, color, -1, cv2.LINE_AA)


def draw_reference_infant(size: tuple[int, int] = SIZE) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` picture of the synthetic reference infant."""
    w, h = size
    unit = w / 576  # line widths scale with the canvas
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    img = ((1 - ramp) * np.array(BLANKET_TOP) + ramp * np.array(BLANKET_BOTTOM)).repeat(w, axis=1)
    img = np.ascontiguousarray(img.astype(np.uint8))
    p = {name: _px(name, size) for name in POSE}
    limb_w, upper_w = int(34 * unit), int(40 * unit)
    # legs and arms under the body (skin), sleeves and onesie over them
    for side in ("l", "r"):
        _limb(img, p[f"{side}_hip"], p[f"{side}_knee"], upper_w, SKIN_SHADE)
        _limb(img, p[f"{side}_knee"], p[f"{side}_ankle"], limb_w, SKIN)
        cv2.ellipse(img, p[f"{side}_ankle"], (int(20 * unit), int(28 * unit)), 0, 0, 360, SKIN, -1, cv2.LINE_AA)
        _limb(img, p[f"{side}_elbow"], p[f"{side}_wrist"], int(28 * unit), SKIN)
        cv2.circle(img, p[f"{side}_wrist"], int(20 * unit), SKIN, -1, cv2.LINE_AA)
        _limb(img, p[f"{side}_shoulder"], p[f"{side}_elbow"], int(36 * unit), ONESIE_SHADE)
    torso = np.array([p["r_shoulder"], p["l_shoulder"], p["l_hip"], p["r_hip"]], dtype=np.int32)
    cv2.fillConvexPoly(img, torso, ONESIE, cv2.LINE_AA)
    centre = ((p["l_hip"][0] + p["r_hip"][0]) // 2, p["l_hip"][1])
    cv2.ellipse(img, centre, (int(84 * unit), int(52 * unit)), 0, 0, 360, ONESIE, -1, cv2.LINE_AA)  # nappy
    cv2.ellipse(img, centre, (int(84 * unit), int(52 * unit)), 0, 20, 160, ONESIE_SHADE, int(3 * unit), cv2.LINE_AA)
    # head: a plain, generic face (closed eyes, small mouth) that resembles nobody
    hx, hy = p["head"]
    r = int(72 * unit)
    cv2.ellipse(img, p["neck"], (int(36 * unit), int(22 * unit)), 0, 0, 360, SKIN_SHADE, -1, cv2.LINE_AA)
    cv2.circle(img, (hx, hy), r, SKIN, -1, cv2.LINE_AA)
    for ex in (hx - int(26 * unit), hx + int(26 * unit)):
        cv2.ellipse(img, (ex, hy - int(4 * unit)), (int(12 * unit), int(6 * unit)), 0, 0, 180, FEATURE,
                    max(1, int(3 * unit)), cv2.LINE_AA)
    cv2.ellipse(img, (hx, hy + int(30 * unit)), (int(14 * unit), int(7 * unit)), 0, 0, 180, FEATURE,
                max(1, int(3 * unit)), cv2.LINE_AA)
    cv2.circle(img, (hx, hy + int(12 * unit)), max(1, int(4 * unit)), SKIN_SHADE, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=1.2 * unit)


def main() -> None:
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    rgb = draw_reference_infant()
    if not cv2.imwrite(str(ASSET), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"cannot write {ASSET}")
    print(f"wrote {ASSET} ({rgb.shape[1]}x{rgb.shape[0]})")


if __name__ == "__main__":
    main()
