"""Where the still and the clip spend their UNet and ControlNet evaluations: the guidance interval
(`cfg_end`) and the ControlNet budget (`control_budget`).

Batch layout under classifier-free guidance (the ONE rule every slice in this package follows):
    diffusers stacks the two branches along dim 0, unconditional first, each half one branch:
      still: [uncond; cond]                       (UNet, ControlNets, prompt embeds, control images, IP-Adapter embeds)
      clip:  [neg x F; pos x F]                   (ControlNets, prompt embeds, conditioning frames: frames flattened)
             [neg; pos] of [B, C, F, h, w]        (the motion UNet's sample and IP-Adapter image embeds)
    So the conditional (prompt) branch of any CFG-doubled tensor is its SECOND HALF along dim 0:
    `cond_half(x, batch)` takes it whenever x has twice the batch of the sample it goes with.

cfg_end (0..1, 1.0 = off): classifier-free guidance runs for the first `guided_steps(cfg_end, n)` of
the n executed steps; after that the unconditional branch is dropped and the UNet and the
ControlNets run at half the batch. Three parts, each slicing with cond_half:
  - the step callback (`GuidanceSchedule.on_step`, wired through runtime.make_step_callback's
    on_step): turns the pipeline's guidance off and slices the tensors the pipeline hands to its
    callback (prompt_embeds; the still's control_image);
  - SkippingMultiControlNet (loaders.py) takes the conditional half of any control image or
    conditioning frames still doubled (the clip pipeline does not expose its conditioning frames);
  - a UNet forward pre-hook takes the conditional half of IP-Adapter image embeds
    (added_cond_kwargs["image_embeds"], which no pipeline exposes to its callback).
  diffusers' own SDCFGCutoffCallback slices only the prompt embeddings, so it is not used.

control_budget: "full" runs every ControlNet on both branches (diffusers' behaviour);
"prompt_branch" runs them on the conditional half only and gives their residuals to both halves
(half the ControlNet cost of every guided step). Unlike diffusers' guess mode the residuals are not
rescaled and the unconditional branch gets them too, so the guidance difference is not skewed by
the control.

With cfg_end 1.0 and control_budget "full" nothing here is installed: the job runs exactly as before.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

from ..errors import InputError
from .step_reuse import StepReuse, installed as reuse_installed, shallow_controlnet

CONTROL_BUDGETS = ("full", "prompt_branch")
DEFAULT_CFG_END = 1.0
DEFAULT_CONTROL_BUDGET = "full"


def cond_half(x: Any, batch: int) -> Any:
    """The conditional branch of `x` if it is CFG-doubled for a sample of `batch` (x.shape[0] == 2 * batch)."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0 or batch <= 0 or shape[0] != 2 * batch:
        return x
    return x[batch:]


def guided_steps(cfg_end: float, n_steps: int) -> int:
    """How many of `n_steps` executed steps run with classifier-free guidance for `cfg_end`."""
    return max(0, min(int(n_steps), int(float(cfg_end) * int(n_steps) + 1e-9)))


def check(cfg_end: Any, control_budget: Any) -> None:
    if isinstance(cfg_end, bool) or not isinstance(cfg_end, (int, float)) or not 0.0 <= float(cfg_end) <= 1.0:
        raise InputError(f"cfg_end must be between 0 and 1 (1 = guidance on every step); got {cfg_end!r}.")
    if control_budget not in CONTROL_BUDGETS:
        raise InputError(f"control_budget must be one of {', '.join(CONTROL_BUDGETS)}; got {control_budget!r}.")


