"""Vision side of the runner: real Fashion-MNIST, scene datasets, timm backbones for mmseg/mmdet."""
