"""resnet-tui: train and evaluate the lab's residual network on CIFAR-10 from a terminal."""

__version__ = "0.1.0"
