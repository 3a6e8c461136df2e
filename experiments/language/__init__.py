"""Language tasks on transformers models: backbones, data sets and metrics for the Trainer engine."""
