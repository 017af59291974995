"""The engine: config, model, data, training, evaluation and the run format. It imports no textual, rich
or typer; the front ends (cli, headless, report, app) call it, mostly through `operations`."""
