"""Vision side of the runner (issue 5): real Fashion-MNIST, scene datasets, timm backbones for mmseg/mmdet."""
