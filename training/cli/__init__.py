"""The command-line tools: one module per command (gan-train, gan-export, gan-sample, gan-eval)."""
