"""How ComfyUI 0.3.64 runs a classic node on its inputs (execution._async_map_node_over_list and
merge_result_data), written for the fakes: every input arrives as a list (a widget value is a list of
one; a linked output is the list the upstream node's output holds). Unless the node sets INPUT_IS_LIST
it is called once per item of the longest list, a shorter list repeating its last item; each output
then collects one value per call, or, where OUTPUT_IS_LIST says so, the items of every call's list."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple


def widgets(**values: Any) -> Dict[str, List[Any]]:
    """Widget values as the executor passes them: each a list of one."""
    return {k: [v] for k, v in values.items()}


def run_node(obj: Any, inputs: Dict[str, List[Any]]) -> Tuple[List[List[Any]], List[Dict[str, Any]]]:
    """(outputs: one list per output, the `ui` dicts the calls returned)."""
    func = getattr(obj, obj.FUNCTION)
    if getattr(obj, "INPUT_IS_LIST", False):
        results = [func(**inputs)]
    else:
        n = max((len(v) for v in inputs.values()), default=0)
        results = [func(**{k: v[i if len(v) > i else -1] for k, v in inputs.items()}) for i in range(n)] or [func()]
    uis, plain = [], []
    for r in results:
        if isinstance(r, dict):
            if "ui" in r:
                uis.append(r["ui"])
            r = r["result"]
        plain.append(r)
    is_list = getattr(obj, "OUTPUT_IS_LIST", [False] * len(plain[0]))
    outputs = [[x for o in plain for x in o[i]] if as_list else [o[i] for o in plain] for i, as_list in enumerate(is_list)]
    return outputs, uis
