"""The metadata service guests reach at 169.254.169.254, and the documents it and
the config drive serve."""
