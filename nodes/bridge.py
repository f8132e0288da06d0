"""The one module that touches ComfyUI: tensors <-> numpy, folders, progress, memory.

Every ComfyUI import lives here and is optional, so the node classes import (and are
testable) without ComfyUI, and without a GPU.

ComfyUI conventions: IMAGE is a float32 torch tensor [B,H,W,C] in 0..1; MASK is [B,H,W]
(or [H,W]) in 0..1.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..zrealism_core.models.annotators import ANNOTATOR_FOLDER

log = logging.getLogger("zrealism")

try:  # ComfyUI is present only when running inside it (or under test fakes).
    import folder_paths  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    folder_paths = None

try:
    import comfy.model_management as model_management  # type: ignore
except ImportError:  # pragma: no cover
    model_management = None

try:
    import comfy.utils as comfy_utils  # type: ignore
except ImportError:  # pragma: no cover
    comfy_utils = None

try:  # ComfyUI's previewer (--preview-method, TAESD from models/vae_approx) and the SD1.5 latent format
    import comfy.latent_formats as latent_formats  # type: ignore
    import latent_preview  # type: ignore
except ImportError:  # pragma: no cover
    latent_formats = latent_preview = None


CATEGORY = "Z-Realism"


def in_comfyui() -> bool:
    """True inside ComfyUI (or under the test fakes); the Model Loader then leaves caching to ComfyUI."""
    return folder_paths is not None and model_management is not None


# ---------------------------------------------------------------- tensors <-> numpy

def _torch():
    import torch

    return torch


def image_to_numpy(image: Any) -> List[np.ndarray]:
    """IMAGE [B,H,W,C] (or [H,W,C]) tensor -> list of B float32 H,W,C arrays."""
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        from ..zrealism_core.errors import InputError

        raise InputError(f"IMAGE must be [batch, height, width, channels]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_image(frames: Iterable[np.ndarray]) -> Any:
    """list of H,W,3 float arrays (same size) -> IMAGE tensor [B,H,W,3] float32 on the CPU."""
    torch = _torch()
    stack = np.stack([np.asarray(f, dtype=np.float32) for f in frames], axis=0)
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def mask_to_numpy(mask: Any) -> List[np.ndarray]:
    """MASK [B,H,W] or [H,W] tensor -> list of float32 H,W arrays."""
    arr = mask.detach().cpu().float().numpy() if hasattr(mask, "detach") else np.asarray(mask, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        from ..zrealism_core.errors import InputError

        raise InputError(f"MASK must be [batch, height, width]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_mask(masks: Iterable[np.ndarray]) -> Any:
    torch = _torch()
    stack = np.stack([np.asarray(m, dtype=np.float32) for m in masks], axis=0)
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def pick(items: Sequence[Any], i: int) -> Any:
    """Batch broadcasting rule shared by all nodes: one item serves every image; otherwise index."""
    return items[0] if len(items) == 1 else items[i]


def check_batch(name: str, items: Sequence[Any], batch: int) -> None:
    if len(items) not in (1, batch):
        from ..zrealism_core.errors import InputError

        raise InputError(
            f"{name} has a batch of {len(items)} but the image batch is {batch}; "
            f"connect one {name} for all images or exactly one per image."
        )


# ---------------------------------------------------------------- model folders

def register_model_folder(name: str, subdir: Optional[str] = None, extensions: Iterable[str] = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")) -> None:
    """Add a models/<subdir> folder under ComfyUI's models dir if ComfyUI does not know `name` yet."""
    if folder_paths is None:
        return
    if name in getattr(folder_paths, "folder_names_and_paths", {}):
        return
    path = os.path.join(folder_paths.models_dir, subdir or name)
    folder_paths.folder_names_and_paths[name] = ([path], set(extensions))


def list_models(*folders: str) -> List[str]:
    """File names ComfyUI lists for the given model folders (empty outside ComfyUI)."""
    if folder_paths is None:
        return []
    names: List[str] = []
    for folder in folders:
        try:
            names.extend(folder_paths.get_filename_list(folder))
        except KeyError:
            continue
    return sorted(set(names))


