"""Z-Realism for ComfyUI (classic node API).

ComfyUI imports this folder as a package; the node classes live in ./nodes and the
framework-independent code in ./zrealism_core.
"""
if __package__:  # imported as a package (ComfyUI, tests); plain imports (e.g. a stray collector) skip.
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
