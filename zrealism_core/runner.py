"""The whole pipeline on one image or a folder: prep -> analyze -> depth/pose -> still -> clip -> evaluate.

This is what `zrealism run` and `zrealism selftest` call. It chains the same core functions the
nodes call, with the same defaults and the same params rule (settings.apply_params), so a graph of
our nodes and this runner give the same result for the same inputs and seed.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError, ModelFileError
from .runtime.fallback import check_cancel
from .settings import DEFAULT_PRESET
from .imaging.folder import IMAGE_SUFFIXES  # noqa: F401 (its old home; the rule lives in imaging.folder)
from .models.catalog import CATALOG, ModelPaths, missing_models_message

log = logging.getLogger("zrealism")

OUTPUT_FILES = ("prepped.png", "depth.png", "pose.png", "result.png", "report.json", "report.png")


@dataclass
class RunOptions:
    """Settings of one run. None means "the analyzer's recommendation" (as when the params input is wired)."""

    seed: int = 0
    size: int = 512  # long side after prep (multiples of 8, white padding)
    subject: str = ""  # subject phrase for the prompt suggestion
    prompt: str = ""  # replaces the suggested positive prompt when given
    negative: str = ""  # replaces the suggested negative prompt when given
    steps: Optional[int] = None
    denoise: Optional[float] = None
    scheduler: Optional[str] = None  # None: the sampler's default
    color_lock: float = 0.0
    video: bool = False
    frames: int = 16
    fps: float = 8.0
    video_strength: float = 0.5
    video_steps: Optional[int] = None  # None: the still's steps
    video_format: str = "mp4"
    loras: List[Tuple[Path, float]] = field(default_factory=list)  # (file, strength), applied in order
    ip_adapter: Optional[Path] = None  # IP-Adapter file; the prepared drawing is its reference image
    clip_vision: Optional[Path] = None
    ip_weight: float = 0.6
    embedding_dirs: List[Path] = field(default_factory=list)  # for embedding:NAME in prompts
    clip_skip: int = 1  # 1 = CLIP's last layer, 2 = penultimate
    preset: str = DEFAULT_PRESET  # speed preset (settings.PRESETS): "balanced" = step reuse + decode layout; "fast"; "quality" = all off
    # the still's sampler settings given explicitly, by the Dual ControlNet Sampler's input names (cfg, depth_start,
    # depth_method, detect_resolution, detail_scale, cfg_end, ...): they replace the analyzer's recommendation and
    # the node's defaults (commands/run.py SAMPLER_FLAGS)
    sampler: Dict[str, Any] = field(default_factory=dict)
    loop: str = "off"  # the clip's loop (AnimateDiff Fuse's loop input)


@dataclass
class RunResult:
    out_dir: Path
    files: Dict[str, Path]
    scores: Dict[str, float]
    timings: Dict[str, float] = field(default_factory=dict)
    skipped: bool = False


def quiet_libraries() -> None:
    """Keep the CLI's output to our own progress bars and messages: diffusers/transformers log their
    loading bars and harmless dtype notices at info/warning level."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(mediapipe|Overwriting|register_model|deprecated).*")
    try:
        import diffusers.utils.logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    try:
        import transformers.utils.logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def list_inputs(path: Path) -> List[Path]:
    """The images to process: the file itself, or every image in the folder (imaging.folder's order)."""
    from .imaging.folder import image_files

    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return image_files(path)
    raise InputError(f"input not found: {path}")


def check_models(models: ModelPaths, video: bool, models_dir: Optional[Path] = None) -> None:
    """Raise one ModelFileError listing every missing model (the CLI exits with code 2 on it)."""
    missing = models.missing(video=video)
    bad = [r for r in models.__dict__.items() if r[0] != "annotator_dirs" and r[1] is not None and not Path(r[1]).exists()]
    if missing:
        raise ModelFileError(missing_models_message(missing, models_dir))
    if bad:
        raise ModelFileError("model path(s) do not exist: " + ", ".join(f"{k}={v}" for k, v in bad))