def folder_locations(folder: str) -> List[str]:
    """Where ComfyUI looks for `folder` models (for error messages)."""
    if folder_paths is None:
        return []
    try:
        return list(folder_paths.get_folder_paths(folder))
    except KeyError:
        return []


def resolve_model(folder: str, name: str) -> Optional[str]:
    """Full path of a model listed by ComfyUI, or None."""
    if folder_paths is None or not name:
        return None
    try:
        return folder_paths.get_full_path(folder, name)
    except KeyError:
        return None


def embedding_dirs() -> List[str]:
    """ComfyUI's `embeddings` folders (models/embeddings plus extra_model_paths.yaml entries): where
    `embedding:NAME` in a prompt is looked up, as in ComfyUI's own CLIP Text Encode."""
    return folder_locations("embeddings")


def require_model(folder: str, name: str, what: str, hint: str) -> str:
    """Full path of `name` in ComfyUI's `folder`, or a ModelFileError saying where it was looked for."""
    path = resolve_model(folder, name) if name not in ("none", "", None) else None
    if not path:
        from ..zrealism_core.errors import ModelFileError

        where = ", ".join(folder_locations(folder)) or f"ComfyUI/models/{folder}/"
        raise ModelFileError(f"{what} {name!r} was not found (looked in: {where}). {hint}")
    return path


def annotator_dirs() -> List[str]:
    """Folders the control-map detectors search, in this order (zrealism_core.models.annotators walks each):

    1. ComfyUI's `zrealism_annotators` model folder(s) (models/zrealism_annotators/ plus any
       extra_model_paths.yaml entries), listed even when missing so the error says where to create it;
    2. comfyui_controlnet_aux's checkpoint folder, when that pack is installed: $AUX_ANNOTATOR_CKPTS_PATH
       if set, and the `ckpts/` folder of a comfyui_controlnet_aux folder under custom_nodes
       (it keeps files as ckpts/<hf repo id>/<file>), so users of that pack need no second copy.
    """
    register_model_folder(ANNOTATOR_FOLDER, extensions=(".safetensors", ".pt", ".pth", ".json"))
    dirs: List[str] = list(folder_locations(ANNOTATOR_FOLDER))
    aux_env = os.environ.get("AUX_ANNOTATOR_CKPTS_PATH", "").strip()
    if aux_env and os.path.isdir(aux_env):
        dirs.append(aux_env)
    custom_nodes = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # the folder holding this pack
    if folder_paths is not None:
        try:
            custom_nodes.extend(folder_paths.get_folder_paths("custom_nodes"))
        except KeyError:
            pass
    for parent in custom_nodes:
        try:
            entries = sorted(os.listdir(parent))
        except OSError:
            continue
        for entry in entries:
            # The git clone is comfyui_controlnet_aux; ComfyUI-Manager/zip installs may vary the case or add -main.
            if entry.lower().replace("-", "_").startswith("comfyui_controlnet_aux"):
                ckpts = os.path.join(parent, entry, "ckpts")
                if os.path.isdir(ckpts):
                    dirs.append(ckpts)
    unique: List[str] = []
    for d in dirs:
        if os.path.normcase(os.path.abspath(d)) not in {os.path.normcase(os.path.abspath(u)) for u in unique}:
            unique.append(d)
    return unique


def input_directory() -> str:
    """ComfyUI's input folder (--input-directory); where Load Image Folder resolves relative folders."""
    from ..zrealism_core.errors import InputError

    if folder_paths is None:
        raise InputError("a folder relative to ComfyUI's input directory needs ComfyUI's folder_paths; "
                         "give an absolute path, or run this node inside ComfyUI.")
    return folder_paths.get_input_directory()


