"""zrealism_core.imaging.video: MP4/GIF/WebP/folder round trips, odd sizes, no half-written files."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from zrealism_core.errors import InputError
from zrealism_core.imaging.video import read_video, write_video


def _clip(n=6, h=48, w=64, seed=0):
    """Smooth, distinct frames (a moving gradient + a square) so lossy codecs keep them recognisable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    base = rng.uniform(0.2, 0.8, size=3).astype(np.float32)
    for i in range(n):
        f = np.empty((h, w, 3), np.float32)
        f[..., 0] = base[0] * (xx / w)
        f[..., 1] = base[1] * (yy / h)
        f[..., 2] = base[2]
        x0 = 4 + 4 * i
        f[8:24, x0 : x0 + 12] = 1.0
        frames.append(f)
    return frames


def _probe(path):
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return out.stderr


def test_mp4_round_trip_keeps_count_fps_and_content(tmp_path):
    frames = _clip(n=7)
    path = write_video(frames, tmp_path / "clip.mp4", fps=12)
    info = _probe(path)
    assert "h264" in info and "yuv420p" in info and "64x48" in info
    back, fps = read_video(path)
    assert len(back) == 7
    assert fps == pytest.approx(12.0)
    assert back[0].shape == (48, 64, 3) and back[0].dtype == np.float32
    # lossy, but each frame must match its own source better than its neighbour
    for i in range(7):
        own = np.abs(back[i] - frames[i]).mean()
        assert own < 0.03
        if i + 1 < 7:
            assert own < np.abs(back[i] - frames[i + 1]).mean()
    # no temporary file left next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_mp4_odd_and_non16_sizes(tmp_path):
    frames = _clip(n=3, h=37, w=50)
    back, _ = read_video(write_video(frames, tmp_path / "odd.mp4", fps=8))
    # padded by one edge-replicated row to the even size yuv420p needs; width 50 kept (not rescaled to 64)
    assert back[0].shape == (38, 50, 3)
    assert np.abs(back[1][:37] - frames[1]).mean() < 0.03


def test_gif_round_trip(tmp_path):
    frames = _clip(n=5)
    back, fps = read_video(write_video(frames, tmp_path / "clip.gif", fps=10))
    assert len(back) == 5 and back[0].shape == (48, 64, 3)
    assert fps == pytest.approx(10.0)
    assert np.abs(back[3] - frames[3]).mean() < 0.03  # 256-colour palette


def test_webp_round_trip(tmp_path):
    frames = _clip(n=4)
    back, fps = read_video(write_video(frames, tmp_path / "clip.webp", fps=12.5))
    assert len(back) == 4
    assert fps == pytest.approx(12.5)  # not the 8 fps default: the frame duration is read back
    assert np.abs(back[2] - frames[2]).mean() < 0.03


def test_folder_of_images_natural_order(tmp_path):
    from zrealism_core.imaging.images import save_image

    frames = _clip(n=11)
    for i, f in enumerate(frames):
        save_image(f, tmp_path / "seq" / f"frame_{i}.png")
    (tmp_path / "seq" / "notes.txt").write_text("ignored")
    back, fps = read_video(tmp_path / "seq", folder_fps=6)
    assert len(back) == 11 and fps == 6
    for i in range(11):  # frame_10 after frame_9, not after frame_1
        assert np.abs(back[i] - frames[i]).max() < 1 / 255 + 1e-6


def test_max_frames_and_uint8_array_input(tmp_path):
    arr = (np.stack(_clip(n=6)) * 255).astype(np.uint8)
    path = write_video(arr, tmp_path / "a.mp4", fps=8)
    back, _ = read_video(path, max_frames=2)
    assert len(back) == 2


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(InputError, match=r"\.mp4, \.gif or \.webp"):
        write_video(_clip(n=2), tmp_path / "x.avi", fps=8)
    with pytest.raises(InputError, match="empty"):
        write_video([], tmp_path / "x.mp4", fps=8)
    with pytest.raises(InputError, match="fps"):
        write_video(_clip(n=2), tmp_path / "x.mp4", fps=0)
    mixed = _clip(n=1) + _clip(n=1, h=32, w=32)
    with pytest.raises(InputError, match="same size"):
        write_video(mixed, tmp_path / "x.mp4", fps=8)
    # the failed writes left nothing behind
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="not found"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        read_video(tmp_path / "empty")


def test_public_export():
    import zrealism_core

    assert zrealism_core.write_video is write_video
    assert zrealism_core.read_video is read_video
