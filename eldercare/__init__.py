"""杏北 Care: the command line, the settings and the embedded runtime."""
