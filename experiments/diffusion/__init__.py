"""Diffusion through diffusers: FLoRA, LoRA and DoRA on a denoising UNet.

Mini profile (`pipeline`): a class-conditional UNet2DModel pretrained as a DDPM on Fashion-MNIST classes 0-4
(cached outside git), fine-tuned on classes 5-9 with each method at equal adapter budgets, sampled on a grid and
scored by a Fashion-MNIST classifier (accuracy, and Frechet distance in its feature space via torchmetrics).
Paper profile (`unets.sd15_on_meta`): Stable Diffusion v1.5's UNet on the meta device, for parameter counts.
"""
