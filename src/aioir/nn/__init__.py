"""Network building blocks shared by the models (they know nothing of papers).

Restormer family: :class:`LayerNorm2d`, :class:`MDTA`, :class:`GDFN`, :class:`TransformerBlock`,
:class:`BlockSequence`, :class:`OverlapPatchEmbed`, :class:`Downsample`, :class:`Upsample`.
Activation-free (NAFNet-style) blocks: :class:`NAFBlock`. Codebooks: :class:`EMAVectorQuantizer`,
:class:`VQVAE2`. Gates: :class:`GCT`, :class:`SimpleGate`, :class:`SimplifiedChannelAttention`,
:class:`SpatialGate`.
Prompts: :class:`PromptGenBlock` (+ routers), :class:`PromptInteraction`. Adapters:
:class:`DistributionAdapter`, multi-adapter LoRA (:class:`MultiLoRAConv2d`,
:func:`inject_lora`, …). Guidance: :class:`FiLM`. Guided blocks: :class:`GuidedChannelAttention`,
:class:`GuidedTransformerBlock`, :class:`GuidedBlockSequence`. Frozen feature stacks, each loaded
from a local file: :class:`VGG16Features` (torchvision's key layout, :func:`load_vgg16_features`),
:class:`Dinov2Encoder` (Dinov2Model's key layout, :func:`load_dinov2`).
"""

from aioir.nn.adapters import (
    DistributionAdapter,
    MultiLoRAConv2d,
    SqueezeExcitation,
    add_lora_adapter,
    inject_lora,
    lora_parameters,
    lora_state_dict,
    mark_only_lora_trainable,
    merge_lora,
    set_adapter_weights,
    unmerge_lora,
)
from aioir.nn.attention import MDTA
from aioir.nn.blocks import BlockSequence, Downsample, OverlapPatchEmbed, TransformerBlock, Upsample
from aioir.nn.dinov2 import Dinov2Encoder, load_dinov2
from aioir.nn.ffn import GDFN
from aioir.nn.gates import GCT, SimpleGate, SimplifiedChannelAttention, SpatialGate
from aioir.nn.guidance import FiLM
from aioir.nn.guided_attention import (
    GuidedBlockSequence,
    GuidedChannelAttention,
    GuidedTransformerBlock,
)
from aioir.nn.naf import NAFBlock
from aioir.nn.norm import BiasFreeLayerNorm, LayerNorm2d, WithBiasLayerNorm
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.nn.prompts import (
    PromptGenBlock,
    PromptInteraction,
    PromptRouter,
    SoftmaxRouter,
    TopKRouter,
    build_router,
)
from aioir.nn.quantize import EMAVectorQuantizer
from aioir.nn.vgg import VGG16Features, load_vgg16_features
from aioir.nn.vqvae import VQVAE2

__all__ = [
    "GCT",
    "GDFN",
    "MDTA",
    "VQVAE2",
    "BiasFreeLayerNorm",
    "BlockSequence",
    "Dinov2Encoder",
    "DistributionAdapter",
    "Downsample",
    "EMAVectorQuantizer",
    "FiLM",
    "GuidedBlockSequence",
    "GuidedChannelAttention",
    "GuidedTransformerBlock",
    "LayerNorm2d",
    "MultiLoRAConv2d",
    "NAFBlock",
    "OverlapPatchEmbed",
    "PromptGenBlock",
    "PromptInteraction",
    "PromptRouter",
    "SimpleGate",
    "SimplifiedChannelAttention",
    "SoftmaxRouter",
    "SpatialGate",
    "SqueezeExcitation",
    "TopKRouter",
    "TransformerBlock",
    "Upsample",
    "VGG16Features",
    "WithBiasLayerNorm",
    "add_lora_adapter",
    "build_router",
    "inject_lora",
    "load_dinov2",
    "load_vgg16_features",
    "lora_parameters",
    "lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "pad_to_multiple",
    "set_adapter_weights",
    "unmerge_lora",
    "unpad",
]