def load_models(models: ModelPaths, *, device: str = "auto", dtype: str = "auto", config: Optional[Path] = None,
                embedding_dirs: Sequence[Path] = (), clip_skip: int = 1, fallback: Optional[bool] = None):
    """Load the still pipeline once for a whole batch."""
    from .engine import load_pipeline

    quiet_libraries()
    opts: Dict[str, Any] = {"annotator_dirs": [str(d) for d in models.annotator_dirs],
                            "embedding_dirs": [str(d) for d in embedding_dirs], "clip_skip": clip_skip}
    if config is not None:
        opts["config"] = config
    if fallback is not None:
        opts["fallback"] = fallback
    return load_pipeline(models.checkpoint, models.depth_controlnet, models.pose_controlnet, models.vae,
                         device=device, dtype=dtype, detail_controlnet=models.detail_controlnet, **opts)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, unit="step")


def _step_progress(desc: str, enabled: bool, event: Optional[Callable[..., None]] = None) -> Callable[[int, int], None]:
    state: Dict[str, Any] = {}

    def callback(step: int, total: int) -> None:
        if event is not None:
            event(desc, step, total)
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = _bar(total, desc, enabled)
        bar.n = step
        bar.refresh()
        if step >= total:
            bar.close()

    return callback


# on_event(stage, step, total, info) of run_image
EventCallback = Callable[[str, int, int, Dict[str, Any]], None]


def _ReportingPlacement(pipe: Any, event: Callable[..., None]) -> Any:
    """The default placement (runtime.placement.Placement) that says when it places the modules, with the
    memory estimate: what the queue calls ALLOCATING_VRAM (on the CPU too)."""
    from .runtime.placement import Placement

    class ReportingPlacement(Placement):
        def place(self, attempt: Any, memory_required: int = 0, skip: Any = ()) -> None:
            event("place", device=str(attempt.device), memory_mb=round(int(memory_required) / 2**20, 1))
            super().place(attempt, memory_required, skip)

    return ReportingPlacement(pipe)


