"""The one batch loop: a node's batch of images through one core stage, image by image.

Every per-image input (a map, a mask) is one for the whole batch or one per image (tensors.pick);
a wrong count is a clear error before any work. run_batch adds what a model stage needs: one
progress bar (and preview) over the whole batch, one OOM fallback chain through ComfyUI's memory
manager, Cancel, and the notes of every image for the node's report.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import memory, progress, tensors

Picked = Dict[str, Optional[np.ndarray]]


def _batch_inputs(count: int, images: Optional[Dict[str, Any]], masks: Optional[Dict[str, Any]]) -> Dict[str, List[np.ndarray]]:
    inputs = {name: tensors.image_to_numpy(v) for name, v in (images or {}).items() if v is not None}
    inputs.update({name: tensors.mask_to_numpy(v) for name, v in (masks or {}).items() if v is not None})
    for name, arrays in inputs.items():
        tensors.check_batch(name, arrays, count)
    return inputs


def each_image(image: Any, *, images: Optional[Dict[str, Any]] = None, masks: Optional[Dict[str, Any]] = None,
               cancel: bool = False) -> Iterator[Tuple[int, np.ndarray, Picked]]:
    """(i, image i, {input name: its array for image i, None when not connected}) for an IMAGE batch.
    images / masks: the node's optional IMAGE / MASK inputs by name (None = not connected).
    cancel: check ComfyUI's Cancel before each image. Every count is checked before the first image."""
    return _each(tensors.image_to_numpy(image), images, masks, cancel)


def _each(items: List[np.ndarray], images: Optional[Dict[str, Any]], masks: Optional[Dict[str, Any]],
          cancel: bool) -> Iterator[Tuple[int, np.ndarray, Picked]]:
    """each_image over already converted images; the counts are checked here, before the first yield."""
    inputs = _batch_inputs(len(items), images, masks)
    names = list(images or {}) + list(masks or {})
    return _yield(items, inputs, names, cancel)


def _yield(items: List[np.ndarray], inputs: Dict[str, List[np.ndarray]], names: List[str],
           cancel: bool) -> Iterator[Tuple[int, np.ndarray, Picked]]:
    for i, item in enumerate(items):
        if cancel:
            progress.check_interrupted()
        yield i, item, {name: tensors.pick(inputs[name], i) if name in inputs else None for name in names}


def run_batch(pipe: Any, image: Any, job: Callable[..., Any], *, steps_per_image: int, label: str = "image",
              images: Optional[Dict[str, Any]] = None, masks: Optional[Dict[str, Any]] = None) -> Tuple[List[Any], List[Tuple[str, List[str]]]]:
    """Run `job(i, image_i, picked, **hooks)` for each image of the batch; (results, notes per image).

    hooks are the core's keyword arguments for one job: `chain` (one OOM chain for the batch, through
    ComfyUI's memory manager inside ComfyUI), `cancel`, and `callback` or `preview` (one progress bar over
    batch x steps_per_image). A job returns the core's result, whose `.notes` go to the report as
    "<label> <i + 1>".
    """
    items = tensors.image_to_numpy(image)
    batch = _each(items, images, masks, cancel=False)  # checks every count now, before any work
    per_image = max(int(steps_per_image), 1)
    steps_of = progress.batch_progress(len(items) * per_image)  # progress + ComfyUI's latent preview per step
    chain = pipe.chain(memory.placement(pipe))
    progress.check_interrupted()
    results, notes = [], []
    for i, item, picked in batch:
        r = job(i, item, picked, chain=chain, cancel=progress.cancel_check(), **steps_of(i * per_image))
        results.append(r)
        notes.append((f"{label} {i + 1}", list(getattr(r, "notes", []))))
    chain.close()  # the next batch starts from the top of the chain (an error closes it on the way out)
    return results, notes