def save_path(filename_prefix: str, ext: str, width: int = 0, height: int = 0) -> Tuple[str, str, str]:
    """(full path, subfolder, file name) of the next `<prefix>_<counter>_.<ext>` in ComfyUI's output
    folder, by ComfyUI's own rule (folder_paths.get_save_image_path: sub-folders in the prefix, the
    %year%/%month%/%day%/%hour%/%minute%/%second%/%width%/%height% tokens, the counter after the
    highest one, nothing outside the output folder)."""
    from ..zrealism_core.errors import InputError

    if folder_paths is None:
        raise InputError("saving needs ComfyUI's folder_paths (run this node inside ComfyUI).")
    prefix = (filename_prefix or "").strip() or "ZRealism/clip"
    try:
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            prefix, folder_paths.get_output_directory(), int(width), int(height))
    except Exception as exc:  # ComfyUI raises a bare Exception for a prefix that leaves the output folder
        if "outside the output folder" in str(exc):
            raise InputError(f"filename_prefix {filename_prefix!r} points outside the output folder; "
                             "use a relative name like 'ZRealism/clip'.") from None
        raise
    file_name = f"{name}_{counter:05}_.{ext}"
    return os.path.join(folder, file_name), subfolder.replace(os.sep, "/"), file_name


# ---------------------------------------------------------------- progress and cancel

def progress_callback(total: int) -> Callable[[int, int], None]:
    """A `callback(step, total)` that drives ComfyUI's ProgressBar (and so its Cancel button).

    Each update runs ComfyUI's global hook, which raises InterruptProcessingException when the
    user pressed Cancel; the core turns that into a clean stop.
    """
    if comfy_utils is None:
        return lambda step, total_=total: None
    bar = comfy_utils.ProgressBar(total)

    def update(step: int, total_: int = total) -> None:
        bar.update_absolute(step, total_)

    return update


# ---------------------------------------------------------------- engine: device, dtype, memory (H-engine)
#
# Our diffusers modules are plain torch modules; ComfyUI's memory manager can only evict or make
# room for models it tracks, so each one is wrapped in a ModelPatcher and loaded with
# load_models_gpu before sampling (never by patching ComfyUI itself).

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu")
DIFFUSERS_PREFIX = "[diffusers] "


def engine_device_dtype(device: str = "auto", precision: str = "auto") -> tuple:
    """(device, dtype) for load_pipeline: ComfyUI's choice inside ComfyUI (it honours --cpu,
    --force-fp16 ...), the core's own policy ("auto") outside."""
    if model_management is None:
        return device, precision
    torch = _torch()
    dev = torch.device("cpu") if device == "cpu" else model_management.get_torch_device()
    if precision != "auto":
        return dev, precision
    if model_management.is_device_cpu(dev):
        return dev, torch.float32
    if model_management.should_use_fp16(dev):
        return dev, torch.float16
    if model_management.should_use_bf16(dev):
        return dev, torch.bfloat16
    return dev, torch.float32


def list_base_models() -> List[str]:
    """Checkpoint files plus diffusers folders (marked with a prefix) for the loader's combo."""
    return list_models("checkpoints") + diffusers_folders("diffusers")


MAX_WALK_DEPTH = 6  # models/<folder>/<org>/<repo>/<sub>/...: deep enough for any layout people use