@dataclass
class GuidanceSchedule:
    """One job's guidance interval and ControlNet budget (see the module doc).

    `guided` says whether the current step runs both branches; the step callback turns it off at the
    cutoff, and SkippingMultiControlNet reads it (through `.plan`) to know a batch is CFG-doubled.
    """

    cfg_end: float = DEFAULT_CFG_END
    control_budget: str = DEFAULT_CONTROL_BUDGET
    guided: bool = True
    cut_after: Optional[int] = None  # executed steps run with guidance, once the cutoff happened
    sliced: List[str] = field(default_factory=list)  # what the cutoff sliced (telemetry/tests)
    reuse: Optional[StepReuse] = None  # control_reuse / unet_reuse (step_reuse.py), None = off

    @property
    def needed(self) -> bool:
        return float(self.cfg_end) < 1.0 or self.control_budget != "full" or (self.reuse is not None and self.reuse.active)

    @property
    def shares_residuals(self) -> bool:
        """Run the ControlNets on the conditional half and reuse their residuals for both halves."""
        return self.guided and self.control_budget == "prompt_branch"

    def guidance_scale(self, cfg: float, n_steps: int) -> float:
        """The guidance scale to start the pipeline with: cfg_end with no guided step at all is cfg 1."""
        if float(cfg) > 1.0 and guided_steps(self.cfg_end, n_steps) == 0:
            self.guided = False
            self.cut_after = 0
            return 1.0
        self.guided = float(cfg) > 1.0
        return float(cfg)

    def tensor_inputs(self, pipe: Any) -> List[str]:
        """The callback tensor inputs to ask the pipeline for (latents plus what the cutoff slices)."""
        names = ["latents"]
        if float(self.cfg_end) < 1.0:
            names += [k for k in ("prompt_embeds", "control_image") if k in getattr(pipe, "_callback_tensor_inputs", ())]
        return names

    def on_step(self, pipe: Any, step: int, timestep: Any, kwargs: Dict[str, Any]) -> None:
        """After step `step` (0-based): at the cutoff, guidance off and the exposed tensors sliced (in `kwargs`)."""
        if not self.guided or float(self.cfg_end) >= 1.0:
            return
        n = int(getattr(pipe, "_num_timesteps", 0) or 0)
        if n <= 0 or step + 1 < guided_steps(self.cfg_end, n):
            return
        pipe._guidance_scale = 1.0  # do_classifier_free_guidance is False from the next step on
        self.guided = False
        self.cut_after = step + 1
        for name in ("prompt_embeds", "control_image"):
            value = kwargs.get(name)
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                kwargs[name] = [v[v.shape[0] // 2:] for v in value]
            else:
                kwargs[name] = value[value.shape[0] // 2:]
            self.sliced.append(name)


def _unet_pre_hook(module: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
    """IP-Adapter image embeds follow the sample's batch after the cutoff (see the module doc)."""
    sample = args[0] if args else kwargs.get("sample")
    added = kwargs.get("added_cond_kwargs")
    if sample is None or not isinstance(added, dict) or added.get("image_embeds") is None:
        return None
    batch = sample.shape[0]
    embeds = added["image_embeds"]
    if isinstance(embeds, (list, tuple)):
        sliced = [cond_half(e, batch) for e in embeds]
    else:
        sliced = cond_half(embeds, batch)
    kwargs = dict(kwargs)
    kwargs["added_cond_kwargs"] = dict(added, image_embeds=sliced)
    return args, kwargs


@contextlib.contextmanager
def scheduled(schedule: Optional[GuidanceSchedule], controlnet: Any, unet: Any) -> Iterator[None]:
    """Install `schedule` on the ControlNet multi (and the UNet hook) for one job; nothing when not needed."""
    if schedule is None or not schedule.needed:
        yield
        return
    if not hasattr(controlnet, "nets") or not hasattr(type(controlnet), "plan"):
        raise InputError("cfg_end / control_budget need the pipeline's ControlNets in a SkippingMultiControlNet (loaders.py).")
    handle = unet.register_forward_pre_hook(_unet_pre_hook, with_kwargs=True) if float(schedule.cfg_end) < 1.0 else None
    controlnet.plan = schedule
    try:
        with reuse_installed(schedule.reuse if schedule.reuse is not None and schedule.reuse.active else None, unet):
            yield
    finally:
        controlnet.plan = None
        if handle is not None:
            handle.remove()


_SKIPPING_CLS: Any = None


def reuse_levels(multi: Any, sample: Any) -> int:
    """How many residuals a shallow UNet step needs: 1 + the first down block's layers (step_reuse.py)."""
    return 1 + len(multi.nets[0].down_blocks[0].resnets)


def skipping_multi_controlnet(controlnets: List[Any]) -> Any:
    """A diffusers MultiControlNetModel that schedules every ControlNet of a job (the one place that does).

    - A net whose scale is 0 at this step does not run. Why: per-net guidance start/end makes diffusers
      pass scale 0 outside a net's window, and it still runs that net; skipping it gives the same sum
      (adding exact zeros) at lower cost. Empty maps (control/empty.py) switch a net off the same way.
    - `.plan` (a guidance.GuidanceSchedule, set for one job by guidance.scheduled): after the cfg_end
      cutoff, control images still CFG-doubled are cut to their conditional half; with
      control_budget "prompt_branch" the nets run on the conditional half only and their residuals
      serve both halves. Batch layout rule: guidance.py's module doc.
    It is still an instance of MultiControlNetModel, so every diffusers pipeline accepts it.
    """
    global _SKIPPING_CLS
    if _SKIPPING_CLS is None:
        from diffusers import MultiControlNetModel

        class SkippingMultiControlNet(MultiControlNetModel):
            plan: Any = None  # guidance.GuidanceSchedule of the running job, or None (diffusers' behaviour)

            def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, *args, **kwargs):  # type: ignore[override]
                plan = self.plan
                if plan is None or args or kwargs.get("guess_mode"):
                    return self._skipping_forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, *args, **kwargs)
                reuse = plan.reuse
                if reuse is not None and reuse.active:  # step_reuse.py: cached or shallow residuals
                    def run(levels=0):
                        return self._planned_forward(plan, sample, timestep, encoder_hidden_states, controlnet_cond,
                                                     conditioning_scale, levels=levels, **kwargs)
                    return reuse.controlnet(run, lambda: run(reuse_levels(self, sample)), sample, conditioning_scale)
                return self._planned_forward(plan, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, **kwargs)

            def _planned_forward(self, plan, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, levels=0, **kwargs):
                import torch

                batch = sample.shape[0]
                # after the cutoff the sample is one branch; the clip's conditioning frames are still doubled
                controlnet_cond = [cond_half(c, batch) for c in controlnet_cond]
                if not (plan.shares_residuals and batch % 2 == 0):
                    return self._skipping_forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, levels=levels, **kwargs)
                half = batch // 2
                down, mid = self._skipping_forward(
                    sample[half:], cond_half(timestep, half), cond_half(encoder_hidden_states, half),
                    [cond_half(c, half) for c in controlnet_cond], conditioning_scale, levels=levels, **kwargs,
                )
                if down is None:
                    return None, None
                return [torch.cat([d, d]) for d in down], (torch.cat([mid, mid]) if mid is not None else None)

            def _skipping_forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, *args, levels=0, **kwargs):
                keep = [i for i, s in enumerate(conditioning_scale) if float(s) != 0.0]
                if not levels and (args or kwargs.get("guess_mode") or kwargs.get("return_dict", True) or len(keep) == len(self.nets)):
                    return super().forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, *args, **kwargs)
                if not keep:
                    return None, None  # the UNet treats missing residuals as "no ControlNet"
                down = mid = None
                for i in keep:
                    net_kw = dict(sample=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                                  controlnet_cond=controlnet_cond[i], conditioning_scale=conditioning_scale[i], **kwargs)
                    # levels: only the first `levels` residuals (step_reuse.shallow_controlnet, a shallow UNet step)
                    d, m = shallow_controlnet(self.nets[i], levels=levels, **net_kw) if levels else self.nets[i](**net_kw)
                    if down is None:
                        down, mid = d, m
                    else:
                        down = [a + b for a, b in zip(down, d)]
                        mid = mid + m if mid is not None else None
                return down, mid

        _SKIPPING_CLS = SkippingMultiControlNet
    return _SKIPPING_CLS(controlnets)
