"""A test-only ComfyUI custom node: weak references to what a Z-Realism job loaded (NOT part of the pack).

tests/integration/test_comfyui_memory.py copies this file into its server's temporary custom_nodes folder.
- ZRealismTest_MemoryProbe (an output node fed the Model Loader's pipe and the sampler's image, so it runs after
  the job) takes a weak reference to the pipeline, every module of pipe.modules(), each ModelPatcher the pack
  made for them, and every detector (and its torch modules) in the pack's own stores: the pipeline's detector
  store (pipe.extras["detectors"]), every other DetectorStore (the nodes without a pipeline: Control Maps, the
  Fidelity Evaluator) and the core's process-wide detector cache. `hold` = "detector" plants a leak:
  the probe keeps a strong reference to the pipeline's detectors.
- GET /zrealism_test/alive runs gc.collect() (as ComfyUI does after /free) and answers which of the recorded
  objects are still alive, and how many of ComfyUI's current_loaded_models hold one of our modules;
  POST /zrealism_test/let_go drops the planted leak.
"""
from __future__ import annotations

import gc
import json
import sys
import weakref

from aiohttp import web
from server import PromptServer

_refs: dict = {}   # label -> weakref.ref
_held: list = []   # the planted leak: strong references kept on purpose
_state: dict = {}


def _add(label, obj) -> None:
    try:
        _refs[label] = weakref.ref(obj)
    except TypeError:  # a tuple (model, processor): its modules are recorded one by one
        pass


class ZRealismTest_MemoryProbe:
    CATEGORY = "Z-Realism tests"
    FUNCTION = "record"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pipe": ("ZREALISM_PIPE",), "after": ("IMAGE",),
                             "hold": (["nothing", "detector"], {"default": "nothing"})}}

    def record(self, pipe, after, hold):
        _refs.clear()
        _held.clear()
        _add("pipeline", pipe)
        _add("diffusers pipeline", pipe.sd)
        for role, module in pipe.modules().items():
            _add(f"module {role}", module)
        for i, patcher in enumerate(pipe.extras.get("comfy_patchers", {}).values()):
            _add(f"model patcher {i}", patcher)
        store = pipe.extras.get("detectors")
        detectors = sys.modules[type(store).__module__]  # the pack's zrealism_core.models.detectors, however it is named
        # the job's OpenPose detector through the pack's own loader and store: the one the sampler used, or (when
        # ComfyUI evicted it for room during the job) loaded again the same way, so there is always one to watch
        _state["openpose was in the store"] = any(k[0] == "openpose" for k in store)
        with detectors.using_store(store):
            openpose = detectors.openpose(pipe.annotator_dirs, "cpu", False, False)
        _add("pipeline store detector openpose", openpose)  # recorded even if ComfyUI evicted it again at once
        for i, module in enumerate(detectors.detector_modules(openpose)):
            _add(f"pipeline store detector openpose module {i}", module)
        if hold == "detector":
            _held.append(openpose)
        del openpose
        others = [o for o in gc.get_objects() if isinstance(o, detectors.DetectorStore) and o is not store]
        caches = [("pipeline store", store), ("core cache", detectors._cache)] + [(f"node store {i}", o) for i, o in enumerate(others)]
        for where, cache in caches:
            for key, detector in list(cache.items()):
                _add(f"{where} detector {key[0]}", detector)
                for i, module in enumerate(detectors.detector_modules(detector)):
                    _add(f"{where} detector {key[0]} module {i}", module)
                if hold == "detector" and where == "pipeline store":
                    _held.append(detector)
        return {"ui": {"text": [json.dumps(sorted(_refs))]}}


@PromptServer.instance.routes.get("/zrealism_test/alive")
async def alive(request):
    import comfy.model_management as mm

    gc.collect()
    ours = [lm for lm in mm.current_loaded_models if type(getattr(lm.model, "model", None)).__name__ == "ZRealismModule"]
    return web.json_response({"recorded": sorted(_refs), "alive": sorted(k for k, r in _refs.items() if r() is not None),
                              "loaded_models": len(ours), **_state})


@PromptServer.instance.routes.post("/zrealism_test/let_go")
async def let_go(request):
    """Drop the planted leak's strong references."""
    n = len(_held)
    _held.clear()
    return web.json_response({"dropped": n})


NODE_CLASS_MAPPINGS = {"ZRealismTest_MemoryProbe": ZRealismTest_MemoryProbe}
