"""Step types: one module per type (its config model, validation, what it reads and how it
runs), found through ``registry``."""