def walk_models(root_dir: str, max_depth: int = MAX_WALK_DEPTH) -> Iterable[tuple]:
    """os.walk for model dropdowns: follows symlinked folders (people link model stores in) but enters
    each real folder once, so a symlink loop cannot hang /object_info, and stops `max_depth` levels down."""
    seen = set()
    for root, dirs, files in os.walk(root_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        rel = os.path.relpath(root, root_dir)
        if (0 if rel == "." else rel.count(os.sep) + 1) >= max_depth:
            dirs[:] = []
        dirs.sort()
        yield root, dirs, files


def _diffusers_marker_ok(folder_path: str, marker: str, class_name: Optional[str]) -> bool:
    path = os.path.join(folder_path, marker)
    if not os.path.isfile(path):
        return False
    if class_name is None:
        return True
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("_class_name") == class_name
    except (OSError, ValueError):
        return False


def diffusers_folders(folder: str, marker: str = "model_index.json", class_name: Optional[str] = None) -> List[str]:
    """`[diffusers] <sub-folder>` entries for the diffusers models in a ComfyUI model folder: every
    sub-folder (any depth) holding `marker` (model_index.json for a pipeline, config.json for one
    model, whose `_class_name` must then be `class_name` when given)."""
    found: List[str] = []
    for root_dir in folder_locations(folder):
        if not os.path.isdir(root_dir):
            continue
        for root, _dirs, files in walk_models(root_dir):
            if marker in files and _diffusers_marker_ok(root, marker, class_name):
                found.append(DIFFUSERS_PREFIX + os.path.relpath(root, root_dir).replace(os.sep, "/"))
    return sorted(set(found))


def resolve_diffusers_folder(folder: str, name: str, marker: str = "model_index.json") -> Optional[str]:
    """Full path of a `[diffusers] <sub-folder>` entry of `folder` (see diffusers_folders), or None."""
    if not name.startswith(DIFFUSERS_PREFIX):
        return None
    rel = name[len(DIFFUSERS_PREFIX):]
    for root_dir in folder_locations(folder):
        path = os.path.join(root_dir, rel)
        if os.path.isfile(os.path.join(path, marker)):
            return path
    return None


def resolve_base_model(name: str) -> Optional[str]:
    """Full path of a checkpoint file or a `[diffusers] folder` entry, or None."""
    if name.startswith(DIFFUSERS_PREFIX):
        return resolve_diffusers_folder("diffusers", name)
    return resolve_model("checkpoints", name)


class _Holder:  # built lazily: torch must not be imported when this module loads
    cls: Any = None


def _holder(module: Any) -> Any:
    """A plain nn.Module around a diffusers/transformers model. ModelPatcher writes `.device` and
    bookkeeping attributes on the object it manages; diffusers models have a read-only `.device`."""
    if _Holder.cls is None:
        torch = _torch()

        class ZRealismModule(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

        _Holder.cls = ZRealismModule
    return _Holder.cls(module)


def module_patcher(pipe: Any, module: Any) -> Any:
    """The ModelPatcher ComfyUI tracks `module` with (ComfyUI itself keeps only a weak reference).
    The pipeline's own modules: made once and kept on the pipeline (keyed by id, checked by identity, so a
    new module never reuses a stale patcher). Any other module (the clip's motion adapter, SparseCtrl):
    kept on the module itself, so it goes when the module goes (the pipeline does not keep it alive)."""
    import comfy.model_patcher as model_patcher  # type: ignore  # only called inside ComfyUI (or fakes)

    if any(m is module for m in pipe.modules().values()):
        patchers, key = pipe.extras.setdefault("comfy_patchers", {}), id(module)
    else:
        patchers, key = vars(module).setdefault("_zrealism_comfy_patchers", {}), str(pipe.home_device)
    p = patchers.get(key)
    if p is None or p.model.inner is not module:
        offload = model_management.unet_offload_device() if model_management is not None else _torch().device("cpu")
        p = patchers[key] = model_patcher.ModelPatcher(_holder(module), load_device=pipe.home_device, offload_device=offload)
    return p


def engine_patchers(pipe: Any, extra_modules: Sequence[Any] = ()) -> List[Any]:
    """One ModelPatcher per module of a ZRealismPipeline (pipe.modules(): UNet, ControlNets, VAE, text
    encoder and registered modules), plus one per extra module (the clip's motion adapter and SparseCtrl)."""
    return [module_patcher(pipe, m) for m in list(pipe.modules().values()) + list(extra_modules)]


def partial_vram() -> bool:
    """ComfyUI was started with --lowvram or --novram: models are loaded partially, never forced whole."""
    if model_management is None or not hasattr(model_management, "VRAMState"):
        return False
    return getattr(model_management, "vram_state", None) in (model_management.VRAMState.LOW_VRAM, model_management.VRAMState.NO_VRAM)


def _comfy_placement_class() -> Any:
    from ..zrealism_core.runtime.placement import Placement, stream_modules

    class ComfyPlacement(Placement):
        """The placement layer inside ComfyUI: our modules go through ComfyUI's memory manager.

        - planned attempt: load_models_gpu(our patchers, memory_required=estimate), whole
          (force_full_load) unless ComfyUI runs with --lowvram/--novram, then partially;
        - free others: free_memory(weights + estimate, device, keep_loaded=ours), then a whole load again;
        - offload: ComfyUI's partial (lowvram) load with twice the estimate reserved; the modules ComfyUI
          left on the offload device stream their weights per call (placement.stream_modules);
        - CPU fp32: ComfyUI unloads ours (its bookkeeping stays true), then the core moves them.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._hooks: List[Any] = []

        def patchers(self, skip: Sequence[str] = ()) -> List[Any]:
            return [module_patcher(self.pipe, m) for m in self.modules(skip).values()]

        def _ours(self) -> List[Any]:
            mine = {id(p) for p in self.patchers()}
            return [lm for lm in model_management.current_loaded_models if id(lm.model) in mine]

        def _unstream(self) -> None:
            for h in self._hooks:
                h.remove()
            self._hooks = []

        def unload(self) -> None:
            """ComfyUI unloads our models (as its own free_memory does for the ones it evicts)."""
            for lm in self._ours():
                lm.model_unload()
                model_management.current_loaded_models.remove(lm)
            model_management.soft_empty_cache()

        def place(self, attempt: Any, memory_required: int = 0, skip: Sequence[str] = ()) -> None:
            self._unstream()
            if attempt.device.type == "cpu" and self.pipe.home_device.type != "cpu":  # the CPU fallback
                self.unload()
                super().place(attempt, memory_required, skip)
                return
            self.pipe.restore(attempt)  # drops offload hooks of an earlier fallback; no-op otherwise
            patchers = self.patchers(skip)
            if attempt.free_others:
                need = memory_required + sum(p.model_size() for p in patchers)
                model_management.free_memory(need, attempt.device, keep_loaded=self._ours())
            partial = attempt.offload or partial_vram()
            reserve = int(memory_required * (2 if attempt.offload else 1))
            model_management.load_models_gpu(patchers, memory_required=reserve, force_full_load=not partial)
            if partial:
                device = attempt.device
                self._hooks = stream_modules(list(self.modules(skip).values()) + self.followers, device,
                                             lambda m: all(t.device == device for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))))
            else:
                for m in self.followers:  # their own buffers (the motion UNet's); the shared weights are there already
                    m.to(device=attempt.device, dtype=attempt.dtype)

        def restore(self, attempt: Any) -> None:
            self._unstream()
            super().restore(attempt)

    return ComfyPlacement


def placement(pipe: Any, extra_modules: Optional[dict] = None, followers: Sequence[Any] = ()) -> Optional[Any]:
    """The placement layer for `pipe` inside ComfyUI (ComfyPlacement above); None outside ComfyUI
    (the core then uses its own, zrealism_core.runtime.placement.Placement)."""
    if model_management is None:
        return None
    return _comfy_placement_class()(pipe, extra_modules=extra_modules, followers=followers)


def detector_store() -> Optional[Any]:
    """A per-pipeline detector store (models.detectors.DetectorStore) whose detectors ComfyUI's memory
    manager tracks: each detector's modules get a ModelPatcher, are loaded with load_models_gpu before
    every use, and ComfyUI's unload ("Unload models", POST /free) drops the detector from the store, so
    its RAM and VRAM are released. None outside ComfyUI (the core's module cache is used there)."""
    if model_management is None:
        return None
    import comfy.model_patcher as model_patcher  # type: ignore
    from comfy.patcher_extension import CallbacksMP  # type: ignore

    from ..zrealism_core.models.detectors import DetectorStore, detector_modules
    from ..zrealism_core.runtime.device import trim_when_freed

    store = DetectorStore()
    patchers: dict = {}
    offload = _torch().device("cpu")

    def on_load(key: Any, detector: Any) -> None:
        mods = detector_modules(detector)
        for m in mods:
            trim_when_freed(m)  # ComfyUI's unload frees them; the heap goes back to the OS too
        made = []
        for m in mods:
            first = next(iter(list(m.parameters()) + list(m.buffers())), None)
            device = first.device if first is not None else offload
            p = model_patcher.ModelPatcher(_holder(m), load_device=device, offload_device=offload)

            def dropped(patcher: Any, unpatch_all: bool, key: Any = key, made_for: int = id(detector)) -> None:
                # Called inside ComfyUI's unload loop: the patcher must outlive it (ComfyUI holds it weakly and
                # cleans up its list when it dies), so only the weights go now; on_load replaces the patcher later.
                # Only this patcher's own detector leaves the store (a stale patcher must not drop a newer one);
                # compared by id, so the callback holds no reference that would keep the detector alive.
                if id(store.get(key)) == made_for and store.pop(key, None) is not None:
                    log.info("zrealism: ComfyUI unloaded the %s detector; it is loaded again when needed", key[0])
                patcher.model.inner = _torch().nn.Module()

            p.add_callback(CallbacksMP.ON_DETACH, dropped)
            made.append(p)
        patchers[key] = made

    def before_use(key: Any, detector: Any) -> None:
        if patchers.get(key):
            model_management.load_models_gpu(patchers[key], force_full_load=True)

    store.on_load, store.before_use = on_load, before_use
    return store


def preview_progress(total: int) -> Optional[Callable[[int, int, Any], None]]:
    """A `preview(step, total, latents)` for engine.transform / animation.animate that updates
    ComfyUI's ProgressBar with a picture made by ComfyUI's own previewer (latent_preview: it follows
    --preview-method and uses TAESD when models/vae_approx has it). A clip's latents [B, 4, F, h, w]
    show their middle frame. None outside ComfyUI. Raises on Cancel, like any update."""
    if comfy_utils is None or latent_preview is None:
        return None
    torch = _torch()
    device = model_management.get_torch_device() if model_management is not None else torch.device("cpu")
    previewer = latent_preview.get_previewer(device, latent_formats.SD15())  # None for --preview-method none
    bar = comfy_utils.ProgressBar(total)

    # the job may have fallen back to the CPU (or run fp16): TAESD stays where it was made, in fp32
    taesd = getattr(previewer, "taesd", None)
    taesd_device = next(taesd.parameters()).device if taesd is not None else None

    def update(step: int, total_: int, latents: Any) -> None:
        picture = None
        if previewer is not None:
            x = latents[:1]
            if x.ndim == 5:  # a clip: its middle frame
                x = x[:, :, x.shape[2] // 2]
            x = x.detach().to(device=taesd_device or x.device, dtype=torch.float32)
            picture = previewer.decode_latent_to_preview_image("JPEG", x)
        bar.update_absolute(step, total_, picture)

    return update


def batch_progress(total: int) -> Callable[[int], dict]:
    """One progress bar for a node's batch of jobs. `for_job(offset)` gives the keyword arguments for
    engine.transform / animation.animate of the job whose steps start at `offset`: a `preview` (progress
    plus ComfyUI's preview picture, see preview_progress) inside ComfyUI, a plain `callback` otherwise."""
    preview = preview_progress(total)
    if preview is not None:
        return lambda offset: {"preview": lambda step, _total, latents: preview(offset + step, total, latents)}
    progress = progress_callback(total)
    return lambda offset: {"callback": lambda step, _total: progress(offset + step, total)}


def cancel_check() -> Optional[Callable[[], bool]]:
    """A `cancel` for the core inside ComfyUI (None outside): checked between detection stages, VAE
    decode chunks and model-file loads; raises ComfyUI's own interrupt exception when the user pressed Cancel."""
    if model_management is None:
        return None

    def cancelled() -> bool:
        model_management.throw_exception_if_processing_interrupted()
        return False

    return cancelled


def check_interrupted() -> None:
    """Raise ComfyUI's own interrupt exception if the user pressed Cancel (before heavy work)."""
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()
