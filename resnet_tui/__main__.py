from resnet_tui.cli import run

run()
