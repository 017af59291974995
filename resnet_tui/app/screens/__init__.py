"""One module per screen: train, model, data, evaluate, runs (and the run viewer), plus the help and quit dialogs."""
