"""Multimodal side of the runner: LLaVA-style visual instruction tuning (transformers' LlavaForConditionalGeneration)
at paper scale (LLaVA-1.5-7B on LLaVA-665k) and at mini scale (SmolLM2-135M and a small pretrained ViT on easy-VQA)."""
