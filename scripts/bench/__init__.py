"""Efficiency benchmark of FLoRA against LoRA, DoRA, the materialised way and full fine-tuning."""