def run_image(
    image_path: Optional[Path],
    out_dir: Path,
    pipe: Any,
    options: RunOptions,
    *,
    image: Optional[np.ndarray] = None,
    motion_adapter: Any = None,
    progress: bool = True,
    cancel: Any = None,
    on_event: Optional[EventCallback] = None,
) -> RunResult:
    """Run every stage on one image and write the outputs into `out_dir` (see OUTPUT_FILES).

    Files are written only after every stage succeeded, so a failed or cancelled run leaves no
    half set behind (and a resumed batch does not skip it).
    cancel: threading.Event or callable -> True to stop (CancelledError between stages and within one
    sampling step). on_event(stage, step, total, info): each stage as it starts ("prep", "analyze",
    "still", "video", "evaluate"), "place" when the models are placed for the still (info: device,
    memory_mb, the estimate), and every sampling step of "still" / "video" (the queue's states).
    """
    from tqdm.auto import tqdm

    from .analysis import analyze
    from .engine import transform
    from .evaluation import evaluate, evaluate_video
    from .imaging.images import load_image, save_image
    from .evaluation.panel import render_panel
    from .runtime.guidance import DEFAULT_CFG_END, DEFAULT_CONTROL_BUDGET
    from .runtime.step_reuse import DEFAULT_CONTROL_REUSE, DEFAULT_UNET_REUSE
    from .settings import CLIP_DEFAULTS, SAMPLER_DEFAULTS, resolve
    from .prep import prepare_white_background

    if image is None:
        if image_path is None:
            raise InputError("run_image needs an image path or an image array.")
        image = load_image(image_path)
    if options.video and motion_adapter is None:
        raise ModelFileError(missing_models_message([r for r in CATALOG if r.key == "motion_adapter"]))
    stages = ["prep", "analyze", "still"] + (["video"] if options.video else []) + ["evaluate"]
    timings: Dict[str, float] = {}
    bar = tqdm(total=len(stages), desc=(image_path.name if image_path else "image"), disable=not progress, unit="stage")

    def event(stage: str, step: int = 0, total: int = 0, **info: Any) -> None:
        if on_event is not None:
            on_event(stage, step, total, info)

    def timed(name: str):
        class _T:
            def __enter__(self_inner):
                check_cancel(cancel, f"before {name}")
                event(name)
                bar.set_postfix_str(name)
                self_inner.t0 = time.perf_counter()

            def __exit__(self_inner, *exc):
                timings[name] = time.perf_counter() - self_inner.t0
                if exc[0] is None:
                    bar.update(1)
                return False

        return _T()

    try:
        with timed("prep"):
            prep = prepare_white_background(image, long_side=int(options.size or 0))
        with timed("analyze"):
            analysis = analyze(prep.image, prep.mask, subject=options.subject)
        # As the sampler node resolves them (settings.resolve): its widget defaults, replaced by the analyzer's
        # params (as when wired), then by what the user set explicitly on the command line, then the preset.
        speed = dict(cfg_end=DEFAULT_CFG_END, control_budget=DEFAULT_CONTROL_BUDGET, detail_end=1.0)
        reuse = dict(control_reuse=DEFAULT_CONTROL_REUSE, unet_reuse=DEFAULT_UNET_REUSE)  # the still's only
        given = {k: v for k, v in (("steps", options.steps), ("denoise", options.denoise)) if v is not None}
        still_settings = resolve("still", {**SAMPLER_DEFAULTS, **speed, **reuse}, analysis.params, options.preset, pipe=pipe,
                                 explicit={**given, **options.sampler})
        settings = still_settings.values
        positive = options.prompt or analysis.positive
        negative = options.negative or analysis.negative
        extra = {"scheduler": options.scheduler} if options.scheduler else {}
        # the settings the analyzer never recommends: passed when given, else transform()'s (= the node's) defaults
        extra.update({k: settings[k] for k in ("scheduler", "depth_method", "detect_resolution", "detail_start", "detail_hint")
                      if k in settings})
        from .adapters.views import with_adapters

        pipe = with_adapters(pipe, options.loras, options.ip_adapter, options.clip_vision, options.ip_weight, prep.image)
        placement = _ReportingPlacement(pipe, event) if on_event is not None else None
        with timed("still"):
            still = transform(
                pipe, prep.image, mask=prep.mask, prompt=positive, negative=negative, seed=int(options.seed),
                steps=int(settings["steps"]), cfg=float(settings["cfg"]), denoise=float(settings["denoise"]),
                depth_scale=float(settings["depth_scale"]), pose_scale=float(settings["pose_scale"]),
                depth_start=float(settings["depth_start"]), depth_end=float(settings["depth_end"]),
                pose_start=float(settings["pose_start"]), pose_end=float(settings["pose_end"]),
                color_lock=float(options.color_lock), callback=_step_progress("still", progress, event),
                cancel=cancel, placement=placement,
                cfg_end=float(settings["cfg_end"]), control_budget=settings["control_budget"],
                control_reuse=int(settings["control_reuse"]), unet_reuse=int(settings["unet_reuse"]),
                decode_channels_last=bool(settings.get("decode_channels_last", False)),
                detail_scale=float(settings["detail_scale"]), detail_end=float(settings["detail_end"]), **extra,
            )
        frames, clip_settings = None, None
        if options.video:
            from .animation import animate

            # AnimateDiff Fuse's defaults, replaced by the analyzer's params, as in the video workflow
            clip_settings = resolve("clip", {**CLIP_DEFAULTS, **speed}, analysis.params, options.preset, pipe=pipe).values
            with timed("video"):
                frames = animate(
                    pipe, still.image, motion_adapter=motion_adapter, frames=int(options.frames), fps=options.fps,
                    strength=float(options.video_strength), seed=int(options.seed),
                    steps=int(options.video_steps or settings["steps"]), cfg=float(settings["cfg"]),
                    depth_map=still.depth_map, pose_map=still.pose_map, prompt=positive, negative=negative,
                    mask=prep.mask, loop=options.loop, callback=_step_progress("video", progress, event), cancel=cancel,
                    **clip_settings,
                )
        with timed("evaluate"):
            # the still's own maps are the source's control maps: not detected again (report.control)
            maps = dict(depth_map=still.depth_map, pose_map=still.pose_map, annotator_dirs=pipe.annotator_dirs)
            report = evaluate(prep.image, still.image, prep.mask, **maps)
            video_report = evaluate_video(prep.image, list(frames), prep.mask, **maps) if frames is not None else None
            panel = render_panel(prep.image, still.image, report)
    finally:
        bar.close()

    # Everything computed: now write, each file atomically.
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "prepped": save_image(prep.image, out_dir / "prepped.png"),
        "mask": save_image(prep.mask, out_dir / "mask.png"),
        "depth": save_image(still.depth_map, out_dir / "depth.png"),
        "pose": save_image(still.pose_map, out_dir / "pose.png"),
        "result": save_image(still.image, out_dir / "result.png"),
        "panel": save_image(panel, out_dir / "report.png"),
    }
    if frames is not None:
        from .imaging.video import write_video

        files["video"] = write_video(list(frames), out_dir / f"result.{options.video_format}", options.fps)
    scores = dict(report.scores)
    doc = {
        "input": str(image_path) if image_path else None,
        "options": asdict(options),
        "analysis": {"features": analysis.features, "params": analysis.params.to_dict(),
                     "positive": analysis.positive, "negative": analysis.negative},
        "settings": {**settings, "prompt": positive, "negative": negative, "seed": int(options.seed)},
        "video_settings": clip_settings,
        "device": {"device": still.device, "dtype": still.dtype, "fallback": still.fallback},
        # what the still / clip switched off or changed on the user's behalf (runtime.note), as the nodes' report
        "notes": {"still": still_settings.preset_notes + still_settings.notes + list(still.notes), "video": list(getattr(frames, "notes", [])) if frames is not None else None},
        "still": report.to_dict(),
        "video": video_report.to_dict() if video_report is not None else None,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "files": {k: p.name for k, p in files.items()},
    }
    report_path = out_dir / "report.json"
    tmp = report_path.with_name("report.json.part")
    tmp.write_text(json.dumps(doc, indent=2, default=str))  # default=str: the LoRA / IP-Adapter paths
    tmp.replace(report_path)  # written last: its presence marks the image as done
    files["report"] = report_path
    if video_report is not None:
        scores["temporal"] = float(video_report.scores.get("temporal", float("nan")))
    return RunResult(out_dir=out_dir, files=files, scores=scores, timings=timings)


