"""SmartBrushPipeline: text + shape guided object inpainting with background preservation.

The stages of `SmartBrushPipeline.__call__`, in order (training builds its UNet input with the same ones):

    check_inputs          every argument check, before any work
    resolve_precision     "auto" -> a number, here only (the daemon and `fill` pass "auto" through)
    remove                an empty prompt: the hole filled from its surroundings at the image's own
                          resolution (smartbrush.method.infill), any model, no denoising; done
    prepare_region        the region at the UNet's resolution, in three stages:
      crop_region, prepare_crop
                          a context region around the mask, resized to the model's resolution
      prepare_mask_latents
                          the coarse mask m_s at precision level s, at the UNet's resolution
      prepare_masked_image_latents
                          the encoded x_0 * (1 - m_s)
    prepare_start         with strength < 1, what the region starts from instead of pure noise: the
                          original for a fill, the blur-filled hole for the model's own removal
    prepare_latents       the masked-noise start: noise inside m_s, the noised image outside
    the denoising loop    predict_noise (classifier-free guidance, predicted object mask), the scheduler's
                          step, then update_region: from an early step on only the (dilated) predicted
                          mask m_hat is regenerated, the rest is reset to the noised background:
                          x_t <- x_t * m_hat + noised(x_0, t) * (1 - m_hat)
    upscale_fill          the fill at the crop's pixel size: super-resolved (Real-ESRGAN,
                          smartbrush.method.detail) where the crop is larger than the model's resolution
    refine_object_mask    the predicted object mask at the crop's pixel size, snapped to the fill's edges
    paste                 back into the original image with a soft edge, only inside the given mask,
                          and (precision level > 0) outside the predicted object only where the fill
                          changed the picture: where it matches the autoencoder's round trip of the
                          original, the original's own (sharper) pixels are kept

Pixel-space models (vae=None, the demo) and latent models (AutoencoderKL) go through the same code.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput
from scipy import ndimage

from smartbrush.method import infill, masks
from smartbrush.method.detail import DEFAULT_DETAIL, DETAILS, upscale
from smartbrush.method.model import has_mask_head, precision_class_labels, unet_image_channels
from smartbrush.wire.editing import Rect, model_context

logger = logging.getLogger(__name__)

REMOVALS = ("infill", "model")  # how an empty prompt erases (__call__'s `removal`)
IMAGE_MODES = ("RGB", "RGBA", "L", "P", "I;16", "I", "LA", "1")  # what an image may come as
MASK_MODES = ("L", "1", "I;16", "I")  # single-channel modes a mask may come as


class GenerationCancelled(Exception):
    """Raised by a step callback to stop a fill at the next step."""


@dataclass
class SmartBrushPipelineOutput(BaseOutput):
    images: list[PIL.Image.Image]  # full-size results
    masks: list[PIL.Image.Image]  # predicted object masks (L), full size
    alphas: list[
        PIL.Image.Image
    ]  # paste alpha (L): where and how much each result changed the image
    seeds: list[int]  # seeds[i] reproduces images[i] alone
    precision: float  # the precision used: the one asked for, or what "auto" resolved to


def masked_blend(inside: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`inside` where mask is 1, `outside` where it is 0: every "noise only inside m_s" of the method."""
    return inside * mask + outside * (1 - mask)


class SmartBrushPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["vae"]
    _callback_tensor_inputs = ["latents", "object_mask"]

    def __init__(
        self,
        unet,
        scheduler,
        text_encoder,
        tokenizer,
        vae=None,
        num_precision_levels: int = masks.NUM_LEVELS,
        default_guidance_scale: float = 4.0,
        removal_prompt: str | None = None,
        removal_strength: float = 1.0,
    ):
        super().__init__()
        self.register_modules(
            unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer, vae=vae
        )
        # the guidance a model was tuned for (shapes: 2.0, demo: 4.0); a call without guidance_scale uses it
        # removal_prompt: the task prompt a model trained for removal takes (removal="model")
        # removal_strength: the strength a removal without one uses (below 1: from the blur-filled hole)
        self.register_to_config(
            num_precision_levels=num_precision_levels,
            default_guidance_scale=default_guidance_scale,
            removal_prompt=removal_prompt,
            removal_strength=removal_strength,
        )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae else 1
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    # -- properties -------------------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        """The working resolution in pixels: crops are resized to a square of this size."""
        return self.unet.config.sample_size * self.vae_scale_factor

    @property
    def image_channels(self) -> int:
        return unet_image_channels(self.unet)

    @property
    def num_levels(self) -> int:
        return self.config["num_precision_levels"]

    # -- building blocks (also used by training) ---------------------------------------------------

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """What the UNet cross-attends to, (B, L, D); over-long prompts are truncated with a warning."""
        max_length = self.tokenizer.model_max_length
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        full_lengths = [len(ids) for ids in self.tokenizer(prompts).input_ids]
        if max(full_lengths) > max_length:
            logger.warning("prompt longer than %d tokens: truncated", max_length)
        device = self._execution_device  # not text_encoder.device: with offload it waits on the CPU
        kwargs = {}
        if getattr(self.text_encoder.config, "model_type", "") != "clip_text_model":
            kwargs["attention_mask"] = tokens.attention_mask.to(device)
        embeddings = self.text_encoder(tokens.input_ids.to(device), **kwargs)[0]
        return embeddings.to(self.unet.dtype)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> the UNet's image space (pixels themselves, or VAE latents)."""
        if self.vae is None:
            return pixels
        latents = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mode()
        return latents * self.vae.config.scaling_factor

    def decode_image(self, latents: torch.Tensor) -> torch.Tensor:
        """The UNet's image space -> pixels in [-1, 1]."""
        if self.vae is None:
            return latents.clamp(-1, 1)
        latents = latents / self.vae.config.scaling_factor
        return self.vae.decode(latents.to(self.vae.dtype)).sample.clamp(-1, 1)

    @staticmethod
    def unet_input(noisy, coarse_mask, masked_image) -> torch.Tensor:
        """The SmartBrush input layout: cat[x_t, m_s, encoded x_0 * (1 - m_s)]."""
        return torch.cat([noisy, coarse_mask, masked_image], dim=1)

    def class_labels(self, level: int, batch: int) -> torch.Tensor | None:
        if self.unet.config.class_embed_type is None:
            return None
        levels = torch.full((batch,), level, device=self._execution_device)
        return precision_class_labels(levels, self.num_levels)

    @torch.no_grad()
    def preview(self, latents: torch.Tensor) -> PIL.Image.Image:
        """The current state of the first image, at the model's resolution."""
        pixels = self.decode_image(latents[:1].to(self.unet.dtype))
        # postprocess is annotated with every output_type's result; "pil" gives a list of images
        images = cast(
            list[PIL.Image.Image],
            self.image_processor.postprocess(pixels.float(), output_type="pil"),
        )
        return images[0]

    # -- the stages of __call__, in order (training shares the m_s and masked-image ones) ----------

    def check_inputs(
        self,
        image: Any,
        mask: Any,
        prompt: Any,
        precision: float | str,
        num_inference_steps: int,
        num_images_per_prompt: int,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        mask_threshold: float = 0.5,
        strength: float | None = None,
        removal: str = "infill",
        detail: str = DEFAULT_DETAIL,
    ) -> tuple[PIL.Image.Image, np.ndarray]:
        """Raise ValueError for a bad argument; returns the image (RGB or RGBA) and the 8-bit mask."""
        original = _as_rgb_image(image)
        given_mask = _as_mask(mask, original.size)
        if not (given_mask >= 128).any():
            raise ValueError("the mask is empty: select the region to fill (mask values >= 128)")
        if precision != "auto":
            self.precision_level(precision)
        if not isinstance(prompt, str):
            raise ValueError("prompt must be a string")
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        if int(num_images_per_prompt) < 1:
            raise ValueError(
                f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}"
            )
        if not 0.0 < float(mask_threshold) < 1.0:
            raise ValueError(f"mask_threshold must lie between 0 and 1, got {mask_threshold}")
        if strength is not None and not 0.0 < float(strength) <= 1.0:
            raise ValueError(f"strength must lie in (0, 1], got {strength}")
        if removal not in REMOVALS:
            raise ValueError(f"removal must be one of {', '.join(REMOVALS)}, not {removal!r}")
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        if removal == "model" and not prompt.strip() and not self.config["removal_prompt"]:
            raise ValueError('this model was not trained for removal: use removal="infill"')
        unknown = set(callback_on_step_end_tensor_inputs or ()) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs: unknown {sorted(unknown)}, "
                f"choose from {self._callback_tensor_inputs}"
            )
        return original, given_mask

    @staticmethod
    def resolve_precision(precision: float | str, mask: np.ndarray) -> float:
        """The precision to use: "auto" means 1 (the box) for a rectangle, else the feather decides."""
        return masks.auto_precision(mask) if precision == "auto" else float(precision)

    def precision_level(self, p: float | str) -> int:
        """The level s of a precision p in [0, 1]; p may come as a string ("0.4") from a user."""
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise ValueError(f"precision must be a number in [0, 1] or 'auto', got {p!r}") from None
        return masks.precision_to_level(p, self.num_levels)

    def crop_region(
        self, given_mask: np.ndarray, padding: int | str | None
    ) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) of the context region around the mask (8-bit, soft edge kept): the one
        context rule every client uses (wire.editing.model_context), so an editor's crop and this one
        agree; padding "auto": the rule's own (wire.editing.context_padding), None: the whole image."""
        height, width = given_mask.shape
        selected_pixels = given_mask >= 128
        selected, touched = masks.bounding_box(selected_pixels), masks.bounding_box(given_mask > 0)
        if padding is None or selected is None or touched is None or selected_pixels.all():
            return 0, 0, width, height
        rect = model_context(Rect(*selected), Rect(*touched), width, height,
                             padding=None if padding == "auto" else int(padding))  # fmt: skip
        return rect.x, rect.y, rect.right, rect.bottom

    def prepare_crop(
        self,
        original: PIL.Image.Image,
        given_mask: np.ndarray,
        crop: tuple[int, int, int, int],
        level: int,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The crop at the model's resolution, in the UNet's dtype: pixels in [-1, 1], (1, 3, res, res),
        and the coarse mask m_s at precision level s, (1, 1, res, res), of the selected (>= 128)
        pixels; above level 0 it also takes in a soft edge (a feather), so that what is painted can
        fade out with it instead of stopping at the selected pixels' box."""
        res, dtype = self.resolution, self.unet.dtype
        crop_image = (
            original.convert("RGB").crop(crop).resize((res, res), PIL.Image.Resampling.BICUBIC)
        )
        crop_mask = PIL.Image.fromarray(np.asarray(given_mask, np.uint8)).crop(crop)
        work_mask = np.asarray(crop_mask.resize((res, res), PIL.Image.Resampling.BILINEAR))
        coarse = masks.precision_mask(work_mask >= 128, level, self.num_levels)
        if level > 0:  # the feather; not the grey edge that resampling gives a hard mask
            coarse |= np.asarray(crop_mask.resize((res, res), PIL.Image.Resampling.NEAREST)) > 0
        pixels = self.image_processor.preprocess(crop_image).to(device, dtype)
        return pixels, torch.from_numpy(coarse).to(device, dtype)[None, None]

    @staticmethod
    def prepare_mask_latents(coarse_mask: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """m_s at the UNet's resolution, (B, 1, h, w): a cell is in it if any of its pixels is.

        size: (h, w), e.g. the latents' shape[-2:] (a torch.Size)."""
        return (F.interpolate(coarse_mask, size=size, mode="area") > 0).to(coarse_mask.dtype)

    def prepare_masked_image_latents(
        self, pixels: torch.Tensor, coarse_mask: torch.Tensor
    ) -> torch.Tensor:
        """The encoded x_0 * (1 - m_s): what the UNet knows of the image."""
        return self.encode_image(pixels * (1 - coarse_mask))

    def is_removal(self, prompt: str) -> bool:
        """An empty prompt to a model trained for removal: erase what the mask covers."""
        return not prompt.strip() and bool(self.config["removal_prompt"])

    def prepare_prompt_embeds(
        self, prompt: str, negative_prompt: str | None, batch: int, guided: bool
    ) -> torch.Tensor:
        """The text embeddings; with guidance cat[negative, prompt] for the batched double pass."""
        if self.is_removal(prompt):  # nothing asked for: erase, continue the background
            prompt = self.config["removal_prompt"]
        text = self.encode_prompt([prompt] * batch)
        if guided:
            text = torch.cat([self.encode_prompt([negative_prompt or ""] * batch), text])
        return text

    def prepare_timesteps(
        self, num_inference_steps: int, device: torch.device, strength: float = 1.0
    ) -> torch.Tensor:
        """The sampling steps; strength < 1 skips the noisiest ones, as diffusers' img2img pipelines
        do (at least one step is run)."""
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        skipped = num_inference_steps - max(
            1, min(num_inference_steps, round(num_inference_steps * strength))
        )
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(skipped * self.scheduler.order)
        return self.scheduler.timesteps[skipped * self.scheduler.order :]

    def resolve_guidance(self, guidance_scale: float | None) -> float:
        """None: the guidance the model was tuned for (its `default_guidance_scale`)."""
        if guidance_scale is None:  # config values are Any to pyright; this one is a float
            return cast(float, self.config["default_guidance_scale"])
        return float(guidance_scale)

    def resolve_strength(self, strength: float | None, prompt: str) -> float:
        """None: 1 for a fill, the model's `removal_strength` for a removal."""
        if strength is not None:
            return float(strength)
        return float(self.config["removal_strength"]) if self.is_removal(prompt) else 1.0

    def prepare_start(
        self, pixels: torch.Tensor, pixel_mask: torch.Tensor, prompt: str, strength: float
    ) -> torch.Tensor | None:
        """The encoded start of the region for strength < 1 (None at 1: pure noise): the original crop
        for a fill (diffusers' inpainting semantics), and for a removal the hole filled from its
        surroundings, since the object's own pixels are what must go (A1111's "fill" start)."""
        if strength >= 1.0:
            return None
        if self.is_removal(prompt):
            hole = pixel_mask[0, 0].cpu().numpy() > 0
            crop = pixels[0].permute(1, 2, 0).float().cpu().numpy()
            filled = torch.from_numpy(masks.blur_fill(crop, hole)).permute(2, 0, 1)[None]
            pixels = filled.to(pixels.device, pixels.dtype)
        return self.encode_image(pixels)

    def prepare_latents(
        self,
        x0: torch.Tensor,
        m_s: torch.Tensor,
        seeds: list[int],
        timesteps: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked-noise start and its noise: noise inside m_s (or, given `start`, the start noised
        to the first step), x_0 noised to the first step outside.

        Each image's noise comes from its own CPU generator, so seeds[i] reproduces image i alone."""
        noise = torch.cat(
            [
                torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(s))[None]
                for s in seeds
            ]
        ).to(x0.device, self.unet.dtype)
        first = timesteps[:1].repeat(len(seeds))
        if start is not None:
            return self.scheduler.add_noise(masked_blend(start, x0, m_s), noise, first), noise
        noised_background = self.scheduler.add_noise(x0, noise, first)
        return masked_blend(noise * self.scheduler.init_noise_sigma, noised_background, m_s), noise

    def predict_noise(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        x0: torch.Tensor,
        input_mask: torch.Tensor,
        masked_image: torch.Tensor,
        text: torch.Tensor,
        class_labels: torch.Tensor | None,
        guidance_scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One UNet pass: (guided noise, object-mask logits, |eps(prompt) - eps(negative)|, zero
        without guidance)."""
        c = self.image_channels
        noisy = masked_blend(self.scheduler.scale_model_input(latents, t), x0, input_mask)
        model_input = self.unet_input(noisy, input_mask, masked_image)
        guided = guidance_scale > 1.0
        if guided:
            model_input = torch.cat([model_input] * 2)
        output = self.unet(model_input, t, text, class_labels=class_labels).sample
        if not guided:
            return output[:, :c], output[:, c:], torch.zeros_like(output[:, c:])
        uncond, cond = output.chunk(2)
        difference = cond[:, :c] - uncond[:, :c]
        noise = uncond[:, :c] + guidance_scale * difference
        return noise, cond[:, c:], difference.abs().mean(1, keepdim=True)

    def predict_object_mask(
        self,
        mask_logits: torch.Tensor,
        text_effect: torch.Tensor,
        m_s: torch.Tensor,
        guided: bool,
        mask_threshold: float = 0.5,
    ) -> torch.Tensor:
        """The object's mask inside m_s: from the mask head (probability > mask_threshold), else (compat
        mode, no mask head, e.g. stock SD-inpainting) estimated training-free from where the prompt
        changes the noise prediction (DiffEdit, from the guidance pass run anyway), else m_s itself."""
        if has_mask_head(self.unet):
            logit = math.log(mask_threshold / (1.0 - mask_threshold))
            return (mask_logits > logit).to(m_s.dtype) * m_s
        return diffedit_mask(text_effect, m_s) if guided else m_s

    def update_region(
        self,
        latents: torch.Tensor,
        object_mask: torch.Tensor,
        m_s: torch.Tensor,
        m_hat: torch.Tensor,
        x0: torch.Tensor,
        noise: torch.Tensor,
        next_timestep: torch.Tensor,
        refine: bool,
        mask_dilation: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The region-update step that keeps the background: (x_t, m_hat) after a scheduler step.

        refine: from now on regenerate only the predicted object mask (dilated, inside m_s). Outside
        m_hat, x_t is reset to x_0 noised to `next_timestep` (shape (1,); empty after the last step:
        x_0 itself)."""
        if refine:
            dilated = F.max_pool2d(object_mask, 2 * mask_dilation + 1, 1, mask_dilation) * m_s
            has_object = dilated.flatten(1).any(1).view(-1, 1, 1, 1)
            m_hat = torch.where(has_object, dilated, m_s)  # no object found: keep the whole m_s
        if len(next_timestep):
            background = self.scheduler.add_noise(x0, noise, next_timestep.repeat(len(x0)))
        else:
            background = x0
        return masked_blend(latents, background, m_hat), m_hat

    def paste(
        self,
        original: PIL.Image.Image,
        given_mask: np.ndarray,
        latents: torch.Tensor,
        m_hat: torch.Tensor,
        object_mask: torch.Tensor,
        crop: tuple[int, int, int, int],
        x0: torch.Tensor | None = None,
        detail: str = DEFAULT_DETAIL,
        pixel_precise_mask: bool = True,
    ) -> tuple[list[PIL.Image.Image], list[PIL.Image.Image], list[PIL.Image.Image]]:
        """Decode the results, bring each to the crop's size (`upscale_fill`) with its object's mask
        (`refine_object_mask`, or the latent cells without pixel_precise_mask) and paste it into the
        original with a soft edge, only inside the given mask; returns (images, full-size object
        masks, full-size paste alphas).

        x0: the encoded original crop. Given, the region around the predicted object is pasted only
        where the result differs from x0's own decoding: there the model redrew the background as it
        was, and the original beats its pass through the autoencoder."""

        # postprocess is annotated with every output_type's result; "np" gives a (B, H, W, 3) array
        def to_array(encoded: torch.Tensor) -> np.ndarray:
            pixels = self.decode_image(encoded).float()
            return cast(np.ndarray, self.image_processor.postprocess(pixels, output_type="np"))

        generated = to_array(latents)
        round_trip = None if x0 is None else to_array(x0[:1])[0]
        given = given_mask[crop[1] : crop[3], crop[0] : crop[2]]
        images, object_masks, alphas = [], [], []
        for k in range(len(generated)):
            region = _upsample_mask(m_hat[k, 0], crop)
            patch = self.upscale_fill(generated[k], crop, region, detail)
            if pixel_precise_mask:
                object_region = self.refine_object_mask(object_mask[k, 0], patch, region)
            else:
                object_region = _upsample_mask(object_mask[k, 0], crop)
            # the object lies inside the given mask: latent cells at its edge must not spill past it
            object_region &= given > 0
            alpha = _soft_edge(region) * (given / 255.0)
            if round_trip is not None:
                changed = _changed_by_fill(generated[k], round_trip, crop)
                alpha *= np.where(object_region, 1.0, changed)
            images.append(_paste(original, patch, crop, alpha))
            alphas.append(_full_size(alpha, crop, original.size, scale=255))
            object_masks.append(_full_size(object_region, crop, original.size))
        return images, object_masks, alphas

    def upscale_fill(
        self,
        generated: np.ndarray,
        crop: tuple[int, int, int, int],
        pasted: np.ndarray,
        detail: str,
    ) -> np.ndarray:
        """The fill (model resolution, RGB in [0, 1]) at the crop's pixel size, 0..255, where `pasted`:
        only that box is brought to size, by a super-resolution model when the crop is larger than the
        model's resolution (smartbrush.method.detail; "off": bicubic resampling)."""
        patch = np.zeros((*pasted.shape, 3))
        bounds = masks.bounding_box(pasted)
        if bounds is None:
            return patch
        x, y, width, height = bounds
        scale_x, scale_y = (
            generated.shape[1] / pasted.shape[1],
            generated.shape[0] / pasted.shape[0],
        )
        source = (x * scale_x, y * scale_y, (x + width) * scale_x, (y + height) * scale_y)
        fill = (generated * 255).round().astype(np.uint8)
        patch[y : y + height, x : x + width] = upscale(fill, (width, height), detail, source)
        return patch

    def refine_object_mask(
        self, object_mask: torch.Tensor, patch: np.ndarray, region: np.ndarray
    ) -> np.ndarray:
        """The predicted object mask (latent cells) at the crop's pixel size (that of `region`, where
        the fill is pasted), its edges snapped onto the fill's own within one cell
        (masks.snap_to_edges, `patch` the fill at that size, 0..255)."""
        bounds = masks.bounding_box(region)
        if bounds is None:
            return np.zeros_like(region)
        height, width = region.shape
        soft = F.interpolate(object_mask[None, None].float(), size=(height, width), mode="bilinear")
        soft = soft[0, 0].cpu().numpy()
        x, y, box_width, box_height = bounds
        window = (slice(y, y + box_height), slice(x, x + box_width))
        cell = max(1, round(width / object_mask.shape[-1]))
        refined = np.zeros_like(region)
        snapped = masks.snap_to_edges(soft[window], patch[window] / 255, cell, MASK_EDGE_EPS)
        refined[window] = snapped >= 0.5
        return refined & region

    def remove(
        self, original: PIL.Image.Image, given_mask: np.ndarray, seeds: list[int], precision: float
    ) -> SmartBrushPipelineOutput:
        """Erase what the mask covers: the hole filled from its surroundings at the photo's own
        resolution (smartbrush.method.infill), one fill per seed; a feathered mask blends its edge."""
        hole = given_mask > 0
        alpha = given_mask[..., None] / 255.0
        images = []
        for seed in seeds:
            result = np.array(original)
            filled = infill.infill(result[..., :3], hole, seed)
            mixed = (result[..., :3] * (1 - alpha) + filled[..., :3] * alpha).round()
            result[..., :3] = np.where(hole[..., None], mixed.astype(np.uint8), result[..., :3])
            images.append(PIL.Image.fromarray(result))
        erased = PIL.Image.fromarray(hole.astype(np.uint8) * 255)
        alphas = PIL.Image.fromarray(given_mask.astype(np.uint8))
        return SmartBrushPipelineOutput(
            images=images, masks=[erased] * len(seeds), alphas=[alphas] * len(seeds),
            seeds=seeds, precision=precision,
        )  # fmt: skip

    # -- the method -----------------------------------------------------------------------------

    def prepare_region(
        self,
        original: PIL.Image.Image,
        given_mask: np.ndarray,
        padding_mask_crop: int | str | None,
        level: int,
        batch: int,
        blended_sampling: bool,
        device: torch.device,
    ) -> tuple:
        """The context crop at the UNet's resolution: (crop, pixels, pixel mask, x_0, the masked image's
        latents, m_s), the last three as `batch` copies."""
        crop = self.crop_region(given_mask, padding_mask_crop)
        pixels, pixel_mask = self.prepare_crop(original, given_mask, crop, level, device)
        x0 = self.encode_image(pixels)
        masked_image = self.prepare_masked_image_latents(pixels, pixel_mask)
        m_s = self.prepare_mask_latents(pixel_mask, x0.shape[-2:])
        if blended_sampling:  # the baseline's UNet is told nothing about the image: text-to-image
            masked_image = self.encode_image(torch.zeros_like(pixels))
        x0, masked_image, m_s = (t.expand(batch, -1, -1, -1) for t in (x0, masked_image, m_s))
        return crop, pixels, pixel_mask, x0, masked_image, m_s

    def step_callback(
        self, callback: Callable, i: int, t: torch.Tensor, names: list[str], latents, object_mask
    ) -> torch.Tensor:
        """diffusers' callback_on_step_end: it sees the tensors named in `names` and may replace the latents."""
        state = {k: {"latents": latents, "object_mask": object_mask}[k] for k in names}
        return (callback(self, i, t, state) or {}).get("latents", latents)

    @torch.no_grad()
    def __call__(
        self,
        image: PIL.Image.Image | np.ndarray,
        mask: PIL.Image.Image | np.ndarray,
        prompt: str,
        negative_prompt: str | None = None,
        precision: float | str = 0.0,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        num_images_per_prompt: int = 1,
        preserve_background: bool = True,
        padding_mask_crop: int | str | None = "auto",
        mask_blend_start: float = 0.2,
        mask_dilation: int = 1,
        mask_threshold: float = 0.5,
        strength: float | None = None,
        blended_sampling: bool = False,
        removal: str = "infill",
        detail: str = DEFAULT_DETAIL,
        pixel_precise_mask: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> SmartBrushPipelineOutput:
        """Fill `mask` in `image` with an object described by `prompt`.

        precision: 0 = the mask's exact shape ... 1 = anywhere inside its bounding box, or "auto".
        padding_mask_crop: context in pixels around the mask ("auto": the editors' rule,
        wire.editing.context_padding; None: the whole image).
        mask_blend_start: fraction of the steps after which only the predicted object mask is
        regenerated; mask_threshold: the mask head's probability cut for it (higher: smaller).
        strength: the share of the schedule run, as in diffusers' img2img (None: 1; a model's removal:
        its own); below 1 the region starts from the original, a removal from the blur-filled hole.
        blended_sampling: the "Blended Diffusion"-style baseline (the UNet sees text-to-image).
        removal: how an empty prompt erases: "infill" (`remove`) or "model" (a model trained for it).
        detail: "off" (resampled), "fast" or "best" (super-resolved) for a fill larger than the model's
        resolution; pixel_precise_mask: the object's mask to the pixel (else in latent cells).
        """
        names = callback_on_step_end_tensor_inputs or self._callback_tensor_inputs
        original, given_mask = self.check_inputs(image, mask, prompt, precision, num_inference_steps,
                                                 num_images_per_prompt, names, mask_threshold,
                                                 strength, removal, detail)  # fmt: skip
        precision = self.resolve_precision(precision, given_mask)
        level = self.precision_level(precision)
        batch = int(num_images_per_prompt)
        seeds = _seeds(seed, generator, batch)
        if not prompt.strip() and removal == "infill":  # erase at the photo's resolution, no model
            return self.remove(original, given_mask, seeds, precision)
        guidance_scale = self.resolve_guidance(guidance_scale)
        guided, device = guidance_scale > 1.0, self._execution_device

        crop, pixels, pixel_mask, x0, masked_image, m_s = self.prepare_region(
            original, given_mask, padding_mask_crop, level, batch, blended_sampling, device
        )
        input_mask = torch.ones_like(m_s) if blended_sampling else m_s

        text = self.prepare_prompt_embeds(prompt, negative_prompt, batch, guided)
        strength = self.resolve_strength(strength, prompt)
        timesteps = self.prepare_timesteps(num_inference_steps, device, strength)
        start = self.prepare_start(pixels, pixel_mask, prompt, strength)
        latents, noise = self.prepare_latents(x0, m_s, seeds, timesteps, start)
        class_labels = self.class_labels(level, 2 * batch if guided else batch)
        # the object's mask, to regenerate only it, comes from the mask head or (guided) DiffEdit
        refine = preserve_background and (has_mask_head(self.unet) or guided)
        refine_from = mask_blend_start * len(timesteps) if refine else math.inf
        m_hat = object_mask = m_s  # the coarse mask until the object's mask is known
        text_effect = torch.zeros_like(m_s)

        # torch.compiler.disable's type hides progress_bar(iterable=None, total=None): a tqdm here
        for i, t in enumerate(self.progress_bar(timesteps)):  # pyright: ignore[reportArgumentType, reportCallIssue]
            noise_pred, mask_logits, difference = self.predict_noise(
                latents, t, x0, input_mask, masked_image, text, class_labels, guidance_scale
            )
            text_effect += difference
            object_mask = self.predict_object_mask(mask_logits, text_effect, m_s, guided,
                                                   mask_threshold)  # fmt: skip
            latents = self.scheduler.step(noise_pred, t, latents).prev_sample
            latents, m_hat = self.update_region(latents, object_mask, m_s, m_hat, x0, noise,
                                                timesteps[i + 1 : i + 2], i >= refine_from,
                                                mask_dilation)  # fmt: skip
            if callback_on_step_end is not None:
                latents = self.step_callback(callback_on_step_end, i, t, names, latents, object_mask)  # fmt: skip

        # the round trip of x_0 keeps unchanged pixels; not at level 0, where the mask is the shape
        kept = x0 if preserve_background and level else None
        images, object_masks, alphas = self.paste(original, given_mask, latents, m_hat, object_mask,
                                                  crop, kept, detail, pixel_precise_mask)  # fmt: skip
        self.maybe_free_model_hooks()
        return SmartBrushPipelineOutput(images, object_masks, alphas, seeds, precision)


# refine_object_mask: how strong a colour edge must be to move the mask onto it
MASK_EDGE_EPS = 1e-3
COMPAT_MASK_THRESHOLD = 0.5  # DiffEdit's threshold on the normalised noise difference


def diffedit_mask(text_effect: torch.Tensor, coarse_mask: torch.Tensor) -> torch.Tensor:
    """Object mask estimated from |eps(prompt) - eps(negative)| accumulated over the steps (DiffEdit)."""
    effect = F.avg_pool2d(text_effect, 3, 1, 1) * coarse_mask
    peak = effect.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
    return (effect / peak > COMPAT_MASK_THRESHOLD).to(coarse_mask.dtype) * coarse_mask


# -- input checks and pixel-space helpers ------------------------------------------------------------


def _as_rgb_image(image: Any) -> PIL.Image.Image:
    """The input image as RGB or RGBA; other modes converted where meaningful, refused otherwise."""
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise ValueError(
                f"an image array must be uint8 HxW, HxWx3 or HxWx4, got {image.dtype} {image.shape}"
            )
        image = PIL.Image.fromarray(image)
    if not isinstance(image, PIL.Image.Image):
        raise ValueError(f"image must be a PIL image or a numpy array, got {type(image).__name__}")
    if image.mode not in IMAGE_MODES:
        raise ValueError(
            f"unsupported image mode {image.mode!r}; use one of {', '.join(IMAGE_MODES)}"
        )
    if image.mode in ("I;16", "I"):
        image = _to_8bit(image)
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")


def _to_8bit(image: PIL.Image.Image) -> PIL.Image.Image:
    """16/32-bit grey -> 8-bit grey (top byte of 16-bit values)."""
    values = np.asarray(image, dtype=np.int64)
    bits = 16 if image.mode == "I;16" or values.max(initial=0) > 255 else 8
    return PIL.Image.fromarray((np.clip(values, 0, 2**bits - 1) >> (bits - 8)).astype(np.uint8))


def _as_mask(mask: Any, size: tuple[int, int]) -> np.ndarray:
    """The mask as 8-bit HxW (soft values kept), checked against the image size."""
    if isinstance(mask, PIL.Image.Image):
        if mask.mode not in MASK_MODES:
            raise ValueError(
                f"the mask must be single-channel (L, 1 or I;16), got mode {mask.mode!r}"
            )
        if mask.mode in ("I;16", "I"):
            mask = _to_8bit(mask)
        array = np.asarray(mask.convert("L"))
    elif isinstance(mask, np.ndarray):
        if mask.ndim != 2:
            raise ValueError(f"the mask must be single-channel (H x W), got shape {mask.shape}")
        if mask.dtype == bool:
            array = mask.astype(np.uint8) * 255
        elif mask.dtype == np.uint8:
            array = mask
        else:
            raise ValueError(f"a mask array must be bool or uint8, got {mask.dtype}")
    else:
        raise ValueError(f"mask must be a PIL image or a numpy array, got {type(mask).__name__}")
    if (array.shape[1], array.shape[0]) != tuple(size):
        raise ValueError(
            f"mask size {array.shape[1]}x{array.shape[0]} does not match image size {size[0]}x{size[1]}"
        )
    return array


def _seeds(seed: int | None, generator: torch.Generator | None, batch: int) -> list[int]:
    if seed is not None:
        return [int(seed) + k for k in range(batch)]
    if generator is not None:
        return [int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) for _ in range(batch)]
    return [secrets.randbelow(2**31 - 1) for _ in range(batch)]


def _upsample_mask(mask: torch.Tensor, crop: tuple[int, int, int, int]) -> np.ndarray:
    """A (latent-resolution) binary mask -> bool at the crop's pixel size, edges smoothed."""
    width, height = crop[2] - crop[0], crop[3] - crop[1]
    up = F.interpolate(mask[None, None].float(), size=(height, width), mode="bilinear")
    return up[0, 0].cpu().numpy() >= 0.5


# mean absolute difference (of 1) between a fill and the original's autoencoder round trip: below the
# first, the fill kept the picture as it was; above the second, it changed it
UNCHANGED_BELOW, CHANGED_ABOVE = 0.08, 0.2


def _changed_by_fill(
    generated: np.ndarray, round_trip: np.ndarray, crop: tuple[int, int, int, int]
) -> np.ndarray:
    """How much the fill changed each pixel of the crop, from 0 (as the original's round trip through
    the autoencoder) to 1, at the crop's pixel size."""
    # smoothed over a few pixels: the decision follows regions, not the grain of either image
    difference = ndimage.gaussian_filter(np.abs(generated - round_trip).mean(axis=-1), 1.0)
    changed = np.clip((difference - UNCHANGED_BELOW) / (CHANGED_ABOVE - UNCHANGED_BELOW), 0.0, 1.0)
    size = (crop[2] - crop[0], crop[3] - crop[1])
    resized = PIL.Image.fromarray(changed.astype(np.float32)).resize(
        size, PIL.Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float64)


def _soft_edge(region: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1]: 0 outside `region`, ramping to 1 over a few pixels inside it."""
    if region.all():
        return np.ones(region.shape)
    ramp = max(1.0, 0.02 * max(region.shape))
    # scipy's annotation covers return_indices too; distances alone come back as one array
    distances = cast(np.ndarray, ndimage.distance_transform_edt(region))
    return np.clip(distances / ramp, 0.0, 1.0)


def _paste(
    original: PIL.Image.Image, patch: np.ndarray, crop, alpha: np.ndarray
) -> PIL.Image.Image:
    """Blend the crop-sized patch (0..255) into a copy of the original; pixels with alpha 0 stay
    bit-identical."""
    x1, y1, x2, y2 = crop
    result = np.array(original)
    target = result[y1:y2, x1:x2, :3]
    blended = (target * (1 - alpha[..., None]) + patch * alpha[..., None]).round().astype(np.uint8)
    result[y1:y2, x1:x2, :3] = np.where(alpha[..., None] > 0, blended, target)
    return PIL.Image.fromarray(result)


def _full_size(values: np.ndarray, crop, size, scale: float = 255) -> PIL.Image.Image:
    """A crop-sized mask or alpha placed into a full-size 8-bit L image (zero elsewhere)."""
    full = np.zeros((size[1], size[0]), dtype=np.uint8)
    full[crop[1] : crop[3], crop[0] : crop[2]] = (
        np.asarray(values, dtype=np.float64) * scale
    ).round()
    return PIL.Image.fromarray(full)