def output_dir_for(image_path: Path, out_root: Path, batch: bool) -> Path:
    return Path(out_root) / image_path.stem if batch else Path(out_root)


def is_done(out_dir: Path, video: bool) -> bool:
    """An image is done when its report.json exists (written last) and, for --video, its clip."""
    if not (out_dir / "report.json").is_file():
        return False
    if video:
        try:
            doc = json.loads((out_dir / "report.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(doc.get("files", {}).get("video"))
    return True


def run_batch(
    inputs: Sequence[Path],
    out_root: Path,
    models: ModelPaths,
    options: RunOptions,
    *,
    device: str = "auto",
    dtype: str = "auto",
    config: Optional[Path] = None,
    progress: bool = True,
    sample_image: Optional[np.ndarray] = None,
    fallback: Optional[bool] = None,
) -> List[RunResult]:
    """Process images with one model load. Images whose outputs exist already are skipped (resumable)."""
    batch = len(inputs) > 1
    todo = []
    results: List[RunResult] = []
    for p in inputs:
        out_dir = output_dir_for(p, out_root, batch)
        if batch and is_done(out_dir, options.video):
            log.info("zrealism: %s is done already, skipping", p.name)
            results.append(RunResult(out_dir=out_dir, files={}, scores={}, skipped=True))
            continue
        todo.append((p, out_dir))
    if not todo:
        return results
    t0 = time.perf_counter()
    pipe = load_models(models, device=device, dtype=dtype, config=config,
                       embedding_dirs=options.embedding_dirs, clip_skip=options.clip_skip, fallback=fallback)
    motion = None
    if options.video:
        from .models.motion import as_motion_model

        motion = as_motion_model(models.motion_adapter)
    load_s = time.perf_counter() - t0
    for p, out_dir in todo:
        r = run_image(p, out_dir, pipe, options, image=sample_image, motion_adapter=motion, progress=progress)
        r.timings = {"load models": load_s, **r.timings}
        load_s = 0.0
        results.append(r)
    return results
